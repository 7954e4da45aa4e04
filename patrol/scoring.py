"""Property-company ratings (星级物业, 红黑榜): pure Python, no Flask, no database.

Input: each item's history as plain data (ItemHistory); output: figures per company
and period, a score, a 1–5 star grade, a red/black list and a ranking. The formula
and thresholds are documented in docs/scoring.md; keep the two in step.

Every figure is about one cohort: the items a company was answerable for that were
*reported* in the period, seen as of `now` (the moment of computing). Rejected and
merged items (not the company's work), items a volunteer fixed on the spot
(立行立改, no work left for the company) and items routed to a department (部门: no
longer the company's) are left out. Items closed as answered (已解答) count like
verified ones, but are never checked on the spot.

Beside the score, and kept apart from the volunteers' ratings: residents'
satisfaction (业主满意度) and the owners' committee's monthly rating, each a plain mean
shown only from a minimum number of ratings (`opinion`).

What happened to an item, and when, is read by lifecycle.replay(), the one fold over
a history; this module only turns its answers into figures.
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from .lifecycle import Event, Status, replay  # noqa: F401  (Event: re-exported)

# --- the documented constants (docs/scoring.md) -----------------------------------
MIN_ITEMS = 5                     # fewer items in the period → insufficient data
WEIGHTS = {"on_time": 35, "first_pass": 25, "satisfaction": 25, "ack_speed": 15}
ACK_FULL_HOURS = 4                # median time to acknowledge ≤ 4 h: full points
ACK_ZERO_HOURS = 28               # ≥ 28 h: no points; linear in between
STARS = ((90, 5), (75, 4), (60, 3), (40, 2))   # score ≥ threshold → stars; else 1
RED_MIN_SCORE, RED_MIN_ON_TIME = 80, 0.90      # 红榜: score ≥ 80 and on-time ≥ 90 %
BLACK_MAX_SCORE, BLACK_MIN_ON_TIME = 50, 0.60  # 黑榜: score < 50 or on-time < 60 %


# --- periods ----------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Period:
    """A calendar month (kind "month", n 1–12) or quarter (kind "quarter", n 1–4),
    in local time."""
    year: int
    kind: str
    n: int

    @classmethod
    def parse(cls, text: str) -> "Period":
        """"2026-11" (month) or "2026-Q4" (quarter). Raises ValueError."""
        text = (text or "").strip().upper()
        year, _, rest = text.partition("-")
        if not (year.isdigit() and len(year) == 4 and 2000 <= int(year) <= 2100):
            raise ValueError(text)
        if rest.startswith("Q") and rest[1:].isdigit() and 1 <= int(rest[1:]) <= 4:
            return cls(int(year), "quarter", int(rest[1:]))
        if rest.isdigit() and 1 <= int(rest) <= 12 and len(rest) <= 2:
            return cls(int(year), "month", int(rest))
        raise ValueError(text)

    @classmethod
    def containing(cls, day: date, kind: str) -> "Period":
        if kind == "quarter":
            return cls(day.year, "quarter", (day.month - 1) // 3 + 1)
        return cls(day.year, "month", day.month)

    @property
    def code(self) -> str:
        return f"{self.year}-Q{self.n}" if self.kind == "quarter" else f"{self.year}-{self.n:02d}"

    @property
    def first_month(self) -> int:
        return (self.n - 1) * 3 + 1 if self.kind == "quarter" else self.n

    @property
    def months(self) -> int:
        return 3 if self.kind == "quarter" else 1

    @property
    def start_date(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end_date(self) -> date:
        """The first day after the period."""
        return _add_months(self.start_date, self.months)

    def shift(self, k: int) -> "Period":
        d = _add_months(self.start_date, k * self.months)
        return Period.containing(d, self.kind)

    def bounds_utc(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end) as naive UTC datetimes (how the database stores times)."""
        zone = ZoneInfo(tz)

        def utc(d: date) -> datetime:
            return (datetime(d.year, d.month, d.day, tzinfo=zone)
                    .astimezone(ZoneInfo("UTC")).replace(tzinfo=None))
        return utc(self.start_date), utc(self.end_date)


def _add_months(d: date, k: int) -> date:
    m = d.year * 12 + (d.month - 1) + k
    return date(m // 12, m % 12 + 1, 1)


# --- input ------------------------------------------------------------------------

# An Event (at, action, deadline, rating) is lifecycle.Event, imported above.

@dataclass(frozen=True)
class ItemHistory:
    id: int
    company_id: int | None
    created_at: datetime
    events: tuple[Event, ...]         # in order; events after `now` are ignored
    default_hours: float | None = None  # the category's deadline (old histories: see replay)
    department_id: int | None = None    # routed to a department: not the company's any more


# --- one item ---------------------------------------------------------------------

@dataclass(frozen=True)
class ItemFacts:
    """What one item contributes, as of `now` (shown on the scorecard per item)."""
    id: int
    created_at: datetime
    status: str
    counted: bool           # in the cohort (not rejected, merged or fixed on the spot)
    ack_hours: float        # report → first acknowledgement (or → now, if still waiting)
    ack_waiting: bool
    fix_hours: float        # report → first fix (or → now, if not fixed yet)
    fix_waiting: bool
    overdue: bool           # at some moment still owed work after its deadline
    decided: bool           # fixed at least once, or overdue: its on-time outcome is known
    first_check: bool | None   # first on-the-spot check: True passed, False reopened
    rating: int | None


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def item_facts(history: ItemHistory, now: datetime) -> ItemFacts:
    seen = replay(history.events, until=now, default_hours=history.default_hours)
    status = seen.status or Status.REPORTED     # no history at all: as reported
    first_ack, first_fix = seen.first_acknowledged_at, seen.first_fix_at
    created = history.created_at
    counted = (history.company_id is not None and history.department_id is None
               and not seen.fixed_on_spot
               and status not in (Status.REJECTED, Status.MERGED))
    # An answer in writing (已解答) settles the item as a fix does: its time to fix ends
    # at the approval, and it is on time unless it was overdue before.
    answered = status == Status.ANSWERED
    resolved = first_fix or (seen.closed_at if answered and first_fix is None else None)
    return ItemFacts(
        id=history.id, created_at=created, status=status.value, counted=counted,
        ack_hours=_hours((first_ack or now) - created), ack_waiting=first_ack is None,
        fix_hours=_hours((resolved or now) - created), fix_waiting=resolved is None,
        overdue=seen.late, decided=resolved is not None or seen.late,
        first_check=seen.first_check, rating=seen.rating)


# --- one company ------------------------------------------------------------------

@dataclass
class Figures:
    company_id: int
    items: int = 0
    median_ack_hours: float | None = None
    median_fix_hours: float | None = None
    ack_waiting: int = 0
    fix_waiting: int = 0
    decided: int = 0
    overdue: int = 0
    on_time_rate: float | None = None
    checked: int = 0
    passed: int = 0
    first_pass_rate: float | None = None
    ratings: int = 0
    satisfaction: float | None = None
    points: dict[str, tuple[int, float]] = field(default_factory=dict)  # component → (weight, factor)
    score: float | None = None
    stars: int | None = None
    listing: str | None = None        # "red", "black" or None
    sufficient: bool = False
    rank: int | None = None
    facts: list[ItemFacts] = field(default_factory=list)    # of the cohort

    @property
    def reopen_rate(self) -> float | None:
        return None if self.first_pass_rate is None else 1 - self.first_pass_rate


def round_half_up(x: float, places: int = 1) -> float:
    q = Decimal(1).scaleb(-places)
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_UP))


def ack_speed(median_hours: float) -> float:
    if median_hours <= ACK_FULL_HOURS:
        return 1.0
    if median_hours >= ACK_ZERO_HOURS:
        return 0.0
    return (ACK_ZERO_HOURS - median_hours) / (ACK_ZERO_HOURS - ACK_FULL_HOURS)


def stars_for(score: float) -> int:
    for threshold, stars in STARS:
        if score >= threshold:
            return stars
    return 1


def listing_for(score: float, on_time_rate: float | None) -> str | None:
    if score < BLACK_MAX_SCORE or (on_time_rate is not None and on_time_rate < BLACK_MIN_ON_TIME):
        return "black"
    if score >= RED_MIN_SCORE and on_time_rate is not None and on_time_rate >= RED_MIN_ON_TIME:
        return "red"
    return None


def figures(company_id: int, facts: list[ItemFacts], *, min_items: int = MIN_ITEMS) -> Figures:
    cohort = [f for f in facts if f.counted]
    out = Figures(company_id=company_id, items=len(cohort), facts=cohort)
    if not cohort:
        return out
    out.median_ack_hours = statistics.median(f.ack_hours for f in cohort)
    out.median_fix_hours = statistics.median(f.fix_hours for f in cohort)
    out.ack_waiting = sum(f.ack_waiting for f in cohort)
    out.fix_waiting = sum(f.fix_waiting for f in cohort)
    out.decided = sum(f.decided for f in cohort)
    out.overdue = sum(f.overdue for f in cohort)
    if out.decided:
        out.on_time_rate = (out.decided - out.overdue) / out.decided
    checks = [f.first_check for f in cohort if f.first_check is not None]
    out.checked, out.passed = len(checks), sum(checks)
    if checks:
        out.first_pass_rate = out.passed / out.checked
    ratings = [f.rating for f in cohort if f.rating is not None]
    out.ratings = len(ratings)
    if ratings:
        out.satisfaction = sum(ratings) / len(ratings)

    factors = {
        "on_time": out.on_time_rate,
        "first_pass": out.first_pass_rate,
        "satisfaction": None if out.satisfaction is None else (out.satisfaction - 1) / 4,
        "ack_speed": ack_speed(out.median_ack_hours),
    }
    out.points = {k: (WEIGHTS[k], v) for k, v in factors.items() if v is not None}
    total = sum(w for w, _ in out.points.values())
    out.score = round_half_up(100 * sum(w * v for w, v in out.points.values()) / total)
    out.sufficient = out.items >= min_items
    if out.sufficient:
        out.stars = stars_for(out.score)
        out.listing = listing_for(out.score, out.on_time_rate)
    return out


# --- opinions: residents' satisfaction, the committee's rating ----------------------

@dataclass(frozen=True)
class Opinion:
    """A mean of 1–5 star ratings, shown only from `min_n` ratings on ("样本不足")."""
    n: int
    mean: float | None          # None without ratings
    sufficient: bool


def opinion(stars: list[int], *, min_n: int = MIN_ITEMS) -> Opinion:
    valid = [int(s) for s in stars if s is not None and 1 <= int(s) <= 5]
    mean = round_half_up(sum(valid) / len(valid), 2) if valid else None
    return Opinion(len(valid), mean, len(valid) >= min_n)


def opinions(ratings: list[tuple[int, int]], company_ids: Iterable[int], *,
             min_n: int = MIN_ITEMS) -> dict[int, Opinion]:
    """(company id, stars) pairs → an Opinion per company in `company_ids`."""
    by_company: dict[int, list[int]] = {cid: [] for cid in company_ids}
    for cid, stars in ratings:
        if cid in by_company:
            by_company[cid].append(stars)
    return {cid: opinion(stars, min_n=min_n) for cid, stars in by_company.items()}


# --- all companies: ranking ---------------------------------------------------------

def rank(all_figures: list[Figures], names: dict[int, str]) -> list[Figures]:
    """Sufficient companies by score, highest first; equal scores (to 0.1) share a rank
    (1, 2, 2, 4) and are listed by name, then id. Insufficient ones follow, unranked,
    by name."""
    def name_key(f: Figures) -> tuple[str, int]:
        return (names.get(f.company_id, ""), f.company_id)

    def score_key(f: Figures) -> tuple[float, str, int]:
        assert f.score is not None      # every sufficient company has a score
        return (-f.score, *name_key(f))
    ranked = sorted((f for f in all_figures if f.sufficient), key=score_key)
    previous = None
    for position, f in enumerate(ranked, start=1):
        f.rank = previous.rank if previous and previous.score == f.score else position
        previous = f
    rest = sorted((f for f in all_figures if not f.sufficient), key=name_key)
    for f in rest:
        f.rank = None
    return ranked + rest


def in_period(history: ItemHistory, start: datetime, end: datetime) -> bool:
    return start <= history.created_at < end


def rate(histories: list[ItemHistory], start: datetime, end: datetime, now: datetime,
         names: dict[int, str], *, min_items: int = MIN_ITEMS) -> list[Figures]:
    """Figures for every company in `names`, on the items reported in [start, end)."""
    by_company: dict[int, list[ItemFacts]] = {cid: [] for cid in names}
    for h in histories:
        if h.company_id in by_company and in_period(h, start, end):
            by_company[h.company_id].append(item_facts(h, now))
    return rank([figures(cid, facts, min_items=min_items) for cid, facts in by_company.items()],
                names)


# --- the scorecard chart ----------------------------------------------------------

@dataclass(frozen=True)
class MonthCount:
    code: str          # "2026-11"
    reported: int      # items reported that month (in the cohort sense)
    overdue: int       # … of which overdue at some moment
    closed: int        # … of which closed as verified or answered


def monthly_counts(histories: list[ItemHistory], months: list[Period],
                   bounds: list[tuple[datetime, datetime]], now: datetime) -> list[MonthCount]:
    out = []
    for period, (start, end) in zip(months, bounds, strict=True):
        facts = [item_facts(h, now) for h in histories if in_period(h, start, end)]
        facts = [f for f in facts if f.counted]
        out.append(MonthCount(period.code, len(facts), sum(f.overdue for f in facts),
                              sum(f.status in ("verified", "answered") for f in facts)))
    return out


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    kind: str          # "reported" or "overdue"


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]       # (x, text)
    gridlines: list[tuple[float, int]]    # (y, value)
    top: int           # the value at the top gridline
    left: int          # x of the value axis
    baseline: float    # y of the zero line


def bar_chart(counts: list[MonthCount], *, width: int = 360, height: int = 200, left: int = 28,
              bottom: int = 24, top_pad: int = 12) -> Chart:
    """Geometry for a grouped bar chart (reported, overdue) per month; drawn as SVG by
    templates/ratings/_chart.html, so the page needs no JavaScript."""
    peak = max([c.reported for c in counts] + [1])
    step = 1 if peak <= 5 else 2 if peak <= 10 else 5 if peak <= 25 else 10 * -(-peak // 100)
    top = -(-peak // step) * step
    plot_h = height - bottom - top_pad
    slot = (width - left - 6) / max(len(counts), 1)
    bar_w = max(slot * 0.36, 2)
    bars, labels = [], []
    for i, c in enumerate(counts):
        x0 = left + i * slot + slot * 0.12
        for j, (kind, value) in enumerate((("reported", c.reported), ("overdue", c.overdue))):
            h = plot_h * value / top
            bars.append(Bar(round(x0 + j * bar_w, 1), round(top_pad + plot_h - h, 1),
                            round(bar_w, 1), round(h, 1), value, kind))
        labels.append((round(left + i * slot + slot / 2, 1), c.code[5:]))
    gridlines = [(round(top_pad + plot_h - plot_h * v / top, 1), v)
                 for v in range(0, top + 1, step)]
    return Chart(width, height, bars, labels, gridlines, top, left, top_pad + plot_h)
