"""Migrations build the schema on SQLite and PostgreSQL, and match the models."""
import pytest
from sqlalchemy import inspect, text

from patrol import create_app
from patrol.extensions import db
from tests.conftest import PG_URL

ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@pytest.fixture
def empty_app(tmp_path, request):
    """An app on an empty database (no create_all: the migrations build it)."""
    engine = request.param
    if engine == "postgresql" and not PG_URL:
        pytest.skip("no PostgreSQL server")
    url = PG_URL if engine == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": tmp_path,
                      "SECRET_KEY": "x", "PHOTO_DIR": str(tmp_path / "p")})
    with app.app_context():
        if engine == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        yield app, engine
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("empty_app", ENGINES, indirect=True)
def test_upgrade_from_empty_and_no_drift(empty_app):
    app, engine = empty_app
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    tables = set(inspect(db.engine).get_table_names())
    assert {"item", "item_event", "photo", "presence", "compound", "user", "device",
            "invite"} <= tables
    check = runner.invoke(args=["db", "check"])
    assert check.exit_code == 0, check.output
    if engine == "sqlite":
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


@pytest.mark.parametrize("empty_app", ENGINES, indirect=True)
def test_latest_migration_runs_both_ways_on_a_populated_database(empty_app):
    """Real databases have rows: the newest migration must go down and up with the demo in it."""
    from patrol.seed import seed_demo
    app, engine = empty_app
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    seed_demo()
    events = db.session.scalar(text("SELECT count(*) FROM item_event"))
    db.session.remove()
    for step in (["db", "downgrade"], ["db", "upgrade"]):
        result = runner.invoke(args=step)
        assert result.exit_code == 0, (step, result.output, result.exception)
    assert db.session.scalar(text("SELECT count(*) FROM item_event")) == events
    if engine == "sqlite":  # the app's own connections still enforce foreign keys
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
