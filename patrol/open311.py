"""Open311 GeoReport v2, the pure part: status mapping, the nearest compound, dates,
and the spec's JSON and XML shapes. No Flask: web/open311.py serves them.

Spec: http://wiki.open311.org/GeoReport_v2 (docs/open311.md says how Patrol maps onto it).
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from .lifecycle import CLOSED, Status

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
MAX_SPAN = timedelta(days=90)       # the spec's window for a request list
MAX_REQUESTS = 1000
# Characters XML 1.0 cannot hold (C0 controls but tab, newline and return; U+FFFE/FFFF):
# ElementTree writes them as they are, and one such note made the whole list unreadable.
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
DEFAULT_RADIUS_M = 200              # a compound without its own radius


def open_or_closed(status: str) -> str:
    """Open311 knows two states: every closed status (verified, answered, rejected,
    merged, handed over) is "closed", the rest "open"."""
    return "closed" if Status(status) in CLOSED else "open"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def nearest(lat: float, lon: float, places: Iterable) -> tuple[object | None, float | None]:
    """The nearest place (anything with lat, lon, radius_m) whose radius reaches the
    point, and its distance; (None, None) if none does."""
    best, best_d = None, None
    for place in places:
        if place.lat is None or place.lon is None:
            continue
        d = distance_m(lat, lon, place.lat, place.lon)
        if d <= (place.radius_m or DEFAULT_RADIUS_M) and (best_d is None or d < best_d):
            best, best_d = place, d
    return best, best_d


def parse_w3c(value: str) -> datetime:
    """A W3C datetime (2010-01-01T00:00:00Z, or with an offset) as naive UTC; ValueError
    for anything else."""
    text = value.strip()
    if len(text) > 40:
        raise ValueError("too long")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        raise ValueError("a time zone is required")
    return dt.astimezone(timezone.utc).replace(tzinfo=None)


def w3c(dt: datetime | None) -> str | None:
    """Naive UTC as the spec writes it."""
    return None if dt is None else dt.replace(microsecond=0).isoformat() + "Z"


def window(start: datetime | None, end: datetime | None, now: datetime
           ) -> tuple[datetime, datetime]:
    """The requested_datetime range of a request list: the most recent 90 days by
    default; a given range may not span more than 90 days (ValueError)."""
    if start is None and end is None:
        return now - MAX_SPAN, now
    if start is None:
        assert end is not None
        start = end - MAX_SPAN
    if end is None:
        end = min(now, start + MAX_SPAN)
    if end < start:
        raise ValueError("end_date is before start_date")
    if end - start > MAX_SPAN:
        raise ValueError("the range may not span more than 90 days")
    return start, end


# --- XML: the spec's element names; lists are repeated child elements ----------------

def _append(parent: ET.Element, name: str, value) -> None:
    child = ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, v in value.items():
            _append(child, key, v)
    elif isinstance(value, list):
        singular = {"attributes": "attribute", "values": "value", "endpoints": "endpoint",
                    "formats": "format"}.get(name, "item")
        for v in value:
            _append(child, singular, v)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    elif value is not None:
        child.text = XML_ILLEGAL.sub("", str(value))


def to_xml(root: str, element: str | None, data) -> bytes:
    """`data` (a list of dicts under `root`/`element`, or one dict as `root`) as XML."""
    top = ET.Element(root)
    if isinstance(data, list):
        for entry in data:
            _append(top, element or "item", entry)
    else:
        for key, value in data.items():
            _append(top, key, value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(top, encoding="utf-8")


def errors_body(code: int, description: str) -> list[dict]:
    """The spec's error list: [{"code": 400, "description": "…"}]."""
    return [{"code": code, "description": description}]
