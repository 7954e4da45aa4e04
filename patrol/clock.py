"""The app's one clock: everything that needs "now" asks here.

Times are naive UTC, as the database stores them. Nothing else in the app reads
the system clock directly, so tests move the whole app (and the demo data, which
is built relative to `utcnow()`) to any instant with time-machine; see
tests/conftest.py, which runs the suite at a fixed instant and the date-sensitive
tests again at awkward ones (first of a month, New Year's Eve, Monday 00:30 in
Shanghai, 29 February).
"""
from __future__ import annotations

import time
from datetime import date, datetime, time as clock_time, timedelta, timezone
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Naive UTC. Stored naive on both SQLite and PostgreSQL so comparisons never mix."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def epoch() -> int:
    """Seconds since the epoch, for pages whose scripts compare with the phone's clock."""
    return int(time.time())


# --- local days (the zone is the TIMEZONE setting; stored times are naive UTC) ------------

def local_date(moment: datetime, tz: str) -> date:
    """The local calendar day of a stored (naive UTC) moment."""
    return moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).date()


def utc_at(day: date, clock: clock_time, tz: str) -> datetime:
    """A local day and wall-clock time as a stored (naive UTC) moment."""
    return (datetime.combine(day, clock, ZoneInfo(tz)).astimezone(timezone.utc)
            .replace(tzinfo=None))


class ToLocal:
    """Stored (naive UTC) moments as naive local times in `tz`, for many at once: a ledger
    converts hundreds of thousands. The offset is worked out once per UTC hour and kept
    when it is the same at both ends of the hour (no change of offset inside it; a zone
    changes at most once an hour); an hour with a change converts each moment itself."""

    def __init__(self, tz: str | ZoneInfo) -> None:
        self.zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._hours: dict[int, timedelta | None] = {}

    def _convert(self, moment: datetime) -> datetime:
        return moment.replace(tzinfo=timezone.utc).astimezone(self.zone).replace(tzinfo=None)

    def _steady_offset(self, moment: datetime) -> timedelta | None:
        start = moment.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1, microseconds=-1)
        offset = self._convert(start) - start
        return offset if self._convert(end) - end == offset else None

    def __call__(self, moment: datetime | None) -> datetime | None:
        if moment is None:
            return None
        key = moment.toordinal() * 24 + moment.hour
        try:
            offset = self._hours[key]
        except KeyError:
            offset = self._hours[key] = self._steady_offset(moment)
        return self._convert(moment) if offset is None else moment + offset
