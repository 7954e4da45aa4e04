"""Ledgers (台账) out: the items a list shows, and their history, as XLSX or CSV.

Both stream. Rows come from the database in batches (`yield_per`), photos and history
are read in item order beside them and merged, so memory does not grow with the export:
the XLSX is written by patrol/xlsx.py (compiled, constant memory) to a temporary file,
the CSV is yielded in chunks. Columns and the formula-injection guard are patrol/ledger.py.

`conds` is the list's own SQL conditions (the permission filter and the page's filters),
so an export holds exactly the rows its page shows.
"""
from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from .. import labels, lifecycle, xlsx
from ..clock import ToLocal, local_date
from ..display import category_label, language, local
from ..extensions import db
from ..ledger import (HISTORY_COLUMNS, ITEM_COLUMNS, Column, Labels, MonthFigures, cells, cut, days_between,
                      month_figures, neutralise)
from ..lifecycle import Action, Status
from ..models import Building, Company, Compound, Department, Item, ItemEvent, Photo, User

BATCH = 2000
DATE_FORMAT = "yyyy-mm-dd hh:mm"


def _base_url() -> str:
    return current_app.config["BASE_URL"].rstrip("/")


def _photo_links(conds) -> Iterator[tuple[int, list[str]]]:
    """(item id, its photo links), in item order."""
    base = _base_url()
    scope = select(Item.id).where(*conds)
    current, links = None, []  # type: tuple[int | None, list[str]]
    for item_id, photo_id in db.session.execute(
            select(Photo.item_id, Photo.id).where(Photo.item_id.in_(scope))
            .order_by(Photo.item_id, Photo.id).execution_options(yield_per=BATCH)):
        if item_id != current:
            if current is not None:
                yield current, links
            current, links = item_id, []
        links.append(f"{base}/photos/{photo_id}/full.jpg")
    if current is not None:
        yield current, links


def item_rows(conds, now: datetime, lang: str) -> Iterator[dict]:
    """One dict per item (keys: ITEM_COLUMNS' keys, plus `checked_at`, `fix_holds` and
    `fixed_on_spot` for the monthly figures), ordered by number."""
    to_local = ToLocal(current_app.config["TIMEZONE"])
    base = _base_url()
    reporter = aliased(User)
    reopens = (select(func.count()).where(ItemEvent.item_id == Item.id,
                                          ItemEvent.action == Action.REOPEN.value)
               .correlate(Item).scalar_subquery())
    # The on-the-spot check that closed it (verified after a fix): the look-back's time.
    checked = (select(func.max(ItemEvent.at)).where(ItemEvent.item_id == Item.id,
                                                    ItemEvent.action == Action.VERIFY.value)
               .correlate(Item).scalar_subquery())
    query = (select(Item.id, Compound.name, Building.name, Item.unit, Item.floor,
                    Item.category, Item.note, Item.status, Item.source, reporter.role,
                    Company.name, Department.name, Item.created_at, Item.acknowledged_at,
                    Item.deadline, Item.fixed_at, Item.closed_at, Item.support_count,
                    reopens, checked, Item.fixed_on_spot)
             .join(Compound, Compound.id == Item.compound_id)
             .outerjoin(Building, Building.id == Item.building_id)
             .outerjoin(reporter, reporter.id == Item.reporter_id)
             .outerjoin(Company, Company.id == Item.company_id)
             .outerjoin(Department, Department.id == Item.department_id)
             .where(*conds).order_by(Item.id).execution_options(yield_per=BATCH))
    photos = _photo_links(conds)
    pending = next(photos, None)
    with language(lang):
        status_names = Labels({s.value: labels.STATUS[s.value] for s in Status})
        role_names = Labels(labels.ROLE)
        resident = "居民" if lang != "en" else "Resident"
        categories: dict[str, str] = {}
        for (item_id, compound, building, unit, floor, category, note, status, source, role,
             company, department, created, acked, deadline, fixed, closed, supports, n_reopens,
             checked_at, on_spot) in db.session.execute(query):
            links: list[str] = []
            while pending is not None and pending[0] <= item_id:
                if pending[0] == item_id:
                    links = pending[1]
                pending = next(photos, None)
            if category not in categories:
                categories[category] = neutralise(category_label(category, lang))
            yield {
                "id": item_id, "compound": compound, "building": building, "unit": unit,
                "floor": floor, "category": categories[category], "note": note,
                "status": status_names[status],
                "reporter_role": resident if source == "resident" else role_names[role],
                "party": department or company,
                "reported_at": to_local(created),
                "acknowledged_at": to_local(acked),
                "deadline": to_local(deadline),
                "fixed_at": to_local(fixed),
                "closed_at": to_local(closed),
                "days_to_fix": days_between(created, fixed),
                "overdue": lifecycle.is_overdue(status, deadline, now),
                "reopens": n_reopens or 0, "supports": supports or 0,
                "url": f"{base}/items/{item_id}", "photo_urls": " ".join(links),
                "checked_at": to_local(checked_at),
                # For the monthly figures: a reopened item's fix did not hold, and a
                # volunteer's 立行立改 is no company's or department's time to fix.
                "fix_holds": status != Status.REOPENED.value,
                "fixed_on_spot": bool(on_spot),
            }


def history_rows(conds, lang: str) -> Iterator[dict]:
    """One dict per history entry of the items, in item order. Actors by role only."""
    to_local = ToLocal(current_app.config["TIMEZONE"])
    scope = select(Item.id).where(*conds)
    with language(lang):
        actions, statuses = Labels(labels.ACTION), Labels(labels.STATUS)
        roles, reasons = Labels(labels.ROLE), Labels(labels.REASON)
        for item_id, at, action, source, target, role, reason, note in db.session.execute(
                select(ItemEvent.item_id, ItemEvent.at, ItemEvent.action,
                       ItemEvent.from_status, ItemEvent.to_status, User.role,
                       ItemEvent.reason, ItemEvent.note)
                .outerjoin(User, User.id == ItemEvent.actor_id)
                .where(ItemEvent.item_id.in_(scope))
                .order_by(ItemEvent.item_id, ItemEvent.id).execution_options(yield_per=BATCH)):
            yield {"item_id": item_id, "at": to_local(at),
                   "action": actions[action], "from_status": statuses[source],
                   "to_status": statuses[target], "actor_role": roles[role],
                   "reason": reasons[reason],
                   "note": note}


# --- writers ------------------------------------------------------------------------------

def write_xlsx(out, meta: list[str], sheets, lang: str) -> None:
    """Write `sheets` ([(name, columns, rows)]) to the binary file `out`: the export's
    filter and time on top, then a frozen header row with an autofilter, sensible widths,
    dates as Excel dates (patrol/xlsx.py). Rows stream: memory does not grow with them."""
    xlsx.write(out, [
        xlsx.Sheet(name, [c.title(lang) for c in columns],
                   cells(columns, rows, lang, text_max=xlsx.TEXT_MAX),
                   widths=[c.width for c in columns],
                   formats=[DATE_FORMAT if c.kind == "date" else "" for c in columns],
                   meta=[cut(line, xlsx.TEXT_MAX) for line in meta])
        for name, columns, rows in sheets])


def csv_chunks(meta: list[str], columns: tuple[Column, ...], rows, lang: str
               ) -> Iterator[bytes]:
    """UTF-8 with a BOM (so Excel in Chinese opens it right), streamed in chunks."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    for line in meta:
        writer.writerow([line])
    writer.writerow([c.title(lang) for c in columns])
    for n, values in enumerate(cells(columns, rows, lang), 1):
        writer.writerow([_csv_text(value) for value in values])
        if n % 500 == 0:
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode("utf-8")


def _csv_text(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value


def counted(rows, progress) -> Iterator:
    """`rows` as they are, calling `progress(n)` with the number passed so far (every
    BATCH rows and at the end): a background export's progress (patrol/jobs/kinds.py)."""
    n = 0
    for n, row in enumerate(rows, 1):
        if n % BATCH == 0:
            progress(n)
        yield row
    progress(n)


def items_xlsx(conds, now: datetime, lang: str, meta: list[str], progress=None):
    """The items and their history as an XLSX in a temporary file (rewound)."""
    out = tempfile.TemporaryFile(suffix=".xlsx")
    names = ("问题清单", "处理记录") if lang != "en" else ("Items", "History")
    rows = item_rows(conds, now, lang)
    if progress is not None:
        rows = counted(rows, progress)
    write_xlsx(out, meta, [(names[0], ITEM_COLUMNS, rows),
                           (names[1], HISTORY_COLUMNS, history_rows(conds, lang))], lang)
    out.seek(0)
    return out


# --- the monthly ledger ---------------------------------------------------------------------

def month_bounds(month: date, tz: str) -> tuple[datetime, datetime]:
    """The month's start and end as stored (naive UTC), in local time."""
    zone = ZoneInfo(tz)
    start = datetime(month.year, month.month, 1, tzinfo=zone)
    nxt = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=zone)
    utc = ZoneInfo("UTC")
    return (start.astimezone(utc).replace(tzinfo=None), nxt.astimezone(utc).replace(tzinfo=None))


def monthly(conds, month: date, now: datetime, lang: str) -> MonthFigures:
    """Figures for the items reported in `month` within `conds`."""
    start, end = month_bounds(month, current_app.config["TIMEZONE"])
    rows = item_rows([*conds, Item.created_at >= start, Item.created_at < end], now, lang)
    return month_figures(rows)


def monthly_xlsx(figures: MonthFigures, meta: list[str], lang: str):
    """The monthly ledger as an XLSX in a temporary file (rewound): one sheet of figures
    and one per breakdown."""
    en = lang == "en"
    lines = [
        ("Items reported" if en else "上报问题数", figures.total),
        ("Overdue" if en else "超期数", figures.overdue),
        ("Mean days to fix" if en else "平均整改用时(天)", figures.mean_fix_days),
        ("Median days to fix" if en else "整改用时中位数(天)", figures.median_fix_days),
        ("Mean look-back delay (days)" if en else "平均回头看等待(天)",
         figures.mean_lookback_days),
        ("Longest look-back delay (days)" if en else "最长回头看等待(天)",
         figures.max_lookback_days),
    ]
    sheets = [xlsx.Sheet("Summary" if en else "汇总",
                         ("Figure" if en else "项目", "Value" if en else "数值"),
                         [(title, "—" if value is None else value) for title, value in lines],
                         widths=(28, 14), meta=meta, bold_columns=(0,), table=False)]
    for title, bucket in (("By category" if en else "按类别", figures.by_category),
                          ("By party" if en else "按责任单位", figures.by_company),
                          ("By status" if en else "按状态", figures.by_status)):
        ranked = sorted((bucket or {}).items(), key=lambda kv: -kv[1])
        sheets.append(xlsx.Sheet(title, (title, "Items" if en else "数量"),
                                 [(neutralise(str(name)), n) for name, n in ranked],
                                 widths=(28, 10)))
    out = tempfile.TemporaryFile(suffix=".xlsx")
    xlsx.write(out, sheets)
    out.seek(0)
    return out


def export_time(now: datetime) -> str:
    """When the export was made, in local time, as every page shows times."""
    return local(now)



def to_local_date(now: datetime) -> date:
    return local_date(now, current_app.config["TIMEZONE"])
