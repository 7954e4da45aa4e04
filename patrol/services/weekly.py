"""The weekly problem list (每周问题清单): what happened in one ISO week, for one scope.

Pure parts (no Flask, no database), tested directly:
  * `Week`: parse "2026-W48", the week containing a moment, and its bounds —
    Monday 00:00 to the next Monday 00:00 in the configured time zone, returned
    as naive UTC because the database stores naive UTC (models/base.py).
  * `replay()`: an item's state at a moment, read from its append-only history by
    lifecycle.replay() (the one fold over a history, next to the transition table),
    so last week's list printed today shows last week's state.
  * `classify()`: which section an item belongs to.

Sections are disjoint (every item is printed once), judged at `as_of`, the end
of the week (or now, for the week in progress):
  * verified   — closed as verified (check passed, or fixed on the spot) during the week;
  * fixed      — fixed by the company and waiting for the on-the-spot check (回头看);
  * reopened   — still owed work and reopened (check failed) during the week;
  * new        — still owed work and reported during the week;
  * open       — still owed work, reported before the week (with age and overdue mark).
Items rejected or merged, closed before the week, or reported after it are left out.
Items reported this week that land in another section carry a "new" mark, and items
the owners' committee flagged for supervision (督办) and still flagged at `as_of` a
"督办" mark (`supervised()`).

`build()` reads the database; `render_document()` turns a report into a WeasyPrint
document through services/pdf.py (photos as the stored JPEG thumbnails, embedded
unchanged; QR codes as small greyscale PNGs; nothing else fetched).
"""
from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from .. import lifecycle
from ..lifecycle import OWED, Status, is_ack_late, is_overdue

if TYPE_CHECKING:
    from ..models import Item, Photo

log = logging.getLogger(__name__)

UTC = ZoneInfo("UTC")
SECTIONS = ("new", "open", "fixed", "verified", "reopened")
NOTE_CHARS = 140          # a printed list shows the start of long notes
_WEEK_RE = re.compile(r"^(\d{4})-?W(\d{1,2})$", re.I)
_OWED = frozenset(s.value for s in OWED)


# --- the week ---------------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Week:
    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> "Week":
        """'2026-W48' (also '2026W48', '2026-w48'); ValueError if no such ISO week."""
        m = _WEEK_RE.match((text or "").strip())
        if not m:
            raise ValueError(f"not an ISO week: {text!r}")
        year, week = int(m.group(1)), int(m.group(2))
        date.fromisocalendar(year, week, 1)  # raises for week 0, 54, or 53 in a 52-week year
        return cls(year, week)

    @classmethod
    def containing(cls, moment_utc: datetime, tz: str) -> "Week":
        """The week (in zone `tz`) containing a naive-UTC moment."""
        local = moment_utc.replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
        iso = local.isocalendar()
        return cls(iso.year, iso.week)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"

    def __str__(self) -> str:
        return self.label

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def bounds(self, tz: str) -> tuple[datetime, datetime]:
        """[start, end) as naive UTC: local Monday 00:00 to the next local Monday 00:00."""
        zone = ZoneInfo(tz)
        start = datetime.combine(self.monday, datetime.min.time(), zone)
        end = datetime.combine(self.monday + timedelta(days=7), datetime.min.time(), zone)
        return (start.astimezone(UTC).replace(tzinfo=None),
                end.astimezone(UTC).replace(tzinfo=None))

    def previous(self) -> "Week":
        d = self.monday - timedelta(days=7)
        iso = d.isocalendar()
        return Week(iso.year, iso.week)


# --- replaying one item's history --------------------------------------------------------

@dataclass(frozen=True)
class Ev:
    """An ItemEvent as plain data (for tests; build() passes the rows themselves).
    `to_status` is what was recorded; the replay takes the status from lifecycle.RULES."""
    at: datetime
    action: str
    to_status: str
    data: dict = field(default_factory=dict)
    id: int | None = None


@dataclass
class State:
    status: str | None            # None: not reported yet at that moment
    deadline: datetime | None
    acknowledged_at: datetime | None = None
    fixed_at: datetime | None = None
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    reopened_in_week: bool = False


def replay(events, as_of: datetime, *, week_start: datetime, created_at: datetime,
           deadline_hours: int | None, current_deadline: datetime | None) -> State:
    """The item's state at `as_of` from its events (ItemEvents or Evs) at or before it.

    The deadline is the stored one unless an event after `as_of` changed it; then it
    is the one the history had set by `as_of` (`deadline_hours`, the category's, for
    old report and reopen events that did not record theirs).
    """
    ordered = sorted(events, key=lambda e: (e.at, e.id or 0))
    history = [lifecycle.Event.from_record(e.at, e.action, e.data) for e in ordered]
    seen = lifecycle.replay(history, until=as_of, default_hours=deadline_hours)
    changed_later = any(at > as_of for at, _ in
                        lifecycle.replay(history, default_hours=deadline_hours).deadlines)
    status = seen.status.value if seen.status else None
    if status is None and not history and created_at <= as_of:
        status = Status.REPORTED.value  # no history at all: trust the row
    return State(
        status=status, deadline=seen.deadline if changed_later else current_deadline,
        acknowledged_at=seen.acknowledged_at, fixed_at=seen.fixed_at,
        verified_at=seen.verified_at, closed_at=seen.closed_at, reopened_at=seen.reopened_at,
        reopened_in_week=seen.reopened_at is not None and seen.reopened_at >= week_start)


_CLOSED = frozenset(s.value for s in lifecycle.CLOSED)


def supervised(events, as_of: datetime) -> bool:
    """Whether the committee's 督办 flag was on at `as_of`: the last flag or unflag by
    then was a flag, and the item had not closed since (closing lifts it)."""
    flagged = False
    for e in sorted(events, key=lambda e: (e.at, e.id or 0)):
        if e.at > as_of:
            break
        if e.action == "flag":
            flagged = True
        elif e.action == "unflag" or e.to_status in _CLOSED:
            flagged = False
    return flagged


def classify(state: State, *, created_at: datetime, start: datetime, as_of: datetime) -> str | None:
    """The section for an item in that state, or None if it is not on the list."""
    if state.status is None or created_at > as_of:
        return None
    if state.status == Status.VERIFIED.value:
        return "verified" if state.verified_at and state.verified_at >= start else None
    if state.status == Status.FIXED.value:
        return "fixed"
    if state.status in _OWED:
        if state.reopened_in_week:
            return "reopened"
        return "new" if created_at >= start else "open"
    return None  # rejected, merged


# --- the report ---------------------------------------------------------------------------

@dataclass
class Entry:
    item: Item
    section: str
    state: State
    overdue: bool
    is_new: bool
    age_days: int
    note: str
    before: Photo | None = None
    after: Photo | None = None
    ack_late: bool = False         # reported and not acknowledged in time (escalated)
    supervised: bool = False       # flagged by the owners' committee (督办) at as_of


@dataclass
class Report:
    scope: str                     # compound | company | community
    target: object                 # the Compound, Company or Community
    week: Week
    start: datetime
    end: datetime
    as_of: datetime
    printed_at: datetime
    sections: dict[str, list[Entry]]
    counts: dict[str, int]
    by_category: list[tuple[str, dict[str, int]]]

    @property
    def empty(self) -> bool:
        return not any(self.sections.values())

    @property
    def entries(self):
        for key in SECTIONS:
            yield from self.sections[key]


def _short(text: str | None, limit: int = NOTE_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _scope_condition(scope: str, target, Item):
    if scope == "compound":
        return Item.compound_id == target.id
    if scope == "company":
        return Item.company_id == target.id
    if scope == "community":
        return Item.community_id == target.id
    raise ValueError(f"unknown scope {scope!r}")


def build(scope: str, target, week: Week, *, now: datetime, tz: str, form,
          visible=None, ack_limit: timedelta | None = None) -> Report:
    """Gather the week's items for a compound, company or community.

    `visible` is an extra SQL condition (permissions.item_filter for web users),
    so a download never shows more than the user's own lists do.
    """
    from sqlalchemy.orm import joinedload, selectinload

    from ..extensions import db
    from ..models import Item

    start, end = week.bounds(tz)
    as_of = min(end, now)
    # Closed before the week: not on the list (closing is final). The rest is replayed.
    conds = [_scope_condition(scope, target, Item), Item.created_at < as_of,
             db.or_(Item.closed_at.is_(None), Item.closed_at >= start)]
    if visible is not None:
        conds.append(visible)
    items = db.session.execute(
        db.select(Item).where(*conds).order_by(Item.created_at, Item.id)
        .options(selectinload(Item.events), selectinload(Item.photos),
                 joinedload(Item.building), joinedload(Item.compound))).scalars().all()

    sections: dict[str, list[Entry]] = {key: [] for key in SECTIONS}
    for item in items:
        category = form.category(item.category) if form else None
        state = replay(item.events, as_of, week_start=start, created_at=item.created_at,
                       deadline_hours=category["deadline_hours"] if category else None,
                       current_deadline=item.deadline)
        section = classify(state, created_at=item.created_at, start=start, as_of=as_of)
        if section is None:
            continue
        assert state.status is not None     # classify() lists reported items only
        at_by_event = {e.id: e.at for e in item.events}
        before = next((p for p in item.photos if p.kind == "before"), None)
        after = [p for p in item.photos if p.kind == "after"
                 and at_by_event.get(p.event_id, as_of) <= as_of]
        sections[section].append(Entry(
            item=item, section=section, state=state,
            overdue=is_overdue(state.status, state.deadline, as_of),
            is_new=item.created_at >= start,
            age_days=max(0, (as_of - item.created_at).days),
            note=_short(item.note), before=before, after=after[-1] if after else None,
            ack_late=ack_limit is not None and bool(ack_limit)
            and is_ack_late(state.status, item.created_at, as_of, ack_limit),
            supervised=supervised(item.events, as_of)))

    sections["open"].sort(key=lambda e: (not e.overdue, e.state.deadline or e.item.created_at,
                                         e.item.id))
    sections["fixed"].sort(key=lambda e: (e.state.fixed_at or e.item.created_at, e.item.id))
    sections["verified"].sort(key=lambda e: (e.state.verified_at, e.item.id))
    sections["reopened"].sort(key=lambda e: (e.state.reopened_at, e.item.id))

    entries = [e for key in SECTIONS for e in sections[key]]
    owed = [e for e in entries if e.state.status in _OWED]
    counts = {
        "reported": sum(e.is_new for e in entries),
        "open": len(owed),
        "overdue": sum(e.overdue for e in owed),
        "fixed": len(sections["fixed"]),
        "verified": len(sections["verified"]),
        "reopened": sum(e.state.reopened_in_week for e in entries),
        "listed": len(entries),
    }
    by_category: dict[str, dict[str, int]] = {}
    for e in entries:
        row = by_category.setdefault(e.item.category, dict.fromkeys(
            ("reported", "open", "overdue", "fixed", "verified"), 0))
        row["reported"] += e.is_new
        row["open"] += e.state.status in _OWED
        row["overdue"] += e.overdue
        row["fixed"] += e.section == "fixed"
        row["verified"] += e.section == "verified"
    order = {c["code"]: i for i, c in enumerate(form.categories)} if form else {}
    return Report(scope=scope, target=target, week=week, start=start, end=end, as_of=as_of,
                  printed_at=now, sections=sections, counts=counts,
                  by_category=sorted(by_category.items(),
                                     key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


# --- rendering ----------------------------------------------------------------------------

def item_url(base_url: str, item_id: int) -> str:
    return f"{base_url.rstrip('/')}/items/{item_id}"


def css_string(text: str) -> str:
    """A CSS string literal (for translated page-number text in @page rules)."""
    out = []
    for ch in str(text):
        if ch in '"\\' or ch in "<>&" or ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def page_counter_css(template: str) -> str:
    """'第 %(page)s 页 / 共 %(pages)s 页' -> a CSS `content` value with the counters."""
    parts = re.split(r"(%\((?:page|pages)\)s)", template)
    out = []
    for part in parts:
        if part == "%(page)s":
            out.append("counter(page)")
        elif part == "%(pages)s":
            out.append("counter(pages)")
        elif part:
            out.append(css_string(part))
    return " ".join(out) or '""'


# QR codes are raster images, QR_BOX pixels per module (an item URL is 37 modules with
# the quiet zone: 148 px over the template's 20.5 mm, about 180 dpi), greyscale, and
# drawn without smoothing (PDF_CSS). As SVG they were most of the write phase for 500
# items (issue 15 §5; the JPEG photos cost next to nothing there): WeasyPrint parses
# and draws every path point by point in Python into the page's content stream. A
# PNG is one image XObject, and a module is 4 pixels, so even a viewer that smooths
# images regardless keeps the edges sharp.
QR_BOX = 4
PDF_CSS = "img.qr { image-rendering: pixelated; }"


def qr_png(data: str) -> bytes:
    """The QR code for `data` as a greyscale PNG: the same error correction (M) and
    4-module quiet zone as services/qr.py."""
    import io

    import qrcode
    from PIL import Image
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()                      # modules, quiet zone included
    n = len(matrix)
    # Straight from the module matrix (make_image() draws every module as a rectangle,
    # nearly doubling the cost), in mode L: WeasyPrint embeds 1-bit images as RGB.
    modules = Image.frombytes("L", (n, n), bytes(0 if dark else 255
                                                 for row in matrix for dark in row))
    out = io.BytesIO()
    modules.resize((n * QR_BOX, n * QR_BOX), Image.Resampling.NEAREST).save(out, format="PNG")
    return out.getvalue()


def resources_for(report: Report, base_url: str, *, full_size: bool = False):
    """(resources for SafeFetcher, {item id: {qr, before, after}} names for the template).

    Photos go in as the stored ~320 px thumbnails (`full_size` embeds the
    1600 px originals instead; the benchmark uses it for comparison), as stored
    JPEG bytes, which WeasyPrint embeds unchanged (DCTDecode, no re-encoding). One
    PNG QR code per item (`qr_png`; render with PDF_CSS so it is not smoothed). A
    photo whose file is missing is left out, not an error.
    """
    from .photo_store import storage

    store = storage()
    resources: dict[str, tuple[bytes, str]] = {}
    names: dict[int, dict[str, str | None]] = {}

    def photo(p):
        if p is None:
            return None
        key = p.key if full_size else p.thumb_key
        name = f"photo-{p.id}-{'full' if full_size else 'thumb'}"
        if name not in resources:
            try:
                resources[name] = (store.get(key), "image/jpeg")
            except (OSError, ValueError):
                log.warning("weekly list: photo %s missing (%s)", p.id, key)
                return None
        return f"patrol-res:{name}"

    for e in report.entries:
        item_id = e.item.id
        resources[f"qr-{item_id}"] = (qr_png(item_url(base_url, item_id)), "image/png")
        names[item_id] = {"qr": f"patrol-res:qr-{item_id}",
                          "before": photo(e.before), "after": photo(e.after)}
    return resources, names


def _context(report: Report, base_url: str, tz: str, names, lang: str | None = None):
    from flask_babel import gettext as _

    from .. import display, labels

    form, lang = display.hazard_form(), lang or display.current_lang()

    def field_label(name, fallback):
        spec = form.field(name)
        return form.label(spec, lang) if spec else fallback

    unit_label, floor_label = field_label("unit", "Unit"), field_label("floor", "Floor")

    def local(dt, fmt="%Y-%m-%d %H:%M"):
        return display.local(dt, fmt, tz=tz)

    def location(item, with_compound: bool) -> str:
        parts = [item.compound.name] if with_compound else []
        if item.building:
            parts.append(item.building.name)
        if item.unit:
            parts.append(f"{unit_label} {item.unit}")
        if item.floor:
            parts.append(f"{floor_label} {item.floor}")
        return " · ".join(parts)

    return dict(r=report, names=names, base_url=base_url, local=local, location=location,
                category_label=lambda code: display.category_label(code, lang),
                current_lang=lambda: lang,
                status_label=lambda s: labels.STATUS.get(s, s),
                page_counter=page_counter_css(_("Page %(page)s of %(pages)s")),
                item_url=lambda i: item_url(base_url, i))


def render_document(report: Report, *, base_url: str, tz: str, full_size: bool = False,
                    lang: str | None = None):
    """The report as a WeasyPrint Document (laid out, not yet written), in `lang`
    (default: display.current_lang(), the language being shown)."""
    from flask import render_template

    from .. import display

    lang = lang or display.current_lang()
    resources, names = resources_for(report, base_url, full_size=full_size)
    with display.language(lang):
        html = render_template("pdf/weekly.html", **_context(report, base_url, tz, names, lang))
    return lay_out(html, resources)


def lay_out(html: str, resources):
    """The weekly list's HTML laid out (a WeasyPrint Document), with PDF_CSS."""
    from .pdf import document_from_html
    return document_from_html(html, resources, stylesheets=[PDF_CSS])


def render_pdf(report: Report, *, base_url: str, tz: str, full_size: bool = False,
               lang: str | None = None) -> bytes:
    from .pdf import write_documents
    return write_documents([render_document(report, base_url=base_url, tz=tz,
                                            full_size=full_size, lang=lang)])


@contextmanager
def rendering_locale(lang: str | None):
    """Render in `lang` (the CLI; an app context is enough): labels, categories and
    gettext all follow it. Inside a request with lang None, the user's own language is
    kept; outside one, the default language is used."""
    from flask import current_app, has_request_context

    from .. import display

    if lang is None and has_request_context():
        yield
        return
    with display.language(lang or current_app.config["BABEL_DEFAULT_LOCALE"]):
        yield
