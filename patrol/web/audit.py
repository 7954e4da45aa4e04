"""The audit log page (操作记录): admins see every row, street staff their street's;
newest first, 50 a page."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Blueprint, abort, render_template
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..extensions import db
from ..lifecycle import Role
from ..models import AuditEntry
from .helpers import local, page_arg, roles_required

bp = Blueprint("audit", __name__, url_prefix="/audit")
PER_PAGE = 50

ACTIONS = {
    "street.create": _l("Street added"),
    "street.rename": _l("Street renamed"),
    "community.create": _l("Community added"),
    "community.rename": _l("Community renamed"),
    "compound.create": _l("Compound added"),
    "compound.update": _l("Compound changed"),
    "compound.archive": _l("Compound archived"),
    "compound.restore": _l("Compound brought back"),
    "compound.rotate_qr": _l("New QR code"),
    "building.add": _l("Buildings added"),
    "company.create": _l("Property company added"),
    "company.update": _l("Property company details changed"),
    "device.revoke": _l("Phone signed out"),
    "invite.create": _l("Sign-in link made"),
    "receiver.create": _l("Receiver added"),
    "receiver.update": _l("Receiver changed"),
    "receiver.delete": _l("Receiver removed"),
    "user.set_password": _l("Password set"),
    "compound.handover": _l("Property company changed"),
    "team.create": _l("Team added"),
    "team.update": _l("Team changed"),
    "volunteer.update": _l("Volunteer changed"),
    "volunteer.move": _l("Volunteer moved to another team"),
    "user.create": _l("Account added"),
    "user.deactivate": _l("Account deactivated"),
    "user.reactivate": _l("Account reactivated"),
    "user.password": _l("Password reset"),
}


def scope_filter(user):
    """Admins every row; street staff the rows of their street; nobody else any."""
    if user.role == Role.ADMIN:
        return db.true()
    if user.role == Role.STREET_STAFF and user.street_id is not None:
        return AuditEntry.street_id == user.street_id
    return db.false()


# What each row is about, by its table (services/audit.object_type).
OBJECTS = {
    "street": _l("Street"), "community": _l("Community"), "compound": _l("Compound"),
    "building": _l("Building"), "company": _l("Property company"), "user": _l("Account"),
    "invite": _l("Sign-in link"), "device": _l("Phone"), "notify_endpoint": _l("Receiver"),
    "team": _l("Team"), "patrol": _l("Patrol"), "patrol_schedule": _l("Patrol schedule"),
}


def _compact(data) -> str:
    """A change's fields as `name: value`, times in local time (they are stored as UTC ISO
    strings), at most 500 characters."""
    if data is None:
        return ""
    if not isinstance(data, dict):
        return json.dumps(data, ensure_ascii=False)[:500]
    return "; ".join(f"{key}: {_value(value)}" for key, value in sorted(data.items()))[:500]


def _value(value) -> str:
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return local(moment, "%Y-%m-%d %H:%M")
    if isinstance(value, str):
        return value
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(_l("Yes") if value else _l("No"))
    return json.dumps(value, ensure_ascii=False)


@bp.get("/")
@roles_required(Role.STREET_STAFF, Role.ADMIN)
def index():
    page = page_arg()
    q = (db.select(AuditEntry).where(scope_filter(current_user))
         .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()))
    rows = db.session.scalars(q.limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)).all()
    if page > 1 and not rows:
        abort(404)
    return render_template("audit/index.html", rows=rows[:PER_PAGE], page=page,
                           more=len(rows) > PER_PAGE, actions=ACTIONS, objects=OBJECTS,
                           compact=_compact)
