"""Real headless Chromium against a live server, on a phone viewport.

The server runs the real app in a thread (werkzeug, threaded) on a file-based
SQLite database, with production-like security: CSRF on, and Secure cookies as
configured by default. Chromium treats http://127.0.0.1 as a secure context and
keeps Secure cookies there (checked: a Secure, HttpOnly, SameSite=Lax cookie set
over plain http://127.0.0.1 is sent back), so nothing is relaxed for the browser.
The rate limiter stays off (as in every test app): it is per-IP, and all of a
test's "phones" share 127.0.0.1.

Never run `playwright install`: Debian's Chromium is used.

The browser runs on the suite's clock too (tests/conftest.py moves the server with
time-machine): Chromium is started under libfaketime (Debian's `faketime`) with the
same offset from the real clock, so the phone's Date, cookie expiry and the server
agree, at the suite's instant or an awkward one.
"""
from __future__ import annotations

import glob
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import got_request_exception
from werkzeug.serving import make_server

from patrol.extensions import db
from tests.conftest import make_app

CHROMIUM = os.environ.get("PATROL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
             locale="zh-CN", timezone_id="Asia/Shanghai")
# A spot in Xiangtan, near the demo compounds; granted so the scan and report
# pages' geolocation code runs as it does on a real phone.
GEO = {"latitude": 27.857, "longitude": 112.951, "accuracy": 20}
SHOTS = Path(os.environ.get("PATROL_SHOTS", "/tmp/shots"))

REQUIRE_BROWSER = os.environ.get("PATROL_REQUIRE_BROWSER") == "1"

if REQUIRE_BROWSER:
    import playwright.sync_api as sync_api  # CI: a missing Playwright is an error, not a skip
else:
    sync_api = pytest.importorskip("playwright.sync_api")


def _unavailable(why):
    if REQUIRE_BROWSER:
        pytest.fail(f"PATROL_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


def clock_offset() -> int:
    """Seconds between the app's clock (time-machine) and the machine's real clock."""
    from time_machine import escape_hatch
    return round(time.time() - escape_hatch.time.time())


def faketime_env(offset: int) -> dict:
    libs = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
    if not libs:
        _unavailable("libfaketime is missing (Debian package faketime), so the browser "
                     "cannot run on the suite's clock")
    return dict(os.environ, LD_PRELOAD=libs[0], FAKETIME=f"{offset:+d}", TZ="UTC")


@pytest.fixture(scope="session")
def _playwright():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        browsers = {}
        yield p, browsers
        for b in browsers.values():
            b.close()


@pytest.fixture
def browser(_playwright):
    """Chromium on the app's clock: one browser per clock offset (within a minute)."""
    p, browsers = _playwright
    offset = clock_offset()
    for known, b in browsers.items():
        if abs(known - offset) <= 60:
            return b
    browsers[offset] = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                         env=faketime_env(offset))
    return browsers[offset]


@dataclass
class LiveServer:
    app: object
    url: str
    errors: list

    def db(self):
        """An app context for looking at (or preparing) the database from the test."""
        return self.app.app_context()


@pytest.fixture
def live_server(tmp_path):
    app = make_app(
        tmp_path,
        WTF_CSRF_ENABLED=True,
        # The defaults from Config (Secure cookies); make_app turns them off for
        # the test client, which speaks plain http to "localhost".
        SESSION_COOKIE_SECURE=True,
        REMEMBER_COOKIE_SECURE=True,
        # Let server-side errors become 500 pages, as in production, rather than
        # exceptions in the server thread.
        TESTING=False,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url  # before the first request: links and QR URLs point here
    errors = []
    got_request_exception.connect(
        lambda sender, exception, **kw: errors.append(repr(exception)), app, weak=False)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, url, errors)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def world(live_server):
    """tests.factories.build_world() in the live server's database: ids of everything."""
    from tests.factories import build_world
    with live_server.db():
        return build_world()


@pytest.fixture
def phone(browser, live_server):
    """Factory: phone(name) opens a new phone-sized browser context."""
    contexts = []

    def open_phone(name, geolocation=True, service_workers="allow", **overrides):
        ctx = browser.new_context(
            base_url=live_server.url, **{**PHONE, **overrides}, service_workers=service_workers,
            **({"geolocation": GEO, "permissions": ["geolocation"]} if geolocation else {}))
        ctx.set_default_timeout(10_000)
        page = ctx.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
        # Failed loads (our own 4xx pages) are expected; CSP violations and JS errors are not.
        page.on("console", lambda msg: errors.append(f"console: {msg.text}")
                if msg.type == "error" and "Failed to load resource" not in msg.text else None)
        contexts.append(ctx)
        return SimpleNamespace(name=name, context=ctx, page=page, errors=errors)

    yield open_phone
    for ctx in contexts:
        ctx.close()


@pytest.fixture(scope="session")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
