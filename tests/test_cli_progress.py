"""Progress bars of the long CLI commands (rich, on stderr; patrol/cli.progress_bar):
`patrol import` and `patrol weekly`, as `patrol posters` has. The bar is told every
step up to the total; nothing of it is printed when the output is not a terminal.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from patrol import cli
from patrol.extensions import db
from patrol.models import Building, Compound
from tests.conftest import make_app
from tests.district_workbook import district
from tests.factories import build_world

BAR = "━"     # rich's bar


@pytest.fixture
def bars(monkeypatch):
    """Every progress bar a command opens: [what, total, [advances]]."""
    opened: list = []
    real = cli.progress_bar

    @contextmanager
    def recording(what, total):
        seen: list[int] = []
        opened.append([what, total, seen])
        with real(what, total) as advance:
            yield lambda done: (seen.append(done), advance(done))

    monkeypatch.setattr(cli, "progress_bar", recording)
    return opened


def test_import_shows_its_progress_to_the_total(tmp_path, bars):
    app = make_app(tmp_path)
    small = district(compounds=250, streets=1, communities=2, companies=2, volunteers=30,
                     buildings_per=(2, 3))
    path = tmp_path / "区名单.xlsx"
    path.write_bytes(small.data)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["import", str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert bars == []                                # a dry run writes nothing: no bar
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "已导入" in result.output
    [(what, total, seen)] = bars
    with app.app_context():
        buildings = db.session.scalar(db.select(db.func.count()).select_from(Building))
        compounds = db.session.scalar(db.select(db.func.count()).select_from(Compound))
    assert what == "import" and compounds == 250 and buildings > 250
    assert total > buildings                          # every row, then every building
    assert seen == sorted(seen) and seen[-1] == total and len(seen) >= 3, seen
    assert any(0 < n < total for n in seen)
    assert BAR not in result.output                   # not a terminal: no bar drawn
    with app.app_context():
        db.engine.dispose()


def test_weekly_shows_its_progress_compound_by_compound(tmp_path, bars):
    app = make_app(tmp_path, BASE_URL_SET=True)
    with app.app_context():
        build_world()
        names = db.session.execute(db.select(Compound.name).where(
            Compound.community.has(name="社区A"))).scalars().all()
    out = tmp_path / "weekly"
    result = app.test_cli_runner().invoke(args=["weekly", "--community", "社区A", "--week",
                                                "2026-W46", "-o", str(out)])
    assert result.exit_code == 0, result.output
    [(what, total, seen)] = bars
    assert what == "weekly" and total == len(names) >= 2
    assert seen == list(range(1, total + 1))
    assert len(list(out.glob("*.pdf"))) == total
    assert BAR not in result.output
    with app.app_context():
        db.engine.dispose()
