"""Dynamic problem lists: the manager's inbox and the community overview."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import DateTime, and_, or_
from sqlalchemy.orm import joinedload, selectinload

from .. import display, labels, permissions
from ..extensions import db
from ..lifecycle import OPEN, OWED, Role, Status
from ..models import Company, Compound, Item, utcnow
from ..services import counts as tallies
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
    scope = lambda M: permissions.item_filter(current_user, M)  # noqa: E731
    counts_by_tab = inbox_counts(scope, now, current_app.config["DUE_SOON"])
    keys = ([(Item.deadline, False), (Item.id, True)] if tab in ("overdue", "due_soon")
            else [(Item.updated_at, True), (Item.id, True)])
    page = keyset_page(db.select(Item).where(scope(Item), tabs[tab]), keys,
                       total=counts_by_tab[tab], per_page=current_app.config["PAGE_SIZE"],
                       options=Item.row_options(with_compound=True))
    counts = counts_by_tab
    return render_template("lists/inbox.html", tab=tab, counts=counts, page=page, now=now)


def inbox_counts(scope, now: datetime, due_soon: timedelta) -> dict[str, int]:
    """The tabs' counts: by status and overdue from the tallies (services/counts.py), due
    soon from the index of open deadlines (a range of a few days' deadlines)."""
    by_status: dict[str, int] = {}
    overdue = 0
    for status, _category, n, n_overdue in tallies.figures(db.session, scope, lambda M: [],
                                                          now):
        by_status[status] = by_status.get(status, 0) + n
        overdue += n_overdue
    soon = db.session.execute(
        db.select(db.func.count()).select_from(Item)
        .where(scope(Item), Item.status.in_(OWED_VALUES), Item.deadline >= now,
               Item.deadline <= now + due_soon)).scalar_one()
    return {"new": by_status.get(Status.REPORTED.value, 0),
            "reopened": by_status.get(Status.REOPENED.value, 0),
            "overdue": overdue, "due_soon": soon,
            "awaiting_check": by_status.get(Status.FIXED.value, 0)}


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


def overview_conditions(f, now, M=Item):
    """The filter's conditions on Item (with the dates), or on a tally model (without:
    `counts.figures` takes them apart)."""
    conds = []
    if "compound" in f:
        conds.append(M.compound_id == f["compound"])
    if "company" in f:
        conds.append(M.company_id == f["company"])
    if "category" in f:
        conds.append(M.category == f["category"])
    if f.get("status") == "open":
        conds.append(M.status.in_(OPEN_VALUES))
    elif f.get("status") == "overdue":
        conds.append(M.status.in_(OWED_VALUES))
        if M is Item:
            conds.append(Item.deadline < now)
    elif "status" in f:
        conds.append(M.status == f["status"])
    if M is Item and "since" in f:
        conds.append(Item.created_at >= f["since"])
    if M is Item and "until" in f:
        conds.append(Item.created_at < f["until"] + timedelta(days=1))
    return conds


@bp.get("/overview")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def overview():
    now = utcnow()
    f = overview_filters(request.args)
    scope = lambda M: permissions.item_filter(current_user, M)  # noqa: E731
    # Every figure on the page (by status, by category, overdue, total) from the tallies
    # (services/counts.py): their size follows the days and categories, not the items.
    by_status, by_category, overdue_count = {}, {}, 0
    for status, category, n, n_overdue in tallies.figures(
            db.session, scope, lambda M: overview_conditions(f, now, M), now,
            since=f.get("since"),
            until=f["until"] + timedelta(days=1) if "until" in f else None,
            overdue_only=f.get("status") == "overdue"):
        by_status[status] = by_status.get(status, 0) + n
        by_category[category] = by_category.get(category, 0) + n
        overdue_count += n_overdue
    # The filter's compounds and companies first: the rows' compounds and companies are
    # then in the session already (a many-to-one by key is read from the identity map),
    # and only those the filter lacks are read, in one query each, if any.
    compounds = db.session.execute(
        db.select(Compound).where(permissions.compound_filter(current_user, Compound))
        .order_by(Compound.name)).scalars().all()
    companies = db.session.execute(
        db.select(Company).where(Company.id.in_({c.company_id for c in compounds}))
        .order_by(Company.name)).scalars().all()
    page = keyset_page(db.select(Item).where(scope(Item), *overview_conditions(f, now)),
                       [(Item.created_at, True), (Item.id, True)],
                       total=sum(by_status.values()),
                       per_page=current_app.config["PAGE_SIZE"],
                       # The building joined to the rows' own statement (one each).
                       options=[selectinload(Item.photos), joinedload(Item.building)])
    held = [*load_missing(Compound, {i.compound_id for i in page.items}, compounds),
            *load_missing(Company, {i.company_id for i in page.items}, companies)]
    escalated = escalation_counts(scope, now)
    # Labels looked up once, not once per use: the statuses and categories are each
    # listed twice (the figures and the filter's options).
    statuses = [s.value for s in Status]
    form, lang = display.hazard_form(), display.current_lang()
    return render_template("lists/overview.html", f=f, by_status=by_status,
                           escalated=escalated,
                           by_category=by_category, overdue_count=overdue_count, page=page,
                           compounds=compounds, companies=companies, now=now,
                           statuses=statuses, args=request.args,
                           status_labels={s: str(labels.STATUS.get(s, s)) for s in statuses},
                           categories=[(c, form.label(c, lang)) for c in form.categories],
                           held=held)   # kept referenced while the rows are drawn


def load_missing(model, ids, loaded):
    """The rows of `model` among `ids` that `loaded` lacks, read in one query (none if
    it lacks none); the caller keeps them referenced while the page is drawn."""
    missing = ids - {None} - {row.id for row in loaded}
    if not missing:
        return []
    return db.session.execute(db.select(model).where(model.id.in_(missing))).scalars().all()


def escalation_counts(scope, now: datetime) -> dict[str, int]:
    """How many items of the staff's further escalation groups (services/escalation.py)
    the overview links to: fixes late for their look-back, 督办, disputes."""
    from ..services import escalation
    conds = {"flagged": escalation.flagged_cond(), "disputed": escalation.disputed_cond()}
    # One count each, so that each reads its own small partial index (models/counts.py)
    # rather than one pass over every open item; late look-backs from the tallies (whole
    # days) and the partial index of fixes (the part-day). One statement for all four.
    whole, part = tallies.lookback_late_counts(scope, now - escalation.lookback_limit())
    row = db.session.execute(db.select(
        whole.label("late_whole"), part.label("late_part"), *[
            db.select(db.func.count()).select_from(Item)
            .where(scope(Item), Item.status.in_(OPEN_VALUES), cond).scalar_subquery()
            .label(key) for key, cond in conds.items()])).one()._mapping
    return {"lookback_late": int(row["late_whole"]) + int(row["late_part"]),
            **{key: row[key] for key in conds}}


# --- keyset pagination ---------------------------------------------------------------

class ListPage:
    """One page of a list read by keyset (a cursor: the sort key of the row before it),
    with what the pager needs: its number and the count of pages (from the tallies),
    and the query arguments of the next and previous pages."""

    def __init__(self, items, number: int, per_page: int, total: int,
                 next_args: dict | None, prev_args: dict | None):
        self.items, self.page, self.per_page, self.total = items, number, per_page, total
        self.next_args, self.prev_args = next_args, prev_args
        self.pages = max(1, -(-total // per_page)) if total else 0
        self.has_next, self.has_prev = next_args is not None, prev_args is not None
        # What partials/pager.html (page numbers) reads.
        self.next_num = number + 1 if self.has_next else None
        self.prev_num = number - 1 if self.has_prev else None


def encode_cursor(values) -> str:
    return "~".join(v.isoformat() if isinstance(v, datetime) else str(v) for v in values)


def decode_cursor(text: str | None, keys) -> list | None:
    """The values of a cursor, typed as its keys' columns; None if absent or malformed."""
    if not text:
        return None
    parts = text.split("~")
    if len(parts) != len(keys):
        return None
    try:
        return [datetime.fromisoformat(p) if isinstance(col.type, DateTime) else int(p)
                for p, (col, _desc) in zip(parts, keys, strict=True)]
    except ValueError:
        return None


def after_cond(keys, values):
    """Rows after `values` in the order of `keys` ([(column, descending)]): one range on
    the first key (an index range), then the exact tie-breaks."""
    ors = []
    for i, (col, desc) in enumerate(keys):
        eqs = [k == v for (k, _d), v in zip(keys[:i], values[:i], strict=True)]
        ors.append(and_(*eqs, col < values[i] if desc else col > values[i]))
    first, desc = keys[0]
    bound = first <= values[0] if desc else first >= values[0]
    return and_(bound, or_(*ors))


def keyset_page(query, keys, *, total: int, per_page: int, options=()) -> ListPage:
    """The page of `query` (a select of Item, unordered) that the request asks for:
    `after` / `before` a cursor (keyset: the index range starts at the cursor, whatever
    the depth), or `page=N` without one (old links: the ids by OFFSET, then the rows)."""
    number = page_arg()
    order = [col.desc() if desc else col.asc() for col, desc in keys]
    after = decode_cursor(request.args.get("after"), keys)
    before = None if after else decode_cursor(request.args.get("before"), keys)
    if after is not None:
        rows = db.session.execute(query.where(after_cond(keys, after)).order_by(*order)
                                  .options(*options).limit(per_page + 1)).scalars().all()
        more_after, more_before = len(rows) > per_page, True
        rows = rows[:per_page]
    elif before is not None:
        flipped = [(col, not desc) for col, desc in keys]
        rows = db.session.execute(
            query.where(after_cond(flipped, before))
            .order_by(*[col.desc() if desc else col.asc() for col, desc in flipped])
            .options(*options).limit(per_page + 1)).scalars().all()
        more_before, more_after = len(rows) > per_page, True
        rows = rows[:per_page][::-1]
        number = max(1, number)
    else:
        offset = (number - 1) * per_page
        if offset:
            # The offset rows are skipped in the index alone; only the page's rows are read.
            ids = db.session.execute(query.with_only_columns(Item.id).order_by(*order)
                                     .offset(offset).limit(per_page + 1)).scalars().all()
            by_id = {i.id: i for i in db.session.execute(
                db.select(Item).where(Item.id.in_(ids[:per_page])).options(*options)).scalars()}
            rows = [by_id[i] for i in ids[:per_page] if i in by_id]
            more_after = len(ids) > per_page
        else:
            rows = db.session.execute(query.order_by(*order).options(*options)
                                      .limit(per_page + 1)).scalars().all()
            more_after = len(rows) > per_page
            rows = rows[:per_page]
        more_before = number > 1
    key_of = lambda item: encode_cursor(getattr(item, col.key) for col, _d in keys)  # noqa: E731
    next_args = {"page": number + 1, "after": key_of(rows[-1]), "before": None} \
        if rows and more_after else None
    prev_args = None
    if more_before and number > 1:
        prev_args = {"page": number - 1, "after": None,
                     "before": key_of(rows[0]) if rows and number > 2 else None}
    return ListPage(rows, number, per_page, max(total, (number - 1) * per_page + len(rows)),
                    next_args, prev_args)
