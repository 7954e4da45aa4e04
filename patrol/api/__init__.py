"""The JSON API, /api/v1 (flask-smorest on the project's marshmallow schemas).

Auth is a personal API token (models/api.py) in `Authorization: Bearer …`, never the
session cookie, so the API needs no CSRF token and a browser's cookies give it nothing.
Every answer is computed through the same permission place (patrol/permissions.py) and
the same services as the web; errors have one shape (api/errors.py).

The OpenAPI 3 document is /api/v1/openapi.json; /api/v1/docs renders it as a page
served by the app (no CDN).
"""
from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import Api

from ..clock import utcnow
from ..extensions import csrf, db, limiter
from ..models import ApiToken
from . import errors

API_PREFIX = "/api/v1"


class PatrolApi(Api):
    """flask-smorest, without its app-wide HTTPException handler (it would answer the
    site's own pages in JSON): api/errors.py handles /api/ paths only."""

    ERROR_SCHEMA = errors.ErrorSchema

    def _register_error_handlers(self):
        pass


def authenticate():
    """Before each API request: the bearer token's user, or a 401 in the API's shape."""
    header = request.headers.get("Authorization", "")
    if request.endpoint and request.endpoint.startswith("api-docs."):
        return None      # the spec and its page are public
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return errors.api_error(401, "token_required", "Send a personal API token: "
                                "Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": 'Bearer realm="patrol"'})
    token = ApiToken.find(secret.strip())
    now = utcnow()
    if token is None or not token.usable(now) or not token.user.active:
        return errors.api_error(401, "token_invalid", "The token is unknown, expired or revoked.",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if request.method not in ("GET", "HEAD", "OPTIONS") and token.scope != "act":
        return errors.api_error(403, "read_only_token", "This token may only read.")
    # Last use, to the minute: not a write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        db.session.commit()
    g.api_token, g.api_user = token, token.user
    return None


def token_key() -> str:
    token = g.get("api_token")
    return f"api-token:{token.id}" if token else f"api-ip:{request.remote_addr}"


def init_app(app):
    app.config.setdefault("API_TITLE", "Patrol (小区巡查) API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "servers": [{"url": "/"}],
    })
    api = PatrolApi(app)     # one per app: its spec is that app's
    errors.install(app)
    from . import docs, views
    for blueprint in views.BLUEPRINTS:
        api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    app.register_blueprint(docs.bp)


def setup_blueprint(blueprint):
    """Once, when the views module is imported: token auth, no CSRF (no cookies are
    used), and a rate limit per token."""
    csrf.exempt(blueprint)
    blueprint.before_request(authenticate)
    limiter.limit(lambda: current_app.config.get("API_RATE_LIMIT", "300 per minute"),
                  key_func=token_key)(blueprint)
