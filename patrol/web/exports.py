"""Ledger downloads (台账): every list staff, street staff and managers see, as XLSX or CSV,
with exactly the rows the page's filter shows; and the monthly ledger for the meeting.

The rows are the list's own conditions: the permission filter (permissions.item_filter)
plus the overview's filters, a manager inbox tab, or the escalation list.
"""
from __future__ import annotations

from datetime import date

from flask import (Blueprint, Response, abort, current_app, request, send_file, stream_with_context)
from flask_babel import gettext as _
from flask_login import current_user

from .. import labels, permissions
from ..clock import utcnow
from ..display import category_label, current_lang
from ..extensions import db
from ..ledger import HISTORY_COLUMNS, ITEM_COLUMNS
from ..lifecycle import Role
from ..models import Community, Company, Compound, Item, Street
from ..services import escalation, ledger
from .helpers import month_arg, roles_required
from .lists import inbox_tabs, overview_conditions, overview_filters

bp = Blueprint("exports", __name__, url_prefix="/exports")

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "csv": "text/csv; charset=utf-8"}


def _lang() -> str:
    return "en" if request.args.get("lang") == "en" or current_lang() == "en" else "zh"


def list_conditions(args, now):
    """The rows a list page shows: its filters (overview), tab (manager inbox) or the
    escalation list, always within what the user may see. Returns (conds, description)."""
    f = overview_filters(args)
    conds = [permissions.item_filter(current_user, Item), *overview_conditions(f, now)]
    described = []
    if "compound" in f:
        compound = db.session.get(Compound, f["compound"])   # named only where it may be seen
        described.append(compound.name if compound and permissions.can_see_compound(
            current_user, compound) else str(f["compound"]))
    if "company" in f:
        company = db.session.get(Company, f["company"])
        described.append(company.name if company else str(f["company"]))
    if "category" in f:
        described.append(category_label(f["category"]))
    if "status" in f:   # as the overview's status menu says it
        groups = {"open": _("All open"), "overdue": _("Overdue")}
        described.append(str(groups.get(f["status"]) or labels.STATUS.get(f["status"],
                                                                          f["status"])))
    for key, word in (("since", _("From")), ("until", _("To"))):
        if key in f:
            # The day as typed: f[key] is that local midnight in UTC (the day before).
            described.append(f"{word} {ledger.to_local_date(f[key]):%Y-%m-%d}")
    tab = args.get("tab")
    if tab:
        tabs = inbox_tabs(now, current_app.config["DUE_SOON"])
        if tab not in tabs:
            abort(404)
        conds.append(tabs[tab])
        described.append(tab)
    if args.get("escalated") == "1":
        # Everything the escalation page lists, except "due soon" (not late yet).
        from sqlalchemy import or_
        conds.append(or_(escalation.escalated_cond(now, current_app.config["ACK_ESCALATE"]),
                         escalation.lookback_late_cond(now, escalation.lookback_limit()),
                         escalation.flagged_cond(), escalation.disputed_cond()))
        described.append(str(_("Escalations")))
    return conds, described


def _filename(stem: str, now, fmt: str) -> str:
    return f"{stem}-{ledger.export_time(now).replace(' ', '-').replace(':', '')}.{fmt}"


@bp.get("/items.<fmt>")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)
def items(fmt):
    if fmt not in FORMATS:
        abort(404)
    now, lang = utcnow(), _lang()
    conds, described = list_conditions(request.args, now)
    meta = [("Filter: " if lang == "en" else "筛选：") + ("; ".join(described) or "—"),
            ("Exported: " if lang == "en" else "导出时间：") + ledger.export_time(now)]
    name = _filename("patrol-items" if lang == "en" else "问题台账", now, fmt)
    if fmt == "csv":
        rows = ledger.item_rows(conds, now, lang)
        body = stream_with_context(ledger.csv_chunks(meta, ITEM_COLUMNS, rows, lang))
        response = Response(body, mimetype=FORMATS["csv"])
        response.headers["Content-Disposition"] = _disposition(name)
        return response
    out = ledger.items_xlsx(conds, now, lang, meta)
    return send_file(out, mimetype=FORMATS["xlsx"], as_attachment=True, download_name=name)


@bp.post("/items.<fmt>/job")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)
def items_job(fmt):
    """The same ledger made by the job queue, for a large one: the job's page shows the
    progress, then the file. The direct download above stays."""
    from flask import redirect, url_for
    from ..jobs import runner
    if fmt not in FORMATS:
        abort(404)
    list_conditions(request.args, utcnow())      # a bad tab is refused here, not in the job
    args = {k: v for k, v in request.args.items() if k != "csrf_token"}
    job = runner.submit("ledger", user=current_user, title=str(_("Ledger export")) + f" ({fmt})",
                        params={"fmt": fmt, "lang": _lang(), "args": args})
    return redirect(url_for("jobs.show", job_id=job.id))


@bp.get("/history.csv")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)
def history():
    """The XLSX's second sheet as its own CSV: one row per event of the same items."""
    now, lang = utcnow(), _lang()
    conds, described = list_conditions(request.args, now)
    meta = [("Filter: " if lang == "en" else "筛选：") + ("; ".join(described) or "—"),
            ("Exported: " if lang == "en" else "导出时间：") + ledger.export_time(now)]
    body = stream_with_context(ledger.csv_chunks(meta, HISTORY_COLUMNS,
                                                 ledger.history_rows(conds, lang), lang))
    response = Response(body, mimetype=FORMATS["csv"])
    response.headers["Content-Disposition"] = _disposition(
        _filename("patrol-history" if lang == "en" else "处理记录", now, "csv"))
    return response


def _disposition(name: str) -> str:
    from urllib.parse import quote
    return f"attachment; filename=ledger.csv; filename*=UTF-8''{quote(name)}"


@bp.get("/monthly.xlsx")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def monthly():
    """The monthly ledger of one community (`community=<id>`) or street (`street=<id>`),
    for `month=YYYY-MM` (default: last month)."""
    now, lang = utcnow(), _lang()
    month = _month(request.args.get("month"), now)
    conds = [permissions.item_filter(current_user, Item)]
    community_id = request.args.get("community", type=int)
    street_id = request.args.get("street", type=int)
    if community_id:
        community = db.session.get(Community, community_id)
        if community is None or not permissions.can_manage_community(current_user, community.id):
            abort(404)
        conds.append(Item.community_id == community.id)
        place = community.name
    elif street_id:
        street = db.session.get(Street, street_id)
        ids = [c.id for c in street.communities] if street else []
        if not ids or not all(permissions.can_manage_community(current_user, i) for i in ids):
            abort(404)
        conds.append(Item.community_id.in_(ids))
        place = street.name if street else ""
    else:
        own = permissions.own_communities(current_user)
        if own:
            conds.append(Item.community_id.in_(own))
        elif Role(current_user.role) != Role.ADMIN:
            abort(404)
        place = _("All") if not own else ", ".join(
            c.name for c in db.session.scalars(db.select(Community).where(Community.id.in_(own))))
    figures = ledger.monthly(conds, month, now, lang)
    meta = [f"{place} {month:%Y-%m}",
            ("Exported: " if lang == "en" else "导出时间：") + ledger.export_time(now)]
    out = ledger.monthly_xlsx(figures, meta, lang)
    return send_file(out, mimetype=FORMATS["xlsx"], as_attachment=True,
                     download_name=f"monthly-{month:%Y-%m}.xlsx")


def _month(value: str | None, now) -> date:
    """`YYYY-MM`, else the last complete month in local time."""
    asked = month_arg(value)
    if asked is not None:
        return asked.start_date
    local = ledger.to_local_date(now)
    first = local.replace(day=1)
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)
