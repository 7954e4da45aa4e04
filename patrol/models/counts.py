"""Item tallies: how many items there are per place, party, status, category and
deadline day (and, in the day tables, day of report), kept up to date in the same
transaction as every change of an item (services/counts.py). The community overview and
the inbox read their figures from these small tables instead of counting all history."""
from datetime import date
from typing import Any

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..lifecycle import OPEN, OWED

# Key values standing for "none": a primary key has no NULLs, and 0 is never an id.
NO_ID = 0
# The due day of an item that owes nothing (closed, fixed) or has no deadline: never
# before today, so never overdue.
NOT_DUE = date(9999, 12, 31)


class ItemTally(db.Model):
    """Items per community, compound, company, department, status, category and due day:
    the UTC day of the deadline for the statuses that owe work (lifecycle.OWED), of the
    fix for a fix waiting for its look-back (status fixed), else NOT_DUE."""
    __tablename__ = "item_tally"
    community_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    compound_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    company_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    department_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    due_day: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(default=0)
    __table_args__ = (
        Index("ix_item_tally_company", "company_id", "status"),
        Index("ix_item_tally_compound", "compound_id", "status"),
        Index("ix_item_tally_department", "department_id", "status"),
    )


class ItemTallyDay(db.Model):
    """Items per UTC day of report (Item.created_at), community, compound, company, status
    and category, for the overview's date filter: a range of days reads that many days'
    rows, however long the history. No due day here (it would split each day's open items
    by their deadlines' days, tens of times): the overdue figure takes the owed items of
    these rows less those whose deadline has not passed (ItemTallyDayDue)."""
    __tablename__ = "item_tally_day"
    community_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    compound_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    company_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int] = mapped_column(default=0)
    __table_args__ = (Index("ix_item_tally_day_day", "day"),)


class ItemTallyDayDue(db.Model):
    """The items that owe work (lifecycle.OWED) per due day (UTC day of the deadline;
    NOT_DUE without one) and day of report, with ItemTallyDay's other keys. Keyed by the
    due day first: the date filter reads the rows of the due days not yet passed (today
    and after: as many as the deadlines reach ahead, not the history), and the overdue
    figure is ItemTallyDay's owed items less those."""
    __tablename__ = "item_tally_day_due"
    community_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    due_day: Mapped[date] = mapped_column(Date, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    compound_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    company_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int] = mapped_column(default=0)
    __table_args__ = (Index("ix_item_tally_day_due_due_day", "due_day"),)


# --- indexes on the item table for the list pages' top-N rows and small counts -------
# (Declared here, beside the tallies they complete; they belong to Item's table.)

def _item_index(name: str, *columns: str, where: str | None = None,
                include: tuple[str, ...] = ()) -> Index:
    from sqlalchemy import text
    from .items import Item
    cond: dict[str, Any] = {"postgresql_where": text(where), "sqlite_where": text(where)} \
        if where else {}
    if include:   # PostgreSQL only: SQLite has no INCLUDE
        cond["postgresql_include"] = list(include)
    return Index(name, *(Item.__table__.c[c] for c in columns), **cond)


def _status_in(statuses) -> str:
    return "status IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(statuses)))


_OWED = _status_in(OWED)
_OPEN = _status_in(OPEN)
ITEM_LIST_INDEXES = (
    # Inbox tabs new / reopened / waiting for check: newest change first, per company
    # or department.
    _item_index("ix_item_company_status_updated", "company_id", "status", "updated_at"),
    _item_index("ix_item_department_status_updated", "department_id", "status",
                "updated_at"),
    # Inbox tabs overdue / due soon (deadline order), and today's passing deadlines: the
    # figures count those by status and category (and the overview's compound and
    # company filters and date range) from the index alone (INCLUDE, PostgreSQL).
    _item_index("ix_item_company_owed_deadline", "company_id", "deadline", where=_OWED,
                include=("status", "category")),
    _item_index("ix_item_community_owed_deadline", "community_id", "deadline", where=_OWED,
                include=("status", "category", "compound_id", "company_id", "created_at")),
    # The overview filtered to overdue items, newest first (then id, the list's order):
    # the deadline is checked in the index, so the newest open items not yet overdue are
    # skipped without reading them.
    _item_index("ix_item_community_owed_created", "community_id", "created_at", "id",
                "deadline", where=_OWED),
    # The overview filtered to open items, newest first (then id).
    _item_index("ix_item_community_open_created", "community_id", "created_at", "id",
                where=_OPEN),
    # The overview's date filter: the part-days at either end of the range are counted
    # from the items; with these columns in the index, without reading the rows.
    _item_index("ix_item_community_created_cover", "community_id", "created_at",
                include=("status", "category", "deadline", "compound_id", "company_id")),
    # The compound page: its open items, newest first.
    _item_index("ix_item_compound_open_created", "compound_id", "created_at", "id", "status",
                where=_OPEN),
    # The overview filtered by compound and category (and open, or a status of them),
    # newest first: in list order, where the compound's open index and the company's
    # status index would be ANDed and every match sorted (a whole 90-day range).
    _item_index("ix_item_compound_category_open_created", "compound_id", "category",
                "created_at", "id", where=_OPEN),
    # The overview's escalation figures: 督办, disputes, fixes waiting for their check.
    _item_index("ix_item_community_flagged", "community_id", "status",
                where="flagged_at IS NOT NULL"),
    _item_index("ix_item_community_disputed", "community_id", "status",
                where="disputed_at IS NOT NULL"),
    _item_index("ix_item_community_fixed_at", "community_id", "fixed_at",
                where="status = 'fixed'"),
    # 待回头看 on the compounds page: per compound, the oldest fixes first (then id), a
    # short range each (web/compounds.lookback_query).
    _item_index("ix_item_compound_fixed_at", "compound_id", "fixed_at", "id",
                where="status = 'fixed'"),
)
