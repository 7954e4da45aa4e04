"""The ledger (台账): which columns an export has, and how a value becomes a safe cell.

Pure Python, no Flask: services/ledger.py queries and streams, this says what goes in.
Column titles are Chinese by default, English on request (`lang="en"`), written out here
rather than in the message catalogue because a spreadsheet's headers are data that other
offices' macros and pivot tables key on: they must not change with a translation.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable, Iterator, Sequence

# OWASP "CSV injection": a cell that starts with one of these is read as a formula by
# Excel, LibreOffice and Numbers. User text that does is prefixed with a quote, which
# the spreadsheet shows as text (and a CSV re-saved from it stays inert).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """User text made safe for a spreadsheet cell; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    # text (user text: neutralised), code (names staff typed: neutralised too), label
    # (Patrol's own names, made safe once by `Labels`), date, number, bool, url
    kind: str = "text"
    width: int = 12

    def title(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


ITEM_COLUMNS = (
    Column("id", "编号", "No.", "number", 8),
    Column("compound", "小区", "Compound", "code", 16),
    Column("building", "楼栋", "Building", "code", 8),
    Column("unit", "单元", "Unit", "text", 6),
    Column("floor", "楼层", "Floor", "text", 6),
    Column("category", "类别", "Category", "label", 14),
    Column("note", "描述", "Description", "text", 40),
    Column("status", "状态", "Status", "label", 12),
    Column("reporter_role", "上报人身份", "Reported by", "label", 12),
    Column("party", "责任单位", "Responsible party", "code", 18),
    Column("reported_at", "上报时间", "Reported", "date", 17),
    Column("acknowledged_at", "受理时间", "Acknowledged", "date", 17),
    Column("deadline", "整改期限", "Deadline", "date", 17),
    Column("fixed_at", "整改时间", "Fixed", "date", 17),
    Column("closed_at", "销号/关闭时间", "Verified or closed", "date", 17),
    Column("days_to_fix", "整改用时(天)", "Days to fix", "number", 10),
    Column("overdue", "是否超期", "Overdue", "bool", 8),
    Column("reopens", "重开次数", "Reopened", "number", 8),
    Column("supports", "反映人次", "Supporting reports", "number", 8),
    Column("url", "问题链接", "Item link", "url", 30),
    Column("photo_urls", "照片链接", "Photo links", "url", 40),
)

HISTORY_COLUMNS = (
    Column("item_id", "问题编号", "Item No.", "number", 8),
    Column("at", "时间", "Time", "date", 17),
    Column("action", "操作", "Action", "label", 16),
    Column("from_status", "原状态", "From", "label", 12),
    Column("to_status", "新状态", "To", "label", 12),
    Column("actor_role", "操作人身份", "By", "label", 12),
    Column("reason", "原因", "Reason", "label", 14),
    Column("note", "说明", "Note", "text", 40),
)

YES_NO = {"zh": ("是", "否"), "en": ("yes", "no")}


class Labels(dict):
    """Patrol's own names for its codes (statuses, roles, actions, reasons, categories),
    neutralised once when made, so their cells need no conversion; a code without a name
    reads as itself, neutralised, and no code (None) as an empty cell."""

    def __init__(self, names: dict) -> None:
        super().__init__((k, neutralise(str(v))) for k, v in names.items())

    def __missing__(self, key: Any) -> Any:
        return None if key is None else neutralise(str(key))


def converter(column: Column, lang: str,
              text_max: int | None = None) -> Callable[[Any], Any] | None:
    """How a column's non-empty value becomes its cell: user text neutralised (and cut to
    `text_max` characters, a spreadsheet's cell limit, with "…" to say so), yes/no spelt
    out; None for dates and numbers, which stay typed for the writer."""
    if column.kind == "bool":
        yes, no = YES_NO.get(lang, YES_NO["zh"])
        return lambda value: yes if value else no
    if column.kind == "code":   # few names, repeated on every row: each made safe once
        return _SafeNames(text_max).__getitem__
    if column.kind in ("text", "url"):
        return lambda value: cut(neutralise(str(value)), text_max)
    return None


def cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


class _SafeNames(dict):
    def __init__(self, text_max: int | None = None) -> None:
        super().__init__()
        self.text_max = text_max

    def __missing__(self, key: Any) -> str:
        value = self[key] = cut(neutralise(str(key)), self.text_max)
        return value


def cells(columns: Sequence[Column], rows: Iterable[dict], lang: str, *,
          text_max: int | None = None) -> Iterator[list]:
    """Each row dict as its cells, in the columns' order. The per-column conversion is
    chosen once, not per cell: a 100,000-item ledger has millions of cells."""
    plan = [(c.key, converter(c, lang, text_max)) for c in columns]
    for row in rows:
        yield [value if convert is None or value is None else convert(value)
               for key, convert in plan for value in (row[key],)]


def days_between(start: datetime | None, end: datetime | None) -> float | None:
    """Days from `start` to `end`, to one decimal; None if either is missing."""
    if start is None or end is None:
        return None
    return round((end - start) / timedelta(days=1), 1)


# --- the monthly ledger: figures for the meeting ---------------------------------------

@dataclass
class MonthFigures:
    """What the monthly meeting gets for one community or street and one month."""
    total: int = 0
    by_category: dict[str, int] | None = None
    by_company: dict[str, int] | None = None
    by_status: dict[str, int] | None = None
    fix_days: list[float] | None = None          # each fixed item's time to fix
    overdue: int = 0
    lookback_days: list[float] | None = None     # each check's wait after the fix
    # Broken down for the monthly statistics pack (services/monthly_pack.py):
    by_week: dict[date, dict[str, int]] | None = None   # local Monday → category → items
    fix_days_by_company: dict[str, list[float]] | None = None
    fix_days_by_category: dict[str, list[float]] | None = None
    overdue_by_company: dict[str, int] | None = None

    @property
    def mean_fix_days(self) -> float | None:
        return round(statistics.fmean(self.fix_days), 1) if self.fix_days else None

    @property
    def median_fix_days(self) -> float | None:
        return round(statistics.median(self.fix_days), 1) if self.fix_days else None

    @property
    def p90_fix_days(self) -> float | None:
        return round(percentile(self.fix_days, 0.9), 1) if self.fix_days else None

    @property
    def mean_lookback_days(self) -> float | None:
        return round(statistics.fmean(self.lookback_days), 1) if self.lookback_days else None

    @property
    def max_lookback_days(self) -> float | None:
        return max(self.lookback_days) if self.lookback_days else None


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) of a non-empty list, linear between the two nearest
    ranks (as statistics.quantiles' "inclusive" method and spreadsheets' PERCENTILE do):
    q=0.5 is the median."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    pos = (len(ordered) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def month_figures(rows: Iterable[dict]) -> MonthFigures:
    """Fold ledger rows (dicts with category, party, status, reported_at, fixed_at,
    overdue, checked_at) into the month's figures. Pure."""
    out = MonthFigures(by_category={}, by_company={}, by_status={}, fix_days=[],
                       lookback_days=[], by_week={}, fix_days_by_company={},
                       fix_days_by_category={}, overdue_by_company={})
    assert out.by_category is not None and out.by_company is not None
    assert out.by_status is not None and out.fix_days is not None
    assert out.lookback_days is not None and out.by_week is not None
    assert out.fix_days_by_company is not None and out.fix_days_by_category is not None
    assert out.overdue_by_company is not None
    for row in rows:
        out.total += 1
        for key, bucket in (("category", out.by_category), ("party", out.by_company),
                            ("status", out.by_status)):
            name = row.get(key) or "—"
            bucket[name] = bucket.get(name, 0) + 1
        party, category = row.get("party") or "—", row.get("category") or "—"
        reported = row.get("reported_at")
        if reported is not None:
            monday = reported.date() - timedelta(days=reported.weekday())
            week = out.by_week.setdefault(monday, {})
            week[category] = week.get(category, 0) + 1
        # Time to fix: fixes that held (not reopened since); by party, only the party's own
        # (a volunteer's 立行立改 is nobody's time to fix, as in docs/scoring.md).
        fix = days_between(reported, row.get("fixed_at")) if row.get("fix_holds", True) \
            else None
        if fix is not None:
            out.fix_days.append(fix)
            out.fix_days_by_category.setdefault(category, []).append(fix)
            if not row.get("fixed_on_spot"):
                out.fix_days_by_company.setdefault(party, []).append(fix)
        if row.get("overdue"):
            out.overdue += 1
            out.overdue_by_company[party] = out.overdue_by_company.get(party, 0) + 1
        wait = days_between(row.get("fixed_at"), row.get("checked_at"))
        if wait is not None and wait >= 0:
            out.lookback_days.append(wait)
    return out
