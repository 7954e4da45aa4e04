"""Template helpers and small view utilities shared by the blueprints."""
from __future__ import annotations

import uuid
from datetime import datetime
from functools import wraps
from zoneinfo import ZoneInfo

from flask import (abort, current_app, has_request_context, make_response, render_template,
                   request)
from flask_babel import gettext as _
from flask_login import current_user

from .. import clock, labels, lifecycle, permissions
from ..display import (  # noqa: F401  (re-exported: patrol/display.py, shared with services)
    category_icon, category_label, current_lang, form_for, hazard_form, local)
from ..extensions import db
from ..models import utcnow
from ..scoring import Period


def parse_time(value: str | None, default_zone: str | None = None) -> datetime | None:
    """An ISO time from a form → naive UTC, or None if absent or malformed.

    A time without an offset is read in `default_zone` (the configured zone for
    datetime-local inputs); phones send UTC with an offset.
    """
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(default_zone or current_app.config["TIMEZONE"]))
    try:
        return dt.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's end
        return None


def parse_local(value: str | None) -> datetime | None:
    """A datetime-local input (in the configured zone) → naive UTC, or None."""
    return parse_time(value)


def overdue(item, now=None) -> bool:
    return lifecycle.is_overdue(item.status, item.deadline, now or utcnow())


def ack_late(item, now=None) -> bool:
    """Reported and not acknowledged within ACK_ESCALATE: escalated to community staff."""
    return lifecycle.is_ack_late(item.status, item.created_at, now or utcnow(),
                                 current_app.config["ACK_ESCALATE"])


def due_soon(item, now=None) -> bool:
    return lifecycle.is_due_soon(item.status, item.deadline, now or utcnow(),
                                 current_app.config["DUE_SOON"])


def get_or_404(model, ident):
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    return obj


def load_or_404(model, ident, can):
    """The row `ident` of `model` if the signed-in user passes `can(user, row)`.
    Missing: 404. Refused: `permissions.refusal_status(can)`, the one 403/404 rule
    (docs/security.md)."""
    obj = get_or_404(model, ident)
    authorise(can, obj)
    return obj


def authorise(can, obj, *args):
    """Abort unless `can(current_user, obj, *args)`, with the status the rule gives."""
    if not can(current_user, obj, *args):
        abort(permissions.refusal_status(can))


def chosen_community(prefer=()) -> int | None:
    """The one community a page shows to staff and street staff: `?community=<id>` if the
    user manages it (checked by permissions.can_manage_community, never trusted: another
    one is 404), else the first of theirs (of `prefer`, when one of theirs is in it).
    None for everyone else (admins: the page's own choice)."""
    own = permissions.own_communities(current_user)
    if not own:
        return None
    wanted = request.args.get("community", type=int)
    if wanted is None:
        return next((c for c in own if c in prefer), own[0])
    if not permissions.can_manage_community(current_user, wanted):
        abort(404)
    return wanted


def roles_required(*roles):
    """Coarse role gate; object-level checks stay in each view."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


MAX_PAGE = 100_000


def month_arg(value: str | None) -> Period | None:
    """A month the user asked for (`2026-11`), None when none was; anything else, a year
    out of range included, ends the request with a worded 400 on every monthly page."""
    if not value:
        return None
    try:
        period = Period.parse(value)
    except ValueError:
        period = None
    if period is None or period.kind != "month":
        abort(make_response(render_template(
            "error.html", code=400, title=_("Not a month"),
            message=_("Write the month as year and month, for example 2026-11.")), 400))
    return period


def page_arg() -> int:
    try:
        return min(MAX_PAGE, max(1, int(request.args.get("page", 1))))
    except ValueError:
        return 1


# Names url_for() takes for itself; a query string must not be able to pass them.
_URL_FOR_OWN = {"endpoint", "values", "method", "_method", "_external", "_anchor", "_scheme"}


def list_args(extra: dict | None = None) -> dict:
    """This list's query (its filters, tab, …) for another URL of the same rows (a ledger
    download): without the page number (or cursor) and without anything url_for would
    read as its own argument."""
    args = {k: v for k, v in request.args.items()
            if v and k not in ("page", "after", "before", "fmt") and k not in _URL_FOR_OWN
            and not k.startswith("_")}
    args.update(extra or {})
    return args


def query_args(**changes) -> dict:
    """This request's query parameters with `changes` applied, safe to pass to url_for
    with the current view's arguments."""
    args = {k: v for k, v in request.args.items()
            if k not in _URL_FOR_OWN and k not in (request.view_args or {})}
    args.update(changes)
    return {**(request.view_args or {}), **args}


def in_wechat() -> bool:
    """WeChat's built-in browser often cannot open or save a PDF: pages with PDF links
    then say how to open them in the phone's browser."""
    return has_request_context() and "MicroMessenger" in request.headers.get("User-Agent", "")


def install(app):
    app.jinja_env.globals.update(
        local=local, category_label=category_label, category_icon=category_icon,
        status_label=lambda s: labels.STATUS.get(s, s),
        action_label=lambda a: labels.ACTION.get(a, a),
        role_label=lambda r: labels.ROLE.get(r, r),
        reason_label=lambda r: labels.REASON.get(r, r),
        overdue=overdue, due_soon=due_soon, ack_late=ack_late, current_lang=current_lang,
        hazard_form=hazard_form, query_args=query_args, list_args=list_args,
        new_uuid=lambda: str(uuid.uuid4()),
        epoch_now=clock.epoch,
        in_wechat=in_wechat,
    )
    app.jinja_env.filters["todatetime"] = datetime.fromisoformat


def unknown_code():
    """The page for a QR code (gate or checkpoint sticker) that names nothing: worded, not a
    bare 404, since it is a volunteer or a resident in front of a poster who reads it."""
    return render_template(
        "error.html", code=404, title=_("This QR code is not known"),
        message=_("It may have been replaced by a new poster. Scan the newest code at the "
                  "gate, or tell the community office.")), 404
