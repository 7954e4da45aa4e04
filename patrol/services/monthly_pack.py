"""The monthly statistics pack (月度统计材料) for the monthly meeting, per community or street.

What it holds, for the items *reported* in the local calendar month (scoring.Period):
  * items by category and by local week (weeks the month has not reached yet: no data);
  * time to fix (report → fix, in days): median and 90th percentile, by responsible
    party and by category, a group with fewer than RATING_MIN_ITEMS fixes marked as a
    small sample, as the scorecard marks insufficient data;
  * overdue items by party (still owed work past the deadline when printed);
  * look-back delays: days from the fix to the on-the-spot check (回头看);
  * patrol coverage: the month's schedules and each week's (services/coverage.py);
  * volunteer hours (services/service_hours.py);
  * the month's red/black list (services/ratings.py + scoring.py, on the scope's items);
  * up to three before/after highlights chosen by staff (MonthlyHighlight).

The item figures are the ledger's (services/ledger.py `monthly` → ledger.month_figures),
so the pack, the monthly XLSX and the exports count alike. Pure parts (weeks of a month,
statistics per group, look-back bins) are functions without Flask or a database, tested
directly. `build()` reads the database; `render_pdf()` lays the pack out with WeasyPrint
through services/pdf.py (highlight photos as stored thumbnails, nothing fetched).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..clock import local_date
from ..ledger import MonthFigures, percentile
from ..scoring import Period

if TYPE_CHECKING:
    from ..models import Item, Photo

log = logging.getLogger(__name__)

SCOPES = ("community", "street")
MAX_HIGHLIGHTS = 3
# Look-back delay bins, in days: [low, high) — the last is open.
LOOKBACK_BINS: tuple[tuple[float, float | None], ...] = ((0, 1), (1, 2), (2, 3), (3, 7), (7, None))


# --- pure: weeks, statistics, bins ------------------------------------------------------

@dataclass(frozen=True)
class WeekBucket:
    monday: date
    first: date                     # the week's first day within the month
    last: date                      # … and its last
    counts: dict[str, int] | None   # category → items; None: the week has not begun yet

    @property
    def label(self) -> str:
        return f"W{self.monday.isocalendar().week:02d}"

    @property
    def dates(self) -> str:
        return f"{self.first:%m-%d}–{self.last:%m-%d}" if self.first != self.last \
            else f"{self.first:%m-%d}"

    @property
    def total(self) -> int | None:
        return None if self.counts is None else sum(self.counts.values())


def month_weeks(period: Period, today: date, by_week: dict[date, dict[str, int]]
                ) -> list[WeekBucket]:
    """The local weeks (Monday to Sunday) touching the month, clipped to it, with the
    items reported in each; a week starting after `today` has no data (None), a week
    with no items has zero."""
    first, end = period.start_date, period.end_date
    monday = first - timedelta(days=first.weekday())
    out = []
    while monday < end:
        lo, hi = max(monday, first), min(monday + timedelta(days=6), end - timedelta(days=1))
        counts = None if lo > today else dict(by_week.get(monday, {}))
        out.append(WeekBucket(monday, lo, hi, counts))
        monday += timedelta(days=7)
    return out


@dataclass(frozen=True)
class Stat:
    name: str
    n: int
    median: float | None
    p90: float | None
    small: bool                     # fewer than the minimum: marked, not to be ranked on

    @property
    def note(self) -> str:
        return f"n={self.n}"


def stat(name: str, values: list[float], min_n: int) -> Stat:
    if not values:
        return Stat(name, 0, None, None, True)
    return Stat(name, len(values), round(percentile(values, 0.5), 1),
                round(percentile(values, 0.9), 1), len(values) < min_n)


def stats(groups: dict[str, list[float]], min_n: int) -> list[Stat]:
    """One Stat per group, the largest groups first (then by name)."""
    return sorted((stat(name, values, min_n) for name, values in groups.items()),
                  key=lambda s: (-s.n, s.name))


def bin_counts(values: list[float], bins=LOOKBACK_BINS) -> list[int]:
    out = [0] * len(bins)
    for v in values:
        for i, (lo, hi) in enumerate(bins):
            if v >= lo and (hi is None or v < hi):
                out[i] += 1
                break
    return out


# --- the pack ----------------------------------------------------------------------------

@dataclass
class CoverageWeek:
    bucket: WeekBucket
    met: int | None                 # None: the week has not begun
    short: int | None               # missed (the week is over) or still due


@dataclass
class PackCoverage:
    compounds: int                  # in scope, not archived
    patrolled: int                  # … walked at least once this month
    patrols: int                    # patrols started this month
    month_rows: list                # coverage.Row of month schedules, state judged today
    weeks: list[CoverageWeek]
    short: list                     # rows not met: month rows, then week rows by week

    @property
    def scheduled(self) -> int:
        return len(self.month_rows) + sum((w.met or 0) + (w.short or 0) for w in self.weeks)


@dataclass
class Highlight:
    id: int | None                  # the MonthlyHighlight row (None: a candidate)
    item: Item
    before: Photo
    after: Photo
    position: int = 0


@dataclass
class Pack:
    scope: str
    target: Any                     # Community or Street
    period: Period
    start: datetime                 # naive UTC bounds of the local month
    end: datetime
    as_of: datetime                 # min(end, now)
    printed_at: datetime
    today: date                     # the local day of printing
    community_ids: list[int]
    figures: MonthFigures
    weeks: list[WeekBucket]
    categories: list[tuple[str, int]]
    fix_by_company: list[Stat]
    fix_by_category: list[Stat]
    fix_all: Stat
    overdue_by_company: list[tuple[str, int, int]]    # (party, overdue, items)
    lookback: Stat
    lookback_bins: list[int]
    coverage: PackCoverage
    hours: list                     # service_hours.VolunteerTotal
    ratings: list                   # scoring.Figures, ranked first
    company_names: dict[int, str]
    highlights: list[Highlight] = field(default_factory=list)
    min_items: int = 5

    @property
    def last_day(self) -> date:
        return self.period.end_date - timedelta(days=1)

    @property
    def hours_minutes(self) -> int:
        return sum(v.minutes for v in self.hours)

    @property
    def red(self):
        return [f for f in self.ratings if f.listing == "red"]

    @property
    def black(self):
        return [f for f in self.ratings if f.listing == "black"]

    @property
    def unranked(self):
        return [f for f in self.ratings if not f.sufficient]


def month_of(moment_utc: datetime, tz: str) -> Period:
    from zoneinfo import ZoneInfo
    local = moment_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz))
    return Period.containing(local.date(), "month")


def community_ids_of(scope: str, target) -> list[int]:
    if scope == "community":
        return [target.id]
    if scope == "street":
        return [c.id for c in target.communities]
    raise ValueError(f"unknown scope {scope!r}")


def _coverage(community_ids: list[int], period: Period, weeks: list[WeekBucket], today: date,
              tz: str, now: datetime) -> PackCoverage:
    from sqlalchemy import func

    from .. import patrols as rules
    from ..extensions import db
    from ..models import Compound, Patrol
    from . import coverage

    start, end = period.bounds_utc(tz)
    compounds = db.select(Compound.id).where(Compound.community_id.in_(community_ids),
                                             Compound.archived_at.is_(None))
    ids = list(db.session.execute(compounds).scalars())
    patrols, patrolled = db.session.execute(
        db.select(func.count(Patrol.id), func.count(func.distinct(Patrol.compound_id)))
        .where(Patrol.compound_id.in_(compounds), Patrol.started_at >= start,
               Patrol.started_at < end, Patrol.started_at <= now)).one()

    def judged(rows):
        # coverage.rows judges at the day it is given (a day inside the period); the pack
        # judges at the day of printing: a past period not met is missed.
        for r in rows:
            r.state = rules.coverage(r.done, r.due, r.period, today).state
        return rows

    month_rows = judged(coverage.rows(ids, "month", period.start_date, tz, now=now)) if ids else []
    cov_weeks, short = [], [r for r in month_rows if r.state != "met"]
    for bucket in weeks:
        if bucket.counts is None or not ids:
            cov_weeks.append(CoverageWeek(bucket, None, None))
            continue
        rows = judged(coverage.rows(ids, "week", bucket.monday, tz, now=now))
        met = sum(r.state == "met" for r in rows)
        cov_weeks.append(CoverageWeek(bucket, met, len(rows) - met))
        short += [r for r in rows if r.state != "met"]
    return PackCoverage(compounds=len(ids), patrolled=patrolled or 0, patrols=patrols or 0,
                        month_rows=month_rows, weeks=cov_weeks, short=short)


def _ratings(community_ids: list[int], start: datetime, end: datetime, now: datetime,
             min_items: int):
    """The month's ratings of the companies working in the scope, on the scope's items:
    for one community, what the red/black list page shows for it."""
    from .. import scoring
    from ..models import Item
    from . import ratings

    names: dict[int, str] = {}
    for community_id in community_ids:
        names.update(ratings.companies_in(community_id))
    if not names:
        return [], names
    histories = ratings.load_histories(
        [Item.company_id.in_(list(names)), Item.community_id.in_(community_ids)], start, end)
    return scoring.rate(histories, start, end, now, names, min_items=min_items), names


def eligible_filter(community_ids: list[int], start: datetime, end: datetime):
    """SQL conditions on Item for a highlight: verified within the month in the scope,
    with a before and an after photo."""
    from ..extensions import db
    from ..lifecycle import Status
    from ..models import Item, Photo

    def has(kind):
        return db.select(Photo.id).where(Photo.item_id == Item.id, Photo.kind == kind).exists()
    return [Item.community_id.in_(community_ids), Item.status == Status.VERIFIED.value,
            Item.closed_at >= start, Item.closed_at < end, has("before"), has("after")]


def _pair(item) -> tuple[Photo, Photo] | None:
    before = next((p for p in item.photos if p.kind == "before"), None)
    after = [p for p in item.photos if p.kind == "after"]
    return (before, after[-1]) if before is not None and after else None


def candidates(scope: str, target, period: Period, tz: str, *, visible=None,
               limit: int = 60) -> list[Highlight]:
    """Items staff may choose as highlights, latest verified first."""
    from sqlalchemy.orm import selectinload

    from ..extensions import db
    from ..models import Item

    start, end = period.bounds_utc(tz)
    conds = eligible_filter(community_ids_of(scope, target), start, end)
    if visible is not None:
        conds.append(visible)
    items = db.session.execute(
        db.select(Item).where(*conds).order_by(Item.closed_at.desc(), Item.id.desc())
        .limit(limit).options(selectinload(Item.photos), selectinload(Item.compound))
    ).scalars().all()
    out = []
    for item in items:
        pair = _pair(item)
        if pair:
            out.append(Highlight(None, item, *pair))
    return out


def highlights(scope: str, target, period: Period) -> list[Highlight]:
    """The chosen highlights, in their order (an item no longer with both photos is left
    out, not an error)."""
    from sqlalchemy.orm import selectinload

    from ..extensions import db
    from ..models import Item, MonthlyHighlight

    rows = db.session.execute(
        db.select(MonthlyHighlight).where(*scope_condition(scope, target, period))
        .order_by(MonthlyHighlight.position, MonthlyHighlight.id)
        .options(selectinload(MonthlyHighlight.item).selectinload(Item.photos),
                 selectinload(MonthlyHighlight.item).selectinload(Item.compound))
    ).scalars().all()
    out = []
    for row in rows:
        pair = _pair(row.item)
        if pair:
            out.append(Highlight(row.id, row.item, *pair, position=row.position))
    return out


def scope_condition(scope: str, target, period: Period) -> list:
    from ..models import MonthlyHighlight
    column = MonthlyHighlight.community_id if scope == "community" else MonthlyHighlight.street_id
    return [MonthlyHighlight.month == period.start_date, column == target.id]


def build(scope: str, target, period: Period, *, now: datetime, tz: str, min_items: int,
          visible=None, lang: str = "zh") -> Pack:
    """The pack's numbers for a community or street and a month. `visible` is an extra
    SQL condition on Item (permissions.item_filter for web users)."""
    from ..models import Item
    from . import ledger, service_hours

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    ids = community_ids_of(scope, target)
    start, end = period.bounds_utc(tz)
    as_of = min(end, now)
    today = local_date(now, tz)
    conds: list = [Item.community_id.in_(ids)]
    if visible is not None:
        conds.append(visible)
    figures = ledger.monthly(conds, period.start_date, now, lang)
    assert figures.by_week is not None and figures.by_category is not None
    assert figures.fix_days_by_company is not None and figures.fix_days_by_category is not None
    assert figures.overdue_by_company is not None and figures.by_company is not None
    weeks = month_weeks(period, today, figures.by_week)
    ratings, names = _ratings(ids, start, end, now, min_items)
    overdue = sorted(((party, n, figures.by_company.get(party, 0))
                      for party, n in figures.overdue_by_company.items()),
                     key=lambda row: (-row[1], row[0]))
    return Pack(
        scope=scope, target=target, period=period, start=start, end=end, as_of=as_of,
        printed_at=now, today=today, community_ids=ids, figures=figures, weeks=weeks,
        categories=sorted(figures.by_category.items(), key=lambda kv: (-kv[1], kv[0])),
        fix_by_company=stats(figures.fix_days_by_company, min_items),
        fix_by_category=stats(figures.fix_days_by_category, min_items),
        fix_all=stat("", figures.fix_days or [], min_items),
        overdue_by_company=overdue,
        lookback=stat("", figures.lookback_days or [], min_items),
        lookback_bins=bin_counts(figures.lookback_days or []),
        coverage=_coverage(ids, period, weeks, today, tz, now),
        hours=sorted(service_hours.totals(ids, start, end),
                     key=lambda v: (-v.minutes, v.name or "", v.user_id)),
        ratings=ratings, company_names=names,
        highlights=highlights(scope, target, period), min_items=min_items)


# --- charts and rendering ------------------------------------------------------------------

def charts_for(pack: Pack) -> dict:
    """The pack's SVG charts (patrol/charts.py) in the current language."""
    from flask_babel import gettext as _

    from .. import charts
    from ..charts import Datum, Series

    texts = charts.Texts(no_data=_("no data"),
                         small=_("* fewer than %(n)s: small sample", n=pack.min_items))
    blue, red = "#0a58a8", "#b3261e"
    items = [Series(_("Items"), blue)]
    fix = [Series(_("Median"), blue), Series(_("90th percentile"), red)]

    def fix_data(rows):
        return [Datum(s.name, (s.median, s.p90), s.small, s.note) for s in rows]
    return {
        "weeks": charts.columns(
            [Datum(w.label, (w.total,), note=w.dates) for w in pack.weeks], items,
            chart_id="chart-weeks", title=_("Items reported per week"),
            intro=_("Items reported per week:"), texts=texts),
        "categories": charts.hbars(
            [Datum(name, (n,)) for name, n in pack.categories], items,
            chart_id="chart-categories", title=_("Items by category"),
            intro=_("Items reported by category:"), texts=texts),
        "fix_company": charts.hbars(
            fix_data(pack.fix_by_company), fix, chart_id="chart-fix-company",
            title=_("Time to fix by responsible party"),
            intro=_("Days to fix by responsible party, median and 90th percentile:"),
            texts=texts, integer=False),
        "fix_category": charts.hbars(
            fix_data(pack.fix_by_category), fix, chart_id="chart-fix-category",
            title=_("Time to fix by category"),
            intro=_("Days to fix by category, median and 90th percentile:"),
            texts=texts, integer=False),
        "overdue": charts.hbars(
            [Datum(name, (n,)) for name, n, _total in pack.overdue_by_company],
            [Series(_("Overdue"), red)], chart_id="chart-overdue",
            title=_("Overdue items by responsible party"),
            intro=_("Overdue items by responsible party:"), texts=texts),
        "lookback": charts.columns(
            [Datum(label, (n,)) for label, n in zip(lookback_labels(), pack.lookback_bins,
                                                     strict=True)],
            [Series(_("Checks"), blue)], chart_id="chart-lookback",
            title=_("Look-back delays"),
            intro=_("On-the-spot checks by days waited after the fix:"), texts=texts),
        "coverage": charts.columns(
            [Datum(w.bucket.label, (w.met, w.short), note=w.bucket.dates)
             for w in pack.coverage.weeks],
            [Series(_("Met"), "#1e7b34"), Series(_("Not met"), red)],
            chart_id="chart-coverage", title=_("Weekly patrol schedules met"),
            intro=_("Weekly patrol schedules met and not met, per week:"), texts=texts),
    }


def lookback_labels() -> list[str]:
    from flask_babel import gettext as _
    out = []
    for lo, hi in LOOKBACK_BINS:
        out.append(_("%(lo)s–%(hi)s d", lo=f"{lo:g}", hi=f"{hi:g}") if hi is not None
                   else _("≥ %(lo)s d", lo=f"{lo:g}"))
    return out


def context(pack: Pack, tz: str, photo_src, lang: str | None = None) -> dict:
    """What templates/monthly/_sections.html needs, on the page and in the PDF."""
    from flask_babel import gettext as _

    from .. import display, patrols
    from .weekly import page_counter_css

    lang = lang or display.current_lang()
    return dict(p=pack, charts=charts_for(pack), photo_src=photo_src,
                local=lambda dt, fmt="%Y-%m-%d %H:%M": display.local(dt, fmt, tz=tz),
                hours=patrols.hours, number=_number, lookback_labels=lookback_labels(),
                current_lang=lambda: lang,
                category_label=lambda code: display.category_label(code, lang),
                page_counter=page_counter_css(_("Page %(page)s of %(pages)s")))


def _number(value, empty: str = "—") -> str:
    from ..charts import number
    return number(value, empty)


def photo_resources(pack: Pack) -> dict[str, tuple[bytes, str]]:
    """The highlights' stored thumbnails, by `patrol-res:` name; a missing file is left
    out (the PDF shows an empty frame), not an error."""
    from .photo_store import storage

    store, out = storage(), {}
    for h in pack.highlights:
        for p in (h.before, h.after):
            try:
                out[f"photo-{p.id}"] = (store.get(p.thumb_key), "image/jpeg")
            except (OSError, ValueError):
                log.warning("monthly pack: photo %s missing (%s)", p.id, p.thumb_key)
    return out


def render_pdf(pack: Pack, *, tz: str, lang: str | None = None) -> bytes:
    """The pack as a PDF (A4, page numbers, CJK fonts), in `lang` (default: the language
    being shown)."""
    from flask import render_template

    from .. import display
    from .pdf import document_from_html, write_documents

    lang = lang or display.current_lang()
    resources = photo_resources(pack)

    def photo_src(photo) -> str | None:
        name = f"photo-{photo.id}"
        return f"patrol-res:{name}" if name in resources else None
    with display.language(lang):
        html = render_template("pdf/monthly.html", **context(pack, tz, photo_src, lang))
    return write_documents([document_from_html(html, resources)])
