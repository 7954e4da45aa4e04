"""Translations: every message has a Chinese translation, and pages use it.

The completeness test extracts messages from the current code and templates (as
`make translations-update` does), so a new `_('...')` without a Chinese entry in
patrol/translations/zh/LC_MESSAGES/messages.po fails here. The .mo files are not
in git: `make install` compiles them, and this module recompiles a missing or
stale one so the page tests also run straight after editing the .po file.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from patrol.config import ROOT
from tests.conftest import sign_in
from tests.factories import PASSWORD

TRANSLATIONS = ROOT / "patrol" / "translations"
ZH_PO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
# Keep in step with the Makefile's `translations-update` target.
EXTRA_KEYWORDS = ("_l", "lazy_gettext")
# %(name)s and friends, plus a bare % that would break formatting.
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%]|$)")


def compile_if_stale(po: Path) -> None:
    """Write <po>.mo when it is missing or older than the .po (fuzzy entries left out)."""
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=po.parent.parent.name)
    fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
    with os.fdopen(fd, "wb") as fh:
        write_mo(fh, catalog, use_fuzzy=False)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; pybabel's .mo files are world-readable
    os.replace(tmp, mo)  # atomic: parallel test workers never read half a file


@pytest.fixture(scope="module", autouse=True)
def compiled_catalogues():
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        compile_if_stale(po)


def extract(root: Path, out: Path):
    """The messages in `root`'s sources, per its babel.cfg, as a catalogue."""
    argv = ["pybabel", "-q", "extract", "-F", str(root / "babel.cfg"),
            *[arg for k in EXTRA_KEYWORDS for arg in ("-k", k)],
            "-o", str(out), "."]
    cwd = os.getcwd()
    os.chdir(root)  # locations relative to the sources, as in the Makefile
    try:
        CommandLineInterface().run(argv)
    finally:
        os.chdir(cwd)
    with out.open("rb") as fh:
        return read_po(fh)


def placeholders(text: str) -> list[tuple[str, str]]:
    return sorted(PLACEHOLDER.findall(text))


def translation_problems(template, catalog) -> list[str]:
    """Every extracted msgid needs a non-empty, non-fuzzy msgstr with the same placeholders."""
    problems = []
    if catalog.fuzzy:
        problems.append("the catalogue header is marked fuzzy")
    for msg in template:
        if not msg.id:
            continue
        ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
        where = ", ".join(f"{f}:{n}" for f, n in msg.locations)
        entry = catalog.get(msg.id, msg.context)
        if entry is None:
            problems.append(f"missing: {ids[0]!r} ({where})")
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if entry.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if not all(s and s.strip() for s in strings):
            problems.append(f"untranslated: {ids[0]!r} ({where})")
            continue
        expected = placeholders(ids[-1])
        for s in strings:
            if placeholders(s) != expected:
                problems.append(f"placeholders differ: {ids[0]!r} -> {s!r}")
    for entry, errors in catalog.check():
        problems.extend(f"{entry.id!r}: {e}" for e in errors)
    return problems


def read_zh():
    with ZH_PO.open("rb") as fh:
        return read_po(fh, locale="zh")


def test_every_message_has_a_chinese_translation(tmp_path):
    template = extract(ROOT, tmp_path / "messages.pot")
    assert len(template) > 100, "extraction found too few messages: check babel.cfg"
    assert "Wrong user name or password." in template  # python
    assert "Reported" in template                      # lazy_gettext (_l)
    assert "Sign in" in template                       # jinja templates
    assert translation_problems(template, read_zh()) == []


def test_completeness_check_catches_an_untranslated_string(tmp_path):
    """The check above is not vacuous: a new template string without a translation fails."""
    root = tmp_path / "src"
    shutil.copytree(ROOT / "templates", root / "templates")
    shutil.copytree(ROOT / "patrol", root / "patrol",
                    ignore=shutil.ignore_patterns("__pycache__", "translations"))
    shutil.copy(ROOT / "babel.cfg", root / "babel.cfg")
    (root / "templates" / "new.html").write_text(
        "<p>{{ _('A brand-new sentence for %(name)s', name=x) }}</p>", encoding="utf-8")
    template = extract(root, tmp_path / "messages.pot")
    problems = translation_problems(template, read_zh())
    assert problems == ["missing: 'A brand-new sentence for %(name)s' (templates/new.html:1)"]

    zh = read_zh()
    zh.add("A brand-new sentence for %(name)s", "给%(who)s的新句子")
    assert ("placeholders differ: 'A brand-new sentence for %(name)s' -> '给%(who)s的新句子'"
            in translation_problems(template, zh))


def test_pages_are_chinese_by_default_and_english_on_request(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "登录" in page and "用户名" in page and "密码" in page
    assert "Sign in" not in page

    resp = client.post("/lang", data={"lang": "en", "next": "/login"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Sign in" in page and "User name" in page
    assert "登录" not in page

    client.post("/lang", data={"lang": "zh", "next": "/login"})
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_unknown_language_keeps_chinese(client):
    client.post("/lang", data={"lang": "fr", "next": "/login"})
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_validation_error_is_in_chinese(client, world):
    resp = client.post("/login", data={"username": "staff_a", "password": PASSWORD + "x"})
    assert resp.status_code == 401
    assert "用户名或密码错误。" in resp.get_data(as_text=True)

    client.post("/lang", data={"lang": "en", "next": "/login"})
    resp = client.post("/login", data={"username": "staff_a", "password": PASSWORD + "x"})
    assert "Wrong user name or password." in resp.get_data(as_text=True)


def test_lazy_field_errors_are_in_chinese(client, world):
    """labels.py uses lazy_gettext: evaluated per request, in the user's language."""
    sign_in(client, world.vol_a)
    resp = client.post(f"/compounds/{world.a1}/report", data={})
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "请检查标出的内容。" in page
    assert "此项必填。" in page or "请至少拍一张照片。" in page


def test_flash_message_is_in_chinese_with_its_placeholder(client, world):
    sign_in(client, world.staff_a)
    resp = client.post(f"/admin/compounds/{world.a1}/rotate", follow_redirects=True)
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "已为小区A1生成新二维码。请打印并张贴新海报，旧海报已失效。" in page
    assert "小区二维码" in page
