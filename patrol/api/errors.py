"""The API's one error shape, for every 4xx and 5xx under /api/ (documented in the spec
as the `Error` schema): {"code": 404, "status": "Not Found", "reason": "not_found",
"message": "…", "errors": {field: [messages]}}."""
from __future__ import annotations

import marshmallow as ma
from flask import jsonify, request
from werkzeug.exceptions import HTTPException

PREFIX = "/api/"


class ErrorSchema(ma.Schema):
    code = ma.fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = ma.fields.String(required=True, metadata={"description": "HTTP status name"})
    reason = ma.fields.String(metadata={"description": "Stable machine-readable reason"})
    message = ma.fields.String(metadata={"description": "Human-readable message"})
    errors = ma.fields.Dict(metadata={"description": "Field → messages, for invalid input"})


def is_api_request() -> bool:
    return request.path.startswith(PREFIX)


def api_error(status: int, reason: str, message: str = "", errors: dict | None = None,
              headers: dict | None = None):
    from werkzeug.http import HTTP_STATUS_CODES
    body = {"code": status, "status": HTTP_STATUS_CODES.get(status, "Error"), "reason": reason,
            "message": str(message)}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_http_exception(error: HTTPException):
    """webargs/flask-smorest aborts carry `data` (validation messages); plain aborts don't."""
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    if isinstance(errors, dict) and set(errors) <= {"json", "query", "form", "files",
                                                   "headers", "view_args"}:
        # webargs nests by location; one level is enough for clients.
        flat: dict = {}
        for part in errors.values():
            if isinstance(part, dict):
                flat.update(part)
        errors = flat
    reason = data.get("reason") or (error.name or "error").lower().replace(" ", "_")
    return api_error(error.code or 500, reason, data.get("message") or error.description or "",
                     errors=errors, headers=data.get("headers"))


def install(app):
    """App-wide: HTTP errors under /api/ answer in the API's shape; others fall through to
    the site's own pages (web/security.py consults is_api_request() too)."""

    @app.errorhandler(HTTPException)
    def http_error(error):
        if is_api_request():
            return from_http_exception(error)
        return error
