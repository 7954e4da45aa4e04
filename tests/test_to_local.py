"""clock.ToLocal: the same local times as converting each moment, across changes of offset,
including one that falls inside a UTC hour (Lord Howe Island moves by half an hour)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from patrol.clock import ToLocal


def _direct(moment: datetime, tz: str) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


@pytest.mark.parametrize("tz,day", [
    ("Asia/Shanghai", datetime(2026, 12, 1)),
    ("Europe/Berlin", datetime(2026, 3, 29)),          # +1 → +2 at 01:00 UTC
    ("Europe/Berlin", datetime(2026, 10, 25)),         # +2 → +1 at 01:00 UTC
    ("Australia/Lord_Howe", datetime(2026, 10, 3)),    # +10:30 → +11 at 15:30 UTC
    ("Australia/Lord_Howe", datetime(2026, 4, 4)),     # +11 → +10:30 at 15:00 UTC
])
def test_same_as_converting_each_moment(tz, day):
    to_local = ToLocal(tz)
    moments = [day + timedelta(minutes=m, seconds=s) for m in range(0, 48 * 60, 7)
               for s in (0, 59)]
    moments.append(day + timedelta(hours=15, minutes=29, seconds=59, microseconds=999_999))
    assert [to_local(m) for m in moments] == [_direct(m, tz) for m in moments]
    assert to_local(None) is None
