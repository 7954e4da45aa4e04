"""Item tallies (models/counts.py): kept in step with the item table in the same
transaction, and read by the list pages instead of counting all history.

Every flush that adds, changes or deletes an Item moves one count from the item's old
key to its new key (a session listener, so no writer can forget it: items.report/act,
handover, residents' acceptance, district import all go through the ORM). The counts
are upserted in a fixed key order, so two transactions touching the same rows wait
for each other instead of deadlocking.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (Date, Integer, case, cast, event, func, inspect, literal, select, true,
                        union_all)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..lifecycle import OWED, Status
from ..models import Item, ItemTally, ItemTallyDay, utcnow
from ..models.counts import NO_ID, NOT_DUE, ItemTallyDayDue

OWED_VALUES = tuple(s.value for s in OWED)
KEY_ATTRS = ("community_id", "compound_id", "company_id", "department_id", "status",
             "category", "deadline", "fixed_at", "created_at")


def due_day(status: str, deadline: datetime | None, fixed_at: datetime | None = None) -> date:
    """The UTC day an item's clock runs to: its deadline's while it owes work, its fix's
    while the fix waits for the look-back (services/escalation.lookback_late_cond)."""
    if status in OWED_VALUES and deadline is not None:
        return deadline.date()
    if status == Status.FIXED.value and fixed_at is not None:
        return fixed_at.date()
    return NOT_DUE


def _keys(v: dict) -> tuple[tuple, tuple, tuple | None]:
    """(ItemTally key, ItemTallyDay key, ItemTallyDayDue key or None: only the items
    that owe work have one) of an item's values."""
    due = due_day(v["status"], v["deadline"], v["fixed_at"])
    company = v["company_id"] or NO_ID
    day = v["created_at"].date()
    return ((v["community_id"], v["compound_id"], company, v["department_id"] or NO_ID,
             v["status"], v["category"], due),
            (v["community_id"], day, v["compound_id"], company, v["status"], v["category"]),
            (v["community_id"], due, day, v["compound_id"], company, v["status"],
             v["category"]) if v["status"] in OWED_VALUES else None)


def _current(item: Item) -> dict:
    return {a: getattr(item, a) for a in KEY_ATTRS}


def _previous(item: Item) -> dict:
    state: Any = inspect(item)
    values = {}
    for a in KEY_ATTRS:
        hist = state.attrs[a].history
        values[a] = hist.deleted[0] if hist.deleted else getattr(item, a)
    return values


@event.listens_for(Session, "before_flush")
def _tally_before_flush(session, flush_context, instances):
    deltas: Counter = Counter()
    day_deltas: Counter = Counter()
    due_deltas: Counter = Counter()

    def move(values: dict, sign: int) -> None:
        key, day_key, due_key = _keys(values)
        deltas[key] += sign
        day_deltas[day_key] += sign
        if due_key is not None:
            due_deltas[due_key] += sign

    for obj in session.new:
        if isinstance(obj, Item):
            # The column defaults, now rather than at INSERT, so the tally sees them.
            if obj.status is None:
                obj.status = Status.REPORTED.value
            if obj.created_at is None:
                obj.created_at = utcnow()
            # A key left unset goes in as NULL, said so: else the session keeps no value
            # for it after the INSERT, and a later change of it has no old value to move
            # the item from (a department set by routing a new item, say).
            for a in KEY_ATTRS:
                if a not in obj.__dict__:
                    setattr(obj, a, None)
            move(_current(obj), +1)
    for obj in session.dirty:
        if isinstance(obj, Item) and session.is_modified(obj):
            before, after = _previous(obj), _current(obj)
            if before != after:
                move(before, -1)
                move(after, +1)
    for obj in session.deleted:
        if isinstance(obj, Item):
            move(_previous(obj), -1)
    if deltas or day_deltas or due_deltas:
        apply(session.connection(), deltas, day_deltas, due_deltas)


KEY_COLUMNS = {ItemTally: ("community_id", "compound_id", "company_id", "department_id",
                           "status", "category", "due_day"),
               ItemTallyDay: ("community_id", "day", "compound_id", "company_id", "status",
                              "category"),
               ItemTallyDayDue: ("community_id", "due_day", "day", "compound_id", "company_id",
                                 "status", "category")}


# One upsert statement per (dialect, tally table), built once: building it (and its
# `excluded` alias) for every flush cost more than running it.
_UPSERTS: dict[tuple[str, type], Any] = {}


def _upsert(dialect: str, model) -> Any:
    stmt = _UPSERTS.get((dialect, model))
    if stmt is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        base = insert(model.__table__)
        stmt = _UPSERTS[(dialect, model)] = base.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS[model]),
            set_={"n": model.__table__.c.n + base.excluded.n})
    return stmt


def apply(conn, deltas: Counter, day_deltas: Counter, due_deltas: Counter) -> None:
    dialect = conn.dialect.name
    for model, changes in ((ItemTally, deltas), (ItemTallyDay, day_deltas),
                           (ItemTallyDayDue, due_deltas)):
        cols = KEY_COLUMNS[model]
        rows = [dict(zip(cols, key, strict=True), n=n)
                for key, n in sorted(changes.items(), key=lambda kv: repr(kv[0])) if n]
        if rows:   # one executemany per table; its rows go in key order (the module's note)
            conn.execute(_upsert(dialect, model), rows)


# --- rebuilding from the item table (migration, bench, repair) ------------------------

def _date(conn, column):
    return func.date(column) if conn.dialect.name == "sqlite" else cast(column, Date)


def rebuild(conn) -> None:
    """Recount the tables from the items (one GROUP BY each)."""
    i = Item.__table__
    due = case((i.c.status.in_(OWED_VALUES) & i.c.deadline.is_not(None),
                _date(conn, i.c.deadline)),
               ((i.c.status == Status.FIXED.value) & i.c.fixed_at.is_not(None),
                _date(conn, i.c.fixed_at)), else_=literal(NOT_DUE, Date))
    company = func.coalesce(i.c.company_id, NO_ID)
    department = func.coalesce(i.c.department_id, NO_ID)
    conn.execute(ItemTally.__table__.delete())
    conn.execute(ItemTallyDay.__table__.delete())
    conn.execute(ItemTallyDayDue.__table__.delete())
    cols = [i.c.community_id, i.c.compound_id, company, department, i.c.status,
            i.c.category, due]
    conn.execute(ItemTally.__table__.insert().from_select(
        list(KEY_COLUMNS[ItemTally]) + ["n"],
        select(*cols, func.count()).group_by(*cols)))
    day = _date(conn, i.c.created_at)
    day_cols = [i.c.community_id, day, i.c.compound_id, company, i.c.status, i.c.category]
    conn.execute(ItemTallyDay.__table__.insert().from_select(
        list(KEY_COLUMNS[ItemTallyDay]) + ["n"],
        select(*day_cols, func.count()).group_by(*day_cols)))
    due_cols = [i.c.community_id, due, day, i.c.compound_id, company, i.c.status,
                i.c.category]
    conn.execute(ItemTallyDayDue.__table__.insert().from_select(
        list(KEY_COLUMNS[ItemTallyDayDue]) + ["n"],
        select(*due_cols, func.count()).where(i.c.status.in_(OWED_VALUES))
        .group_by(*due_cols)))


# --- reading -----------------------------------------------------------------------------

def day_start(d: date) -> datetime:
    return datetime.combine(d, time())


def figures(session, scope, conds, now: datetime, *, since: datetime | None = None,
            until: datetime | None = None, overdue_only: bool = False):
    """[(status, category, n, n_overdue)] of the items that `scope(M)` and `conds(M)`
    select (callables building conditions on Item or a tally model, which share the
    column names), created in [since, until): whole UTC days from the tallies, the
    part-days at either end and today's deadlines passed so far from the item table
    (its indexes), so the cost follows the number of days, not of items."""
    today = now.date()
    owed_passed = lambda M: M.status.in_(OWED_VALUES) & (M.due_day < today)  # noqa: E731
    # Every part below is a select of (status, category, n, n_overdue) rows that add up:
    # they go to the database as one UNION ALL, one round trip whatever the filter.
    parts: list[Any] = []

    def from_tally():
        M = ItemTally
        where = [scope(M), *conds(M)]
        if overdue_only:
            where.append(owed_passed(M))
        parts.append(select(M.status, M.category, func.sum(M.n),
                            func.sum(case((owed_passed(M), M.n), else_=0)))
                     .where(*where).group_by(M.status, M.category))

    def from_day_tallies(first: date | None, last: date | None):
        """Whole days [first, last): every item from ItemTallyDay; the overdue ones are
        its owed items less those due today or later (ItemTallyDayDue's rows from
        today's due day on: a few weeks of deadlines at most, not the history), which
        count here as negative rows of the same keys."""
        def days(M):
            return [*([M.day >= first] if first is not None else []),
                    *([M.day < last] if last is not None else [])]
        D, U = ItemTallyDay, ItemTallyDayDue
        # Owing work is a matter of the status, which the rows are grouped by: decided
        # once per group after the sum, not for each of the (thousands of) tally rows.
        total = func.sum(D.n)
        owed_n = case((D.status.in_(OWED_VALUES), total), else_=0)
        parts.append(select(D.status, D.category, total, total if overdue_only else owed_n)
                     .where(scope(D), *conds(D), *days(D),
                            *([D.status.in_(OWED_VALUES)] if overdue_only else []))
                     .group_by(D.status, D.category))
        not_passed = -func.sum(U.n)
        parts.append(select(U.status, U.category,
                            not_passed if overdue_only else literal(0, Integer), not_passed)
                     .where(scope(U), *conds(U), *days(U), U.due_day >= today,
                            U.status.in_(OWED_VALUES))
                     .group_by(U.status, U.category))

    def from_items(extra, only_due_today=False, sign=1):
        overdue = Item.status.in_(OWED_VALUES) & (Item.deadline < now)
        where = [scope(Item), *conds(Item), *extra]
        if only_due_today:   # counted by the tally, but not yet as overdue
            where += [Item.status.in_(OWED_VALUES), Item.deadline >= day_start(today),
                      Item.deadline < now]
            parts.append(select(Item.status, Item.category,
                                func.count() if overdue_only else literal(0, Integer),
                                func.count())
                         .where(*where).group_by(Item.status, Item.category))
            return
        if overdue_only:
            where.append(overdue)
        n, n_overdue = func.count(), func.count(case((overdue, 1)))
        parts.append(select(Item.status, Item.category, *((n, n_overdue) if sign > 0
                                                          else (-n, -n_overdue)))
                     .where(*where).group_by(Item.status, Item.category))

    if since is None and until is None:
        from_tally()
        from_items([], only_due_today=True)
    else:
        # Whole days [first, last) from the day tally; the rest from the items.
        first = since.date() + timedelta(days=1) if since and since != day_start(since.date()) \
            else (since.date() if since else None)
        last = until.date() if until else None
        # A range ending later than now (a filter "until today"): its last day, so far,
        # is that day's tally row less the items dated after `until` (none unless clocks
        # disagree), instead of all of today's items read one by one.
        after_until = until is not None and until >= now and until > day_start(until.date())
        if after_until and last is not None:
            last += timedelta(days=1)
        if first is not None and last is not None and first >= last:
            from_items([Item.created_at >= since, Item.created_at < until])
        else:
            if first is not None and since is not None and since < day_start(first):
                from_items([Item.created_at >= since, Item.created_at < day_start(first)])
            if after_until and last is not None:
                from_items([Item.created_at >= until, Item.created_at < day_start(last)],
                           sign=-1)
            elif last is not None and until is not None and until > day_start(last):
                from_items([Item.created_at >= day_start(last), Item.created_at < until])
            from_day_tallies(first, last)
            within = [Item.created_at >= day_start(first)] if first is not None else []
            if last is not None:
                within.append(Item.created_at < day_start(last))
            from_items(within, only_due_today=True)
    out: Counter = Counter()
    over: Counter = Counter()
    # (union_all typed as Any: mypy 2.4 crashes expanding its variadic signature here.)
    combine: Any = union_all
    statement = parts[0] if len(parts) == 1 else combine(*parts)
    for status, category, n, n_over in session.execute(statement):
        out[(status, category)] += int(n or 0)
        over[(status, category)] += int(n_over or 0)
    return [(s, c, n, over[(s, c)]) for (s, c), n in out.items() if n]


def lookback_late(session, scope, before: datetime) -> int:
    """Fixes recorded before `before` still waiting for their check: whole days from the
    tally (its due_day is the fix's day), the part-day from the partial index of fixes."""
    whole, part = lookback_late_counts(scope, before)
    return int(session.execute(select(whole + part)).scalar_one())


def lookback_late_counts(scope, before: datetime):
    """`lookback_late`'s two scalar subqueries (whole days, part-day), for a page that
    reads them in one statement with its other counts."""
    day = before.date()
    whole = (select(func.coalesce(func.sum(ItemTally.n), 0))
             .where(scope(ItemTally), ItemTally.status == Status.FIXED.value,
                    ItemTally.due_day < day).scalar_subquery())
    part = (select(func.count()).select_from(Item)
            .where(scope(Item), Item.status == Status.FIXED.value,
                   Item.fixed_at >= day_start(day), Item.fixed_at < before)
            .scalar_subquery())
    return whole, part


def everything(M):
    return true()
