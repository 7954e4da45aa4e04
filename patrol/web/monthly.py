"""The monthly statistics pack (月度统计材料): the page, the PDF, and staff's choice of the
month's three before/after highlights.

Community staff see their community's pack, street staff their street's and its
communities', admins every one; other roles are refused (403), and a place outside the
user's reach answers 404, like a weekly list (docs/security.md, "403 or 404"). The
numbers are services/monthly_pack.py's.
"""
from __future__ import annotations

from typing import Any

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from .. import permissions
from ..clock import utcnow
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Item, MonthlyHighlight, Street
from ..scoring import Period
from ..services import audit, monthly_pack
from ..services import patrols as patrol_service
from .helpers import month_arg, roles_required

bp = Blueprint("monthly", __name__)

STAFF_ROLES = (Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
RECENT_MONTHS = 12
# Who may see a pack, as permission data: a community's is MANAGE_COMMUNITY's rule (staff
# their community, street staff their street's, admins all); a street's, its street staff
# and admins.
STREET_PACK = permissions.Scope({Role.STREET_STAFF: permissions.STREET_ID,
                                 Role.ADMIN: permissions.EVERYTHING})
STREET_ROW = {permissions.STREET_ID: "id"}


def can_see_pack(user, scope: str, target) -> bool:
    if scope == "community":
        return permissions.MANAGE_COMMUNITY.allows(user, target, permissions.COMMUNITY_ROW)
    if scope == "street":
        return STREET_PACK.allows(user, target, STREET_ROW)
    return False


def pack_targets(user) -> list[tuple[str, Community | Street]]:
    """[(scope, place)] whose pack the user may see: streets first, then communities."""
    streets = db.session.execute(
        db.select(Street).where(STREET_PACK.where(user, Street, STREET_ROW))
        .order_by(Street.name)).scalars()
    communities = db.session.execute(
        db.select(Community).where(permissions.MANAGE_COMMUNITY.where(
            user, Community, permissions.COMMUNITY_ROW)).order_by(Community.name)).scalars()
    return [("street", s) for s in streets] + [("community", c) for c in communities]


def _target(scope: str | None, ident) -> tuple[str, Any]:
    """The place asked for (?scope=community|street&id=N), or the user's first one."""
    if not scope:
        targets = pack_targets(current_user)
        if not targets:
            abort(404)
        return targets[0]
    model = {"community": Community, "street": Street}.get(scope)
    if model is None:
        abort(400)
    target = db.session.get(model, ident) if ident else None
    if target is None or not can_see_pack(current_user, scope, target):
        abort(404)
    return scope, target


def _month(value) -> Period:
    return month_arg(value) or monthly_pack.month_of(utcnow(), current_app.config["TIMEZONE"])


def _build(scope, target, month):
    """The pack, after quiet patrols are ended (as the hours pages do first): a walk left
    open counts with its hours, on the day it is printed too."""
    cfg = current_app.config
    if patrol_service.close_quiet(utcnow()):
        db.session.commit()
    return monthly_pack.build(scope, target, month, now=utcnow(), tz=cfg["TIMEZONE"],
                              min_items=cfg["RATING_MIN_ITEMS"],
                              visible=permissions.item_filter(current_user, Item))


def _months() -> list[Period]:
    this = monthly_pack.month_of(utcnow(), current_app.config["TIMEZONE"])
    return [this.shift(-k) for k in range(RECENT_MONTHS)]


@bp.get("/monthly")
@roles_required(*STAFF_ROLES)
def index():
    if request.args.get("target"):       # the picker: "community:3" → ?scope=community&id=3
        scope, _sep, ident = request.args["target"].partition(":")
        return redirect(url_for("monthly.index", scope=scope,
                                id=ident if ident.isdigit() else 0,
                                month=request.args.get("month") or None))
    scope, target = _target(request.args.get("scope"), request.args.get("id", type=int))
    month = _month(request.args.get("month"))
    pack = _build(scope, target, month)

    def photo_src(photo):
        return url_for("photos.serve", photo_id=photo.id, size="thumb")
    return render_template("monthly/index.html", targets=pack_targets(current_user),
                           months=_months(), scope=scope, target=target, month=month,
                           **monthly_pack.context(pack, current_app.config["TIMEZONE"],
                                                  photo_src))


@bp.get("/monthly.pdf")
@roles_required(*STAFF_ROLES)
def pdf():
    scope, target = _target(request.args.get("scope"), request.args.get("id", type=int))
    month = _month(request.args.get("month"))
    pack = _build(scope, target, month)
    body = monthly_pack.render_pdf(pack, tz=current_app.config["TIMEZONE"])
    filename = f"monthly-{month.code}-{scope}-{target.id}.pdf"
    return Response(body, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store"})


# --- highlights ------------------------------------------------------------------------------

@bp.get("/monthly/highlights")
@roles_required(*STAFF_ROLES)
def highlights():
    scope, target = _target(request.args.get("scope"), request.args.get("id", type=int))
    month = _month(request.args.get("month"))
    tz = current_app.config["TIMEZONE"]
    chosen = monthly_pack.highlights(scope, target, month)
    taken = {h.item.id for h in chosen}
    offered = [h for h in monthly_pack.candidates(
        scope, target, month, tz, visible=permissions.item_filter(current_user, Item))
        if h.item.id not in taken]
    return render_template("monthly/highlights.html", scope=scope, target=target, month=month,
                           chosen=chosen, offered=offered, limit=monthly_pack.MAX_HIGHLIGHTS,
                           local=lambda dt, fmt="%m-%d": _local(dt, fmt))


def _local(dt, fmt):
    from ..display import local
    return local(dt, fmt)


@bp.post("/monthly/highlights")
@roles_required(*STAFF_ROLES)
def choose_highlight():
    scope, target = _target(request.form.get("scope"), request.form.get("id", type=int))
    month = _month(request.form.get("month"))
    now = utcnow()
    back = url_for("monthly.highlights", scope=scope, id=target.id, month=month.code)
    where = monthly_pack.scope_condition(scope, target, month)
    remove = request.form.get("remove", type=int)
    if remove is not None:
        row = db.session.execute(db.select(MonthlyHighlight).where(
            MonthlyHighlight.id == remove, *where)).scalar_one_or_none()
        if row is None:
            abort(404)
        audit.record(current_user, "monthly_highlight.remove", target,
                     {"month": month.code, "item_id": row.item_id}, None, now)
        db.session.delete(row)
        db.session.commit()
        flash(_("Highlight removed."), "ok")
        return redirect(back)
    item_id = request.form.get("item", type=int)
    start, end = month.bounds_utc(current_app.config["TIMEZONE"])
    eligible = db.session.execute(db.select(Item.id).where(
        Item.id == item_id, permissions.item_filter(current_user, Item),
        *monthly_pack.eligible_filter(monthly_pack.community_ids_of(scope, target), start, end)
    )).scalar_one_or_none() if item_id else None
    if eligible is None:
        abort(404)       # not an item of this place and month with both photos
    existing = db.session.execute(db.select(MonthlyHighlight).where(*where)).scalars().all()
    if any(h.item_id == item_id for h in existing):
        return redirect(back)
    if len(existing) >= monthly_pack.MAX_HIGHLIGHTS:
        flash(_("At most %(n)s highlights: remove one first.", n=monthly_pack.MAX_HIGHLIGHTS),
              "error")
        return redirect(back)
    row = MonthlyHighlight(month=month.start_date, item_id=item_id, chosen_by_id=current_user.id,
                           position=max((h.position for h in existing), default=-1) + 1,
                           created_at=now,
                           community_id=target.id if scope == "community" else None,
                           street_id=target.id if scope == "street" else None)
    db.session.add(row)
    audit.record(current_user, "monthly_highlight.add", target, None,
                 {"month": month.code, "item_id": item_id, "position": row.position}, now)
    db.session.commit()
    flash(_("Highlight added."), "ok")
    return redirect(back)
