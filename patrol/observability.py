"""Logs, request ids and optional error reporting.

One log line per request: method, path, status, milliseconds, user and a request id.
The id comes from a trusted proxy's X-Request-ID when it looks like one, otherwise it is
made here; it goes back in the response header, so a volunteer's screenshot of an error
page can be matched to the server's log line.
"""
from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from sqlalchemy import inspect as sa_inspect

log = logging.getLogger("patrol.requests")
_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def install(app: Flask):
    configure_logging(app)

    @app.before_request
    def start():
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _ID.match(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(resp):
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        if request.endpoint != "static":
            who = _who()
            took = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
            log.info("%s %s %s %.0fms user=%s", request.method, request.path,
                     resp.status_code, took, who,
                     extra={"request_id": g.get("request_id", "-")})
        return resp

    configure_error_reporting(app)


def _who():
    """The signed-in user's id for the log line, or "-". A user row that a commit in this
    request expired is not read again for it: its id is its identity (the loader and
    login_user only ever set an active user)."""
    from flask_login import current_user
    user = current_user._get_current_object()   # loads it if nothing in the request did
    state = sa_inspect(user, raiseerr=False)
    if state is not None and state.identity is not None:
        return state.identity[0]
    return user.id if user and user.is_authenticated else "-"


def configure_logging(app: Flask):
    level = app.config.get("LOG_LEVEL", "INFO")
    default_handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"))
    if not any(isinstance(f, RequestIdFilter) for f in default_handler.filters):
        default_handler.addFilter(RequestIdFilter())
    root = logging.getLogger("patrol")   # the app's logger and every patrol.* module's
    root.setLevel(level)
    log.disabled = False   # a logging.config call elsewhere may have switched it off
    if default_handler not in root.handlers and not app.testing:
        root.addHandler(default_handler)


def configure_error_reporting(app: Flask):
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return
    try:
        import sentry_sdk
        from sentry_sdk.integrations.flask import FlaskIntegration
    except ImportError:
        app.logger.warning("PATROL_SENTRY_DSN is set but sentry-sdk is not installed")
        return
    # No request bodies or user data: reports can hold residents' and volunteers' details.
    sentry_sdk.init(dsn=dsn, integrations=[FlaskIntegration()], send_default_pii=False,
                    max_request_body_size="never")
