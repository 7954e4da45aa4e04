"""Fixtures in the style of Flask's tutorial: app, client, and a small world of data.

`db_app` runs a test on SQLite and, when a PostgreSQL server is available
(PATROL_TEST_PG_URL, set by `make test`), on PostgreSQL too.
"""
from __future__ import annotations

import os
from datetime import datetime

import pytest
import time_machine
from sqlalchemy import text

from patrol import create_app
from patrol.extensions import db

PG_URL = os.environ.get("PATROL_TEST_PG_URL") or None
REQUIRE_PG = os.environ.get("PATROL_REQUIRE_PG") == "1"

# --- the suite's clock --------------------------------------------------------------
# No test reads today's date: the whole suite runs at a fixed instant (time-machine,
# ticking, so timeouts and "a minute later" still work), and tests marked
# `date_sensitive` run again at each awkward instant below. PATROL_TEST_NOW moves the
# whole suite, e.g. PATROL_TEST_NOW=2027-03-01T00:10+08:00 make test.
SUITE_INSTANT = os.environ.get("PATROL_TEST_NOW") or "2026-11-18T10:00:00+08:00"  # a Wednesday
AWKWARD_INSTANTS = {
    "first-of-month": "2027-03-01T00:10:00+08:00",
    "new-years-eve": "2026-12-31T23:50:00+08:00",
    "monday-0030-shanghai": "2027-01-04T00:30:00+08:00",   # Sunday 16:30 in UTC
    "leap-day": "2028-02-29T12:00:00+08:00",
}


def instant(text_: str) -> datetime:
    value = datetime.fromisoformat(text_)
    if value.tzinfo is None:
        raise pytest.UsageError(f"PATROL_TEST_NOW needs a UTC offset: {text_!r}")
    return value


@pytest.fixture(scope="session", autouse=True)
def suite_clock():
    with time_machine.travel(instant(SUITE_INSTANT), tick=True):
        yield


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("date_sensitive"):
        ids = ["suite-instant", *AWKWARD_INSTANTS]
        metafunc.parametrize("clock_at", [SUITE_INSTANT, *AWKWARD_INSTANTS.values()],
                             ids=ids, indirect=True)


@pytest.fixture(autouse=True)
def clock_at(request):
    """The instant this test runs at: the suite's, or one of AWKWARD_INSTANTS."""
    at = instant(getattr(request, "param", SUITE_INSTANT))
    if at == instant(SUITE_INSTANT):
        yield at
        return
    with time_machine.travel(at, tick=True):
        yield at


def pytest_configure(config):
    config.addinivalue_line("markers", "date_sensitive: also run at each of AWKWARD_INSTANTS")
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
            raise pytest.UsageError(f"PATROL_TEST_PG_URL is not a database URL: {PG_URL!r}") from None


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
