"""Volunteer service hours (志愿服务时长): a volunteer's own month and year (/me/hours);
staff's list per volunteer and month, the XLSX sheet, and corrections with a reason.

Staff reach their community's volunteers, street staff their street's (or one community
of it), admins all: permissions.own_communities / can_manage_volunteer. The figures are
services/service_hours.py's.
"""
from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   send_file, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..clock import local_date
from .. import permissions
from .. import patrols as rules
from ..clock import utcnow
from ..display import local
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, PatrolMember, User
from ..services import patrols as patrol_service
from ..services import service_hours as service
from ..services.ledger import month_bounds
from .helpers import get_or_404, month_arg, roles_required

bp = Blueprint("hours", __name__)

STAFF_ROLES = (Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERRORS = {
    "hours": lambda: _("Please enter the hours as a number from 0 to 24, e.g. 1.5."),
    "not_ended": lambda: _("This patrol has not ended yet."),
    "reason": lambda: _("Please give a reason (at most %(n)s characters).", n=service.REASON_MAX),
}


def _today(now: datetime) -> date:
    return local_date(now, current_app.config["TIMEZONE"])


def _month(now: datetime) -> date:
    """?month=YYYY-MM, else this month (local)."""
    asked = month_arg(request.args.get("month"))
    return asked.start_date if asked else _today(now).replace(day=1)


def _shift(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _settle(now: datetime) -> None:
    """Quiet patrols are ended (at their last activity) before their hours are read."""
    if patrol_service.close_quiet(now):
        db.session.commit()


# --- the volunteer's own ------------------------------------------------------------------

@bp.get("/me/hours")
@login_required
def mine():
    now = utcnow()
    tz = current_app.config["TIMEZONE"]
    _settle(now)
    month = _month(now)
    start, end = month_bounds(month, tz)
    year_start, _e = month_bounds(date(month.year, 1, 1), tz)
    _s, year_end = month_bounds(date(month.year, 12, 1), tz)
    this_month = _today(now).replace(day=1)
    return render_template(
        "hours/mine.html", month=month,
        month_total=service.user_total(current_user.id, start, end),
        year_total=service.user_total(current_user.id, year_start, year_end),
        entries=service.user_entries(current_user.id, start, end),
        prev=_shift(month, -1), next=_shift(month, 1) if month < this_month else None,
        hours=rules.hours)


# --- staff --------------------------------------------------------------------------------

def _community_ids() -> tuple[list[int], str]:
    """The communities whose volunteers the page covers, and their name: ?community=<id>
    if the user manages it (else 404); else staff their own, street staff their street's,
    admins all."""
    wanted = request.args.get("community", type=int)
    if wanted is not None:
        community = db.session.get(Community, wanted)
        if community is None or not permissions.can_manage_community(current_user, wanted):
            abort(404)
        return [community.id], community.name
    own = permissions.own_communities(current_user)
    if own:
        if current_user.role == Role.STREET_STAFF and current_user.street is not None:
            return list(own), current_user.street.name
        community = db.session.get(Community, own[0])
        return list(own), community.name if community else ""
    if current_user.role == Role.ADMIN:
        return list(db.session.scalars(db.select(Community.id))), _("All communities")
    abort(404)


def _choices() -> list[Community]:
    own = permissions.own_communities(current_user)
    if own:
        return list(db.session.execute(db.select(Community).where(Community.id.in_(own))
                                       .order_by(Community.name)).scalars())
    if current_user.role == Role.ADMIN:
        return list(db.session.execute(db.select(Community).order_by(Community.name)).scalars())
    return []


def _scope_args() -> dict:
    community = request.args.get("community", type=int)
    return {"community": community} if community is not None else {}


@bp.get("/hours")
@roles_required(*STAFF_ROLES)
def staff():
    now = utcnow()
    _settle(now)
    ids, place = _community_ids()
    month = _month(now)
    start, end = month_bounds(month, current_app.config["TIMEZONE"])
    found = service.totals(ids, start, end)
    return render_template(
        "hours/staff.html", month=month, place=place, totals=found,
        total_minutes=sum(t.minutes for t in found), communities=_choices(),
        scope_args=_scope_args(), prev=_shift(month, -1), next=_shift(month, 1),
        hours=rules.hours)


def _volunteer(user_id: int) -> User:
    """A volunteer the user manages (anyone else: 404, people are never revealed)."""
    person = get_or_404(User, user_id)
    if not permissions.can_manage_volunteer(current_user, person):
        abort(404)
    return person


def _volunteer_page(person: User, month: date, errors=None, values=None, status=200):
    start, end = month_bounds(month, current_app.config["TIMEZONE"])
    rows = service.user_entries(person.id, start, end)
    return render_template(
        "hours/volunteer.html", person=person, month=month, entries=rows,
        total_minutes=sum(e.minutes for e in rows), prev=_shift(month, -1),
        next=_shift(month, 1), errors=errors or {}, values=values or {},
        hours=rules.hours), status


@bp.get("/hours/volunteers/<int:user_id>")
@roles_required(*STAFF_ROLES)
def volunteer(user_id):
    now = utcnow()
    _settle(now)
    return _volunteer_page(_volunteer(user_id), _month(now))


@bp.post("/hours/entries/<int:patrol_id>/<int:user_id>")
@roles_required(*STAFF_ROLES)
def correct(patrol_id, user_id):
    person = _volunteer(user_id)
    member = db.session.get(PatrolMember, (patrol_id, person.id))
    if member is None:
        abort(404)
    now = utcnow()
    month = local_date(member.patrol.started_at,
                                current_app.config["TIMEZONE"]).replace(day=1)
    try:
        service.correct(current_user, member, service.parse_hours(request.form.get("hours")),
                        request.form.get("reason", ""), now)
    except service.CorrectionInvalid as exc:
        db.session.rollback()
        errors = {"entry": (patrol_id, user_id), **{k: ERRORS[v]() for k, v in exc.errors.items()}}
        return _volunteer_page(person, month, errors, request.form.to_dict(), 400)
    db.session.commit()
    flash(_("Service time corrected."), "ok")
    return redirect(url_for("hours.volunteer", user_id=person.id, month=f"{month:%Y-%m}")
                    + f"#entry-{patrol_id}")


@bp.get("/hours/export.xlsx")
@roles_required(*STAFF_ROLES)
def export():
    """The month's sheet for the page's volunteers, or one of them (?user=<id>)."""
    now = utcnow()
    _settle(now)
    tz = current_app.config["TIMEZONE"]
    ids, place = _community_ids()
    month = _month(now)
    start, end = month_bounds(month, tz)
    user_id = request.args.get("user", type=int)
    if user_id is not None:
        person = _volunteer(user_id)
        if person.community_id not in ids:
            abort(404)
        place = f"{place} · {person.display_name}"
    rows = service.entries(ids, start, end, user_id=user_id)
    cfg = current_app.config
    notes = [f"服务时长 {place} {month:%Y-%m}",
             f"导出时间：{local(now)}",
             "计算规则：从加入巡查到巡查结束（无人操作自动结束的巡查以最后一次操作为结束），"
             f"每次最多{cfg['PATROL_HOURS_CAP_MINUTES']}分钟，"
             f"按{cfg['PATROL_HOURS_ROUND_MINUTES']}分钟四舍五入；工作人员更正的以更正为准。",
             "巡查按开始日期计入月份。"]
    out = service.xlsx(rows, tz, notes)
    name = f"服务时长-{month:%Y-%m}.xlsx"
    response = send_file(out, mimetype=XLSX, as_attachment=True,
                         download_name=f"service-hours-{month:%Y-%m}.xlsx")
    response.headers["Content-Disposition"] = (
        f"attachment; filename=service-hours-{month:%Y-%m}.xlsx; "
        f"filename*=UTF-8''{quote(name)}")
    return response
