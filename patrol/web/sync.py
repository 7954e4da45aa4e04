"""The phone's outbox protocol, shared by the blueprints: which requests want JSON, the
phone's clock, and the one shape of every error answer (documented in docs/offline.md,
"Error answers"; tests/test_outbox_errors.py checks each path).

    {"error": "<one line for the queue bar, in the user's language>",
     "code": "<stable machine code, see CODES>",
     "fields": {"<form field>": "<message>"},      # {} when no field is at fault
     "retry": true,        # only when the phone should send it again by itself (else absent)
     "login": true}        # only on 401: sign in again (else absent)

A refused report form also carries, as it always did, `errors` (its field messages) and
`photo_errors` (one message per refused photo).
"""
from __future__ import annotations

import math
from datetime import datetime

from flask import abort, current_app, jsonify, request
from flask_babel import gettext as _
from flask_login import current_user

from .. import labels, permissions
from ..lifecycle import TransitionError
from ..models import utcnow
from ..services import items as item_service
from .helpers import parse_time

# Every `code` an error answer may carry. Codes are for programs (and tests); people read
# `error`. A new code is added here and to docs/offline.md.
CODES = frozenset({
    # the request itself
    "bad_request", "out_of_range", "not_found", "forbidden", "method_not_allowed",
    "too_large", "rate_limited", "csrf", "login_required", "server_error",
    # reports and actions
    "invalid",            # form fields refused: see `fields`
    "resent_different",   # the form's key was already used for a different report
    "stale",              # someone changed the item since the phone loaded it
    # photos and scans
    "no_photo", "photo_rejected", "unknown_compound", "scan_not_allowed", "compound_archived",
}) | frozenset(labels.TRANSITION_ERROR)   # lifecycle refusals: bad_state, device_time, …


def wants_json() -> bool:
    """The page's offline queue sent this (header `X-Patrol-Sync: 1`), or it is one of the
    endpoints only scripts call (/sync/…, a photo upload): answer in JSON, never with an
    HTML page."""
    return (request.headers.get("X-Patrol-Sync") == "1" or request.path.startswith("/sync/")
            or (request.path == "/photos" and request.method == "POST"))


def error_json(status: int, code: str, message, *, fields: dict | None = None,
               retry: bool = False, login: bool = False, **extra):
    """The one error answer for the phone: (response, status). `message` and the field
    messages are shown as they are, so pass them translated."""
    if code not in CODES:  # keep CODES (and docs/offline.md) the full list
        current_app.logger.warning("outbox error code %r is not in sync.CODES", code)
    body = {"error": str(message), "code": code,
            "fields": {name: str(text) for name, text in (fields or {}).items()}, **extra}
    if retry:
        body["retry"] = True
    if login:
        body["login"] = True
    return jsonify(body), status


def parse_device_at(form) -> datetime | None:
    """When the phone says the user acted (`device_at`), on the server's clock.

    The outbox also sends the phone's clock at sending (`sent_at`); the difference
    to our clock corrects a phone that runs fast or slow. None when the form has no
    device time; TransitionError("device_time") when it is malformed or implausible.
    """
    if not form.get("device_at"):
        return None
    now = utcnow()
    acted, sent = parse_time(form.get("device_at"), "UTC"), parse_time(form.get("sent_at"), "UTC")
    if acted is None:
        raise TransitionError("device_time", "malformed device time")
    if sent is not None and acted <= sent:
        acted += now - sent
    return item_service.device_time(acted, now, current_app.config["OFFLINE_MAX_AGE"])


def form_number(name: str, low: float, high: float) -> float | None:
    """A finite number from the form within [low, high], else None (a location field the
    phone left out or sent garbled counts as no location, never as an error)."""
    try:
        value = float(request.form.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def form_location() -> tuple[float | None, float | None, float | None]:
    """(lat, lon, accuracy in metres) as the phone sent them, each None if absent."""
    return (form_number("lat", -90, 90), form_number("lon", -180, 180),
            form_number("accuracy", 0, math.inf))


def refuse_offline_scan(compound, not_allowed: str):
    """The checks every scan the outbox sends later passes, gate or checkpoint, answered in
    the outbox's shape (so the phone keeps the record and shows why): None when it may
    be recorded. Like /c/<token>: an archived compound's poster may still hang."""
    if not permissions.can_see_compound(current_user, compound):
        abort(403)
    if compound.archived_at is not None:
        return error_json(410, "compound_archived", _("This compound is archived."))
    if not permissions.can_record_presence(current_user, compound):
        return error_json(403, "scan_not_allowed", not_allowed)
    return None


def required_device_at():
    """(the phone's time of a scan, None) or (None, the refusal): a scan without a
    plausible phone time cannot be placed on a walk."""
    try:
        device_at = parse_device_at(request.form)
    except TransitionError:
        device_at = None
    if device_at is None:
        message = labels.TRANSITION_ERROR["device_time"]
        return None, error_json(422, "device_time", message, fields={"device_at": message})
    return device_at, None
