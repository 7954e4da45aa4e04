"""Fixtures in the style of Flask's tutorial: app, client, and a small world of data.

`db_app` runs a test on SQLite and, when a PostgreSQL server is available
(PATROL_TEST_PG_URL, set by `make test`), on PostgreSQL too.
"""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from patrol import create_app
from patrol.extensions import db

PG_URL = os.environ.get("PATROL_TEST_PG_URL") or None
REQUIRE_PG = os.environ.get("PATROL_REQUIRE_PG") == "1"


def pytest_configure(config):
    if REQUIRE_PG and not PG_URL:
        raise pytest.UsageError("PATROL_REQUIRE_PG=1 but no PostgreSQL server could be started "
                                "(PATROL_TEST_PG_URL is empty)")
    if PG_URL:
        # One bad URL would otherwise surface as an error in every PostgreSQL test.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
        try:
            make_url(PG_URL)
        except ArgumentError:
            raise pytest.UsageError(f"PATROL_TEST_PG_URL is not a database URL: {PG_URL!r}")


def make_app(tmp_path, url=None, **overrides):
    config = {
        "TESTING": True,
        "INSTANCE_DIR": tmp_path,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp_path / 'test.db'}",
        "PHOTO_DIR": str(tmp_path / "photos"),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "BASE_URL": "http://patrol.test",
    }
    config.update(overrides)
    app = create_app(config)
    with app.app_context():
        if url and url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.create_all()
    return app


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_app(request, tmp_path):
    """The same test on both engines."""
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("no PostgreSQL server (run `make test`)")
    app = make_app(tmp_path, PG_URL if request.param == "postgresql" else None)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def world(app):
    from tests.factories import build_world
    with app.app_context():
        return build_world()


def sign_in(client, user_id):
    """Put a password-style login id in the session (the real loader checks it)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = f"u:{user_id}:0"
        sess["_fresh"] = True
    return client
