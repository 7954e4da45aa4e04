"""Migrations build the schema on SQLite and PostgreSQL, and match the models."""
import pytest
from sqlalchemy import inspect, text

from patrol import create_app
from patrol.extensions import db
from tests.conftest import PG_URL


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def test_upgrade_from_empty_and_no_drift(tmp_path, engine):
    if engine == "postgresql" and not PG_URL:
        pytest.skip("no PostgreSQL server")
    url = PG_URL if engine == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": tmp_path,
                      "SECRET_KEY": "x", "PHOTO_DIR": str(tmp_path / "p")})
    with app.app_context():
        if engine == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
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
        db.engine.dispose()
