"""The rules of a patrol (巡查), pure: presence by distance, service hours, coverage.

No Flask, no database: services/patrols.py applies them to rows, and docs/patrols.md
states them for people.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

EARTH_RADIUS_M = 6_371_000


# --- presence you can trust --------------------------------------------------------------

def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine): exact enough for a compound."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class PresenceRule:
    default_radius_m: int = 300        # a compound with a position but no radius
    accuracy_allowance_m: int = 150    # the most of the phone's stated error forgiven


@dataclass(frozen=True)
class Verdict:
    distance_m: int | None    # None: no location from the phone, or no compound position
    far: bool                 # 位置不符: farther than the radius plus the forgiven error


def presence_verdict(compound_lat: float | None, compound_lon: float | None,
                     radius_m: int | None, lat: float | None, lon: float | None,
                     accuracy: float | None, rule: PresenceRule = PresenceRule()) -> Verdict:
    """Is a phone that says it is at (lat, lon) ± accuracy inside the compound?

    Without a location (the user said no, or the phone has none) the scan counts as it
    always did: not far. The phone's own error estimate is forgiven only up to the rule's
    allowance, so a phone that claims ±5 km cannot make 2 km away look like "here".
    """
    if None in (compound_lat, compound_lon, lat, lon):
        return Verdict(None, False)
    d = distance_m(compound_lat, compound_lon, lat, lon)  # type: ignore[arg-type]
    radius = radius_m or rule.default_radius_m
    forgiven = min(max(accuracy or 0.0, 0.0), rule.accuracy_allowance_m)
    return Verdict(round(d), d > radius + forgiven)


# --- volunteer service hours (志愿服务时长) ------------------------------------------------

@dataclass(frozen=True)
class HoursRule:
    cap_minutes: int = 240     # one patrol never gives more than this
    round_minutes: int = 15    # rounded to the nearest multiple (half up)


def served_minutes(joined_at: datetime, ended_at: datetime, rule: HoursRule = HoursRule()) -> int:
    """A member's service time on one patrol: from joining to the patrol's end, capped,
    then rounded to the nearest `round_minutes` (7 min → 0, 8 min → 15 with 15)."""
    seconds = max((ended_at - joined_at).total_seconds(), 0.0)
    minutes = min(seconds / 60, rule.cap_minutes)
    step = rule.round_minutes
    return int(math.floor(minutes / step + 0.5)) * step


def hours(minutes: int) -> float:
    """Minutes as hours for records and sheets: 1.25, 0.5."""
    return round(minutes / 60, 2)


# --- schedules and coverage --------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    kind: str             # "week" | "month"
    first: date           # first local day
    end: date             # the day after the last

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)


def week_of(day: date) -> Period:
    monday = day - timedelta(days=day.weekday())
    return Period("week", monday, monday + timedelta(days=7))


def month_of(day: date) -> Period:
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return Period("month", first, nxt)


def period_of(kind: str, day: date) -> Period:
    return week_of(day) if kind == "week" else month_of(day)


@dataclass(frozen=True)
class Coverage:
    done: int
    due: int
    period: Period
    today: date

    @property
    def met(self) -> bool:
        return self.done >= self.due

    @property
    def missing(self) -> int:
        return max(self.due - self.done, 0)

    @property
    def missed(self) -> bool:
        """Past the period's end (or on its last day's evening: see `reminder_due`) still
        short: only a period that is over can be missed."""
        return not self.met and self.today >= self.period.end

    @property
    def state(self) -> str:
        """'met' | 'missed' | 'due' (still time) — shown as a colour and as words."""
        if self.met:
            return "met"
        return "missed" if self.missed else "due"


def coverage(done: int, due: int, period: Period, today: date) -> Coverage:
    return Coverage(done=done, due=due, period=period, today=today)


def reminder_due(period: Period, today: date, done: int, due: int) -> bool:
    """The team is reminded the day before a week (or month) ends with a patrol still due."""
    return today == period.last - timedelta(days=1) and done < due
