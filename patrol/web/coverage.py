"""The coverage board (巡查覆盖) of a community or street, and the schedules behind it.

Staff see and edit their community's; street staff their street's (the board of the
whole street, or of one of its communities); admins any. Counting is
services/coverage.py's; these views pick the place, check it, and render.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..clock import local_date
from .. import permissions
from ..clock import utcnow
from ..extensions import db
from ..lifecycle import Role
from ..models import Checkpoint, Community, Compound, PatrolSchedule, Street, Team
from ..services import coverage as service
from ..services import patrols as patrol_service
from .helpers import chosen_community, get_or_404, roles_required

bp = Blueprint("coverage", __name__, url_prefix="/coverage")

STAFF_ROLES = (Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
ERRORS = {
    "team": lambda: _("Please choose a team of this compound's community."),
    "compound": lambda: _("Please choose a compound."),
    "checkpoint": lambda: _("Please choose a checkpoint of this compound, or none."),
    "period": lambda: _("Please choose one of the options."),
    "times": lambda: _("Please enter a number from 1 to %(n)s.", n=service.MAX_TIMES),
}


def _may_see_street(street: Street) -> bool:
    if current_user.role == Role.ADMIN:
        return True
    return current_user.role == Role.STREET_STAFF and current_user.street_id == street.id


def _target() -> tuple[str, Community | Street]:
    """The board's place: ?community=<id> or ?street=<id> if the user may see it (else
    404), or by default: staff their community, street staff their street, admins the
    first street (or community)."""
    street_id = request.args.get("street", type=int)
    if street_id is not None:
        street = db.session.get(Street, street_id)
        if street is None or not _may_see_street(street):
            abort(404)
        return "street", street
    if current_user.role == Role.ADMIN:
        community_id = request.args.get("community", type=int)
        if community_id is not None:
            return "community", get_or_404(Community, community_id)
        first = db.session.execute(db.select(Street).order_by(Street.name)).scalars().first()
        if first is not None:
            return "street", first
        community = db.session.execute(
            db.select(Community).order_by(Community.name)).scalars().first()
        if community is None:
            abort(404)
        return "community", community
    if current_user.role == Role.STREET_STAFF and "community" not in request.args:
        if current_user.street_id is None:
            abort(404)
        return "street", get_or_404(Street, current_user.street_id)
    community_id = chosen_community()
    if community_id is None:
        abort(404)
    return "community", get_or_404(Community, community_id)


def _schedule_community() -> Community:
    """The community whose schedules the page edits (?community=<id>, checked)."""
    if current_user.role == Role.ADMIN:
        wanted = request.values.get("community", type=int)
        if wanted is not None:
            return get_or_404(Community, wanted)
        community = db.session.execute(
            db.select(Community).order_by(Community.name)).scalars().first()
        if community is None:
            abort(404)
        return community
    community_id = chosen_community()
    if community_id is None:
        abort(404)
    return get_or_404(Community, community_id)


def _choices(scope: str, target) -> list[Community]:
    """The other places the user may switch the board to."""
    own = permissions.own_communities(current_user)
    if own:
        return list(db.session.execute(db.select(Community).where(
            Community.id.in_(own)).order_by(Community.name)).scalars())
    if current_user.role == Role.ADMIN:
        return list(db.session.execute(
            db.select(Community).order_by(Community.name)).scalars())
    return []


@bp.get("")
@roles_required(*STAFF_ROLES)
def board():
    now = utcnow()
    tz = current_app.config["TIMEZONE"]
    scope, target = _target()
    patrol_service.close_quiet(now)
    db.session.commit()
    found = service.board(current_user, scope, target, local_date(now, tz), tz, now)
    street = target if scope == "street" else target.street
    return render_template(
        "coverage/board.html", board=found, scope=scope, target=target,
        communities=_choices(scope, target),
        street=street if street is not None and _may_see_street(street) else None,
        schedule_community=target.id if scope == "community" else None)


def _schedule_page(community: Community, errors=None, values=None, status=200):
    teams = db.session.execute(db.select(Team).where(Team.community_id == community.id)
                               .order_by(Team.name)).scalars().all()
    compounds = db.session.execute(db.select(Compound).where(
        Compound.community_id == community.id, Compound.archived_at.is_(None))
        .order_by(Compound.name)).scalars().all()
    checkpoints = db.session.execute(
        db.select(Checkpoint).join(Compound, Checkpoint.compound_id == Compound.id)
        .where(Compound.community_id == community.id, Compound.archived_at.is_(None),
               Checkpoint.archived_at.is_(None))
        .order_by(Compound.name, Checkpoint.name)).scalars().all()
    return render_template(
        "coverage/schedules.html", community=community,
        schedules=service.managed_schedules(current_user, community.id),
        teams=teams, compounds=compounds, checkpoints=checkpoints,
        communities=_choices("community", community),
        errors=errors or {}, values=values or {}, max_times=service.MAX_TIMES), status


@bp.get("/schedules")
@roles_required(*STAFF_ROLES)
def schedules():
    return _schedule_page(_schedule_community())


def _load_in(model, ident, community: Community):
    """A team, compound or checkpoint of `community` by its form id, else None."""
    try:
        obj = db.session.get(model, int(ident))
    except (TypeError, ValueError):
        return None
    if obj is None:
        return None
    owner = obj.compound.community_id if isinstance(obj, Checkpoint) else obj.community_id
    return obj if owner == community.id else None


@bp.post("/schedules")
@roles_required(*STAFF_ROLES)
def save_schedule():
    community = _schedule_community()
    if not permissions.can_manage_community(current_user, community.id):
        abort(404)
    form = request.form
    try:
        checkpoint = None
        if form.get("checkpoint_id"):
            checkpoint = _load_in(Checkpoint, form.get("checkpoint_id"), community)
            if checkpoint is None:
                raise service.ScheduleInvalid({"checkpoint": "checkpoint"})
        schedule, created = service.set_schedule(
            current_user, team=_load_in(Team, form.get("team_id"), community),
            compound=_load_in(Compound, form.get("compound_id"), community),
            checkpoint=checkpoint, period=form.get("period", ""), times=form.get("times"),
            now=utcnow())
    except service.ScheduleInvalid as exc:
        db.session.rollback()
        errors = {k: ERRORS[k]() for k in exc.errors}
        return _schedule_page(community, errors, form.to_dict(), 400)
    db.session.commit()
    flash(_("Schedule saved.") if created else _("Schedule changed."), "ok")
    return redirect(url_for("coverage.schedules", community=community.id))


@bp.post("/schedules/<int:schedule_id>/delete")
@roles_required(*STAFF_ROLES)
def delete_schedule(schedule_id):
    schedule = get_or_404(PatrolSchedule, schedule_id)
    if not service.can_manage_schedule(current_user, schedule):
        abort(404)
    community_id = schedule.compound.community_id
    service.delete_schedule(current_user, schedule, utcnow())
    db.session.commit()
    flash(_("Schedule deleted."), "ok")
    return redirect(url_for("coverage.schedules", community=community_id))
