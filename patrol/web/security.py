"""Security headers and error pages, in the user's language."""
from flask import render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError

from ..extensions import db
from .sync import error_json, wants_json

CSP = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; "
       "style-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'; frame-ancestors 'none'")


def _csp():
    """With presigned photo links (docs/storage.md), images may come from the store too."""
    from .photos import presigned_origin
    origin = presigned_origin()
    return CSP.replace("img-src 'self'", f"img-src 'self' {origin}", 1) if origin else CSP


def install(app):
    @app.after_request
    def headers(resp):
        resp.headers.setdefault("Content-Security-Policy", _csp())
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"
        if request.is_secure and app.config.get("HSTS"):  # over HTTPS only (RFC 6797)
            resp.headers["Strict-Transport-Security"] = "max-age=31536000"
        resp.headers.setdefault("Permissions-Policy", "camera=(self), geolocation=(self)")
        if request.endpoint != "static" and "Cache-Control" not in resp.headers:
            resp.headers["Cache-Control"] = "no-store"
        return resp

    def page(status, code, title, message, retry=False):
        from ..api.errors import api_error, is_api_request
        if is_api_request():  # /api/: the API's one error shape (api/errors.py)
            return api_error(status, code, str(message))
        if wants_json():  # the phone's queue shows `error` next to the record it kept
            return error_json(status, code, message, retry=retry)
        return render_template("error.html", code=status, title=title, message=message), status

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        if wants_json():
            # The queue fetched its token just before sending, so the session changed in
            # between (signed in again in another tab): try again with a new token.
            return page(400, "csrf", _("Form expired"),
                        _("The form had expired; it will be sent again."), retry=True)
        return page(400, "csrf", _("Form expired"),
                    _("This form has expired. Go back, reload the page and try again."))

    @app.errorhandler(400)
    def bad_request(e):
        return page(400, "bad_request", _("Bad request"), _("The request could not be understood."))

    @app.errorhandler(403)
    def forbidden(e):
        return page(403, "forbidden", _("Not allowed"), _("You do not have access to this page."))

    @app.errorhandler(404)
    def not_found(e):
        return page(404, "not_found", _("Not found"),
                    _("This page does not exist, or the link is out of date."))

    @app.errorhandler(405)
    def method_not_allowed(e):
        return page(405, "method_not_allowed", _("Not allowed"),
                    _("This action is not possible here."))

    @app.errorhandler(413)
    def too_large(e):
        return page(413, "too_large", _("Upload too large"),
                    _("The photos are too large to send together. Send fewer photos at once."))

    @app.errorhandler(OverflowError)
    def out_of_range(e):
        # Numbers or dates too large for the database or the calendar: bad input. One
        # raised in a flush leaves the session to roll back before the page reads it.
        db.session.rollback()
        return page(400, "out_of_range", _("Bad request"),
                    _("A number or date in the address is out of range."))

    @app.errorhandler(500)
    def server_error(e):
        # Whatever the request half-wrote is undone before anything else touches the
        # session; the phone's outbox keeps the record and sends it again.
        db.session.rollback()
        if wants_json():
            return page(500, "server_error", _("Server error"),
                        _("The server had a problem. Nothing is lost: this will be sent again."),
                        retry=True)
        return page(500, "server_error", _("Server error"),
                    _("Something went wrong on our side. Please try again in a moment."))

    @app.errorhandler(429)
    def too_many(e):
        return page(429, "rate_limited", _("Too many attempts"),
                    _("Too many attempts. Please wait a minute and try again."))
