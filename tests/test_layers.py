"""Import direction: web → services → domain (docs/architecture.md, "Layers").

Read from the source with `ast`, so an import inside a function counts too:
  * services (patrol/services/) and the package's own modules (patrol/*.py) never import
    patrol.web; only the app factory (patrol/__init__.py) and the CLI (patrol/cli.py),
    which wire everything together, may;
  * the pure domain modules (lifecycle.py, scoring.py, formdefs/) import neither Flask
    (nor its extensions) nor services nor web.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "patrol"
WIRING = {"__init__.py", "cli.py"}
DOMAIN = [PACKAGE / "lifecycle.py", PACKAGE / "scoring.py",
          *sorted((PACKAGE / "formdefs").rglob("*.py"))]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports, as absolute names. For
    `from x import y`, both x and x.y (y may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
    return out


def imports_of(path: Path) -> set[str]:
    return imported(path.read_text(encoding="utf-8"), module_name(path),
                    is_package=path.name == "__init__.py")


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def services_and_package_modules():
    yield from sorted((PACKAGE / "services").rglob("*.py"))
    yield from (p for p in sorted(PACKAGE.glob("*.py")) if p.name not in WIRING)


@pytest.mark.parametrize("path", list(services_and_package_modules()),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_services_and_package_modules_never_import_web(path):
    bad = sorted(n for n in imports_of(path) if within(n, "patrol.web"))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_domain_modules_import_no_flask_and_no_services(path):
    bad = sorted(n for n in imports_of(path)
                 if within(n, "flask", "patrol.services", "patrol.web")
                 or n.startswith("flask_"))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_checker_resolves_relative_and_nested_imports():
    source = ("from .. import web\n"
              "from ..web.helpers import local\n"
              "def f():\n"
              "    from . import weekly\n"
              "    import flask_babel\n")
    names = imported(source, "patrol.services.notify")
    assert {"patrol.web", "patrol.web.helpers", "patrol.services.weekly",
            "flask_babel"} <= names
    assert "patrol.web" in imported("from .web import helpers\n", "patrol",
                                    is_package=True)
    assert within("patrol.web.helpers", "patrol.web") and not within("patrol.webhooks",
                                                                     "patrol.web")
