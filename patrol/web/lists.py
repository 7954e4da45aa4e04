"""Dynamic problem lists: the manager's inbox and the community overview."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import and_, case

from .. import labels, permissions
from ..extensions import db
from ..lifecycle import OPEN, OWED, Role, Status
from ..models import Company, Compound, Item, utcnow
from .helpers import hazard_form, page_arg, parse_local, roles_required

bp = Blueprint("lists", __name__)
bp.add_app_template_global(lambda k: labels.ESCALATION.get(k, k), "escalation_label")
OWED_VALUES = [s.value for s in OWED]
OPEN_VALUES = [s.value for s in OPEN]


@bp.get("/")
@login_required
def home():
    role = current_user.role
    if role in (Role.MANAGER, Role.DEPARTMENT):   # a department's inbox: its items only
        return redirect(url_for("lists.inbox"))
    if role in (Role.STAFF, Role.STREET_STAFF, Role.ADMIN):
        return redirect(url_for("lists.overview"))
    if role == Role.COMMITTEE and current_user.compound_id is not None:
        return redirect(url_for("compounds.show", compound_id=current_user.compound_id))
    # Volunteers: the compounds page, which opens with 待回头看 (N).
    return redirect(url_for("compounds.index"))


def inbox_tabs(now: datetime, due_soon: timedelta):
    """Each tab is a filter over the items the user may see."""
    return {
        "new": Item.status == Status.REPORTED.value,
        "reopened": Item.status == Status.REOPENED.value,
        "overdue": and_(Item.status.in_(OWED_VALUES), Item.deadline < now),
        "due_soon": and_(Item.status.in_(OWED_VALUES), Item.deadline >= now,
                         Item.deadline <= now + due_soon),
        "awaiting_check": Item.status == Status.FIXED.value,
    }


@bp.get("/inbox")
@roles_required(Role.MANAGER, Role.DEPARTMENT, Role.ADMIN)
def inbox():
    now = utcnow()
    tabs = inbox_tabs(now, current_app.config["DUE_SOON"])
    tab = request.args.get("tab", "new")
    if tab not in tabs:
        tab = "new"
    scope = permissions.item_filter(current_user, Item)
    # Every tab holds open items only: count them all in one pass over the open items.
    row = db.session.execute(
        db.select(*[db.func.count(case((cond, 1))).label(name) for name, cond in tabs.items()])
        .where(scope, Item.status.in_(OPEN_VALUES))).one()
    counts = dict(row._mapping)
    order = Item.deadline.asc() if tab in ("overdue", "due_soon") else Item.updated_at.desc()
    page = db.paginate(db.select(Item).where(scope, tabs[tab]).order_by(order, Item.id.desc())
                       .options(*Item.row_options(with_compound=True)),
                       page=page_arg(), per_page=current_app.config["PAGE_SIZE"],
                       error_out=False, count=False)
    page.total = counts[tab]
    return render_template("lists/inbox.html", tab=tab, counts=counts, page=page, now=now)


def overview_filters(args):
    """Parse the filter form; unknown values are ignored, never an error page."""
    f = {}
    for key in ("compound", "company"):
        value = args.get(key, type=int)
        if value:
            f[key] = value
    if args.get("category") and hazard_form().category(args["category"]):
        f["category"] = args["category"]
    status = args.get("status", "")
    if status in {s.value for s in Status} | {"open", "overdue"}:
        f["status"] = status
    for key in ("since", "until"):
        dt = parse_local(args.get(key) + "T00:00") if args.get(key) else None
        if dt:
            f[key] = dt
    return f


def overview_conditions(f, now):
    conds = []
    if "compound" in f:
        conds.append(Item.compound_id == f["compound"])
    if "company" in f:
        conds.append(Item.company_id == f["company"])
    if "category" in f:
        conds.append(Item.category == f["category"])
    if f.get("status") == "open":
        conds.append(Item.status.in_([s.value for s in OPEN]))
    elif f.get("status") == "overdue":
        conds.append(and_(Item.status.in_(OWED_VALUES), Item.deadline < now))
    elif "status" in f:
        conds.append(Item.status == f["status"])
    if "since" in f:
        conds.append(Item.created_at >= f["since"])
    if "until" in f:
        conds.append(Item.created_at < f["until"] + timedelta(days=1))
    return conds


@bp.get("/overview")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def overview():
    now = utcnow()
    f = overview_filters(request.args)
    scope = [permissions.item_filter(current_user, Item), *overview_conditions(f, now)]
    # One pass over the matching items gives every figure on the page (by status, by
    # category, overdue, total) instead of one scan each.
    is_overdue = and_(Item.status.in_(OWED_VALUES), Item.deadline < now)
    by_status, by_category, overdue_count = {}, {}, 0
    for status, category, n, n_overdue in db.session.execute(
            db.select(Item.status, Item.category, db.func.count(),
                      db.func.count(case((is_overdue, 1))))
            .where(*scope).group_by(Item.status, Item.category)):
        by_status[status] = by_status.get(status, 0) + n
        by_category[category] = by_category.get(category, 0) + n
        overdue_count += n_overdue
    page = db.paginate(db.select(Item).where(*scope)
                       .order_by(Item.created_at.desc(), Item.id.desc())
                       .options(*Item.row_options(with_compound=True)),
                       page=page_arg(), per_page=current_app.config["PAGE_SIZE"],
                       error_out=False, count=False)
    page.total = sum(by_status.values())
    compounds = db.session.execute(
        db.select(Compound).where(permissions.compound_filter(current_user, Compound))
        .order_by(Compound.name)).scalars().all()
    companies = db.session.execute(
        db.select(Company).where(Company.id.in_({c.company_id for c in compounds}))
        .order_by(Company.name)).scalars().all()
    escalated = escalation_counts(permissions.item_filter(current_user, Item), now)
    return render_template("lists/overview.html", f=f, by_status=by_status,
                           escalated=escalated,
                           by_category=by_category, overdue_count=overdue_count, page=page,
                           compounds=compounds, companies=companies, now=now,
                           statuses=[s.value for s in Status], args=request.args)


def escalation_counts(scope, now: datetime) -> dict[str, int]:
    """How many items of the staff's further escalation groups (services/escalation.py)
    the overview links to: fixes late for their look-back, 督办, disputes."""
    from ..services import escalation
    conds = {"lookback_late": escalation.lookback_late_cond(now, escalation.lookback_limit()),
             "flagged": escalation.flagged_cond(), "disputed": escalation.disputed_cond()}
    row = db.session.execute(
        db.select(*[db.func.count(case((cond, 1))).label(key) for key, cond in conds.items()])
        .where(scope, Item.status.in_(OPEN_VALUES))).one()
    return dict(row._mapping)
