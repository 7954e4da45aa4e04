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
from datetime import date, datetime, time as clock_time, timezone
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
