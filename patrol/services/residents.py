"""Residents' reports (业主提诉求): a signed-out phone at a gate QR reports a problem; it
waits in a triage queue until staff or a volunteer leader accept it (a new item),
add it to an open item (a supporting report) or decline it with a coded reason.

Pure use cases: no request objects; `now` and the limits are passed in. They change
models and flush; the caller commits (except `submit`, which commits itself, like
services/items.submit_report: of two sends of one form the unique key decides at commit).

Nothing here reaches a company or a notification before triage: `submit` writes only
the queue row and its photos; an item (and its notifications) exists from `accept` on.
The resident keeps a receipt link whose token is never stored, only its hash.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from .. import permissions
from ..extensions import db
from ..formdefs.submission import validate_submission
from ..lifecycle import Action, Status, TransitionError
from ..models import Item, ItemEvent, Photo, ResidentReport
from ..models.people import hash_secret
from ..models.workflow import DECLINE_REASONS
from . import items as item_service
from . import row_locks
from .photo_store import save_upload
from .photos import PhotoRejected

NOTE_MAX = 200                      # a short description
PHONE_MAX = 20
PHONE_RE = re.compile(r"^[0-9+\- ]+$")
# The fields a resident fills in (the rest of the form is the patrol's: unit, floor, …).
RESIDENT_FIELDS = ("photos", "category", "building", "note")
# Closed states a resident may rate: fixed and checked, or answered in writing.
RATEABLE = frozenset({Status.VERIFIED, Status.ANSWERED})
# A device's reports at one compound beyond RESIDENT_DEVICE_LIMIT within this long
# collapse into its last one.
DEVICE_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Limits:
    device_limit: int               # RESIDENT_DEVICE_LIMIT
    max_photos: int                 # MAX_PHOTOS
    secret: str                     # the app's secret: keys the receipt token and address hash


@dataclass
class Upload:
    """One photo as sent: its file name and bytes."""
    filename: str
    data: bytes


@dataclass
class SubmitOutcome:
    report: ResidentReport | None = None
    token: str | None = None         # the receipt link's token (new or resent reports)
    collapsed: bool = False          # counted as a repeat of this device's last report
    duplicate: bool = False          # a resend of a form that already arrived
    conflict: bool = False           # the form's key came with other content
    errors: dict = field(default_factory=dict)         # field → FIELD_ERROR code
    photo_errors: list = field(default_factory=list)   # (file name, PhotoRejected code)

    @property
    def created(self) -> bool:
        """A new row in the triage queue."""
        return self.report is not None and not (self.collapsed or self.duplicate)


def _keyed(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), "|".join(parts).encode(), hashlib.sha256).hexdigest()


def receipt_token(secret: str, client_uuid: str, device_id: str) -> str:
    """The receipt link's token: unguessable without the server's secret and the phone's
    own device id (an HttpOnly cookie), and the same for a resend of the same form, so a
    phone whose first answer was lost gets the same link again. Only its hash is stored."""
    return _keyed(secret, "receipt", client_uuid, device_id)[:40]


def find_by_token(token: str) -> ResidentReport | None:
    if not token or len(token) > 100:
        return None
    return db.session.execute(db.select(ResidentReport).where(
        ResidentReport.receipt_hash == hash_secret(token))).scalar_one_or_none()


def clean_phone(raw: str | None) -> tuple[str | None, str | None]:
    """(phone, error code)."""
    phone = (raw or "").strip()
    if not phone:
        return None, None
    if len(phone) > PHONE_MAX:
        return None, "too_long"
    if not PHONE_RE.match(phone) or not any(ch.isdigit() for ch in phone):
        return None, "bad_phone"
    return phone, None


def _uuid(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def validate(form, compound, values: dict, photo_count: int, max_photos: int,
             photo_required: bool = True) -> tuple[dict, dict]:
    """The resident's fields against the compound's form definition (the same categories
    as the patrol's), plus a shorter note and the optional call-back phone. Requests from
    other systems (Open311) may come without a photo: their media_url is never fetched."""
    sent = {name: values.get(name) for name in RESIDENT_FIELDS if name != "photos"}
    clean, errors = validate_submission(form, sent, building_ids={b.id for b in compound.buildings},
                                        photo_count=photo_count, max_photos=max_photos)
    errors = {k: v for k, v in errors.items() if k in RESIDENT_FIELDS}
    if not photo_required and errors.get("photos") == "required_photo":
        del errors["photos"]
    note = (values.get("note") or "").strip()
    if len(note) > NOTE_MAX:
        errors["note"] = "too_long"
    clean["note"] = note or None
    clean["phone"], phone_error = clean_phone(values.get("phone"))
    if phone_error:
        errors["phone"] = phone_error
    return clean, errors


def _same(report: ResidentReport, compound, clean: dict, device_hash: str) -> bool:
    return (report.compound_id == compound.id and report.device_hash == device_hash
            and report.category == clean.get("category")
            and report.building_id == clean.get("building")
            and (report.note or None) == clean.get("note"))


def _resent(client_uuid, compound, clean, device_hash, device_id, limits) -> SubmitOutcome | None:
    if not client_uuid:
        return None
    earlier = db.session.execute(db.select(ResidentReport).where(
        ResidentReport.client_uuid == client_uuid)).scalar_one_or_none()
    if earlier is None:
        return None
    if not _same(earlier, compound, clean, device_hash):
        return SubmitOutcome(conflict=True)
    return SubmitOutcome(report=earlier, duplicate=True,
                         token=receipt_token(limits.secret, client_uuid, device_id))


def submit(compound, values: dict, photos: list[Upload], device_id: str, ip: str | None,
           now: datetime, limits: Limits, *, form, photo_required: bool = True) -> SubmitOutcome:
    """Put a resident's report in the triage queue, exactly once per form (`client_uuid`
    in `values`), and at most `limits.device_limit` per device and compound a day: later
    ones only count as repeats of the device's last report (no new row, no photo kept).
    Commits; a refused form keeps nothing."""
    if compound.archived_at is not None:
        return SubmitOutcome(errors={"compound": "archived"})
    uploads = [p for p in photos if p.data or p.filename][:limits.max_photos + 1]
    clean, errors = validate(form, compound, values, len(uploads), limits.max_photos,
                             photo_required)
    device_hash = hash_secret(device_id)
    client_uuid = _uuid(values.get("client_uuid"))
    resent = _resent(client_uuid, compound, clean, device_hash, device_id, limits)
    if resent:
        return resent
    if errors:
        return SubmitOutcome(errors=errors)
    client_uuid = client_uuid or str(uuid.uuid4())

    recent = db.session.execute(
        db.select(ResidentReport)
        .where(ResidentReport.compound_id == compound.id,
               ResidentReport.device_hash == device_hash,
               ResidentReport.created_at > now - DEVICE_WINDOW)
        .order_by(ResidentReport.created_at.desc(), ResidentReport.id.desc())
        .limit(limits.device_limit)).scalars().all()
    if len(recent) >= limits.device_limit:
        last = recent[0]
        # An UPDATE in the database, so concurrent repeats all count.
        db.session.execute(db.update(ResidentReport).where(ResidentReport.id == last.id)
                           .values(repeats=ResidentReport.repeats + 1))
        db.session.commit()
        return SubmitOutcome(report=last, collapsed=True)

    stored: list[Photo] = []
    refused: list[tuple[str, str]] = []
    for upload in uploads:
        try:
            stored.append(save_upload(upload.data, uploader=None, kind="before"))
        except PhotoRejected as exc:
            refused.append((upload.filename, exc.code))
    if refused:
        db.session.rollback()
        return SubmitOutcome(photo_errors=refused)
    token = receipt_token(limits.secret, client_uuid, device_id)
    report = ResidentReport(
        compound_id=compound.id, community_id=compound.community_id,
        category=clean["category"], building_id=clean.get("building"), note=clean["note"],
        phone=clean["phone"], status="pending", device_hash=device_hash,
        ip_hash=_keyed(limits.secret, "ip", ip) if ip else None,
        receipt_hash=hash_secret(token), client_uuid=client_uuid, created_at=now)
    db.session.add(report)
    try:
        db.session.flush()          # the unique keys are met here, or at the commit
        for photo in stored:
            photo.resident_report_id = report.id
        db.session.commit()
    except IntegrityError:          # the same form, sent twice at the same moment
        db.session.rollback()
        resent = _resent(client_uuid, compound, clean, device_hash, device_id, limits)
        if resent is None:
            raise
        return resent
    return SubmitOutcome(report=report, token=token)


# --- triage -------------------------------------------------------------------------

def _check(report: ResidentReport, actor) -> None:
    """May `actor` handle this report now? Checked again on the held row: of two triagers
    at the same moment (accept and accept, or accept and decline), the second waits for
    the first and is told it is already handled."""
    if not permissions.can_triage(actor, report):
        raise TransitionError("forbidden_object", "not in your triage queue")
    if report.status != "pending" or \
            row_locks.hold(ResidentReport.status, report.id) != "pending":
        raise TransitionError("bad_state", "already handled")


def _handled(report: ResidentReport, actor, now: datetime, status: str, item=None) -> None:
    report.status = status
    report.handled_by_id = actor.id
    report.handled_at = now
    if item is not None:
        report.item_id = item.id


def _photos(report: ResidentReport) -> list[Photo]:
    return list(db.session.execute(db.select(Photo).where(
        Photo.resident_report_id == report.id, Photo.item_id.is_(None))
        .order_by(Photo.id)).scalars())


def accept(report: ResidentReport, actor, now: datetime, form) -> Item:
    """A new item, routed as usual (its company, its notifications), reported by the
    one who accepted it; the resident's photos and description go with it, the phone
    number never does."""
    _check(report, actor)
    clean: dict = {"category": report.category, "building": report.building_id,
             "note": report.note, "extra": {}}
    if form.category(report.category) is None:
        raise TransitionError("bad_state", "the category is no longer on the form")
    item = item_service.report(form=form, compound=report.compound, reporter=actor,
                               clean=clean, photos=_photos(report), now=now)
    item.source = "resident"
    _handled(report, actor, now, "accepted", item)
    db.session.flush()
    return item


def support(report: ResidentReport, item: Item, actor, now: datetime, *, form,
            window: timedelta) -> ItemEvent:
    """The same problem as an open item of the compound: a supporting report on it."""
    _check(report, actor)
    if item.compound_id != report.compound_id or not Status(item.status).is_open:
        raise TransitionError("bad_state", "not an open item of this compound")
    ev = item_service.act(item, Action.SUPPORT, actor, now,
                          item_service.ActionInput(note=report.note, photos=_photos(report),
                                                   data={"resident_report": report.id}),
                          form=form, window=window)
    _handled(report, actor, now, "supported", item)
    db.session.flush()
    return ev


def decline(report: ResidentReport, actor, reason: str, now: datetime) -> None:
    _check(report, actor)
    if reason not in DECLINE_REASONS:
        raise TransitionError("missing_evidence", "reason")
    report.decline_reason = reason
    _handled(report, actor, now, "declined")
    db.session.flush()


def open_items_like(report: ResidentReport) -> list[Item]:
    """The compound's open items a report may support: its category first, then newest."""
    same = db.case((Item.category == report.category, 0), else_=1)
    return list(db.session.execute(
        db.select(Item).where(Item.compound_id == report.compound_id,
                              Item.status.in_([s.value for s in Status if s.is_open]))
        .order_by(same, Item.created_at.desc(), Item.id.desc()).limit(30)).scalars())


def queue_query(user):
    """The pending reports the user may triage, oldest first."""
    return (db.select(ResidentReport)
            .where(permissions.triage_filter(user, ResidentReport),
                   ResidentReport.status == "pending")
            .order_by(ResidentReport.created_at, ResidentReport.id))


def queue_count(user) -> int:
    return db.session.execute(
        db.select(db.func.count()).select_from(ResidentReport)
        .where(permissions.triage_filter(user, ResidentReport),
               ResidentReport.status == "pending")).scalar_one()


# --- the receipt ----------------------------------------------------------------------

def final_item(report: ResidentReport) -> Item | None:
    """The item that answers the report: its own, or the one it was merged into."""
    item = report.item
    seen = set()
    while item is not None and item.status == Status.MERGED.value and item.merged_into_id \
            and item.id not in seen:
        seen.add(item.id)
        item = item.merged_into
    return item


def closed(report: ResidentReport) -> bool:
    item = final_item(report)
    return item is not None and Status(item.status) in RATEABLE


def can_rate(report: ResidentReport) -> bool:
    return report.rating is None and closed(report)


def rate(report: ResidentReport, stars: int, now: datetime) -> None:
    """业主满意度: 1–5 stars, once, and only when the item is closed (verified or answered)."""
    # Held and read again: the same phone rating twice at once is thanked once.
    if report.rating is not None or \
            row_locks.hold(ResidentReport.rating, report.id) is not None:
        raise TransitionError("already_rated", "rated already")
    if not closed(report):
        raise TransitionError("bad_state", "the item is not closed")
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        raise TransitionError("missing_evidence", "stars")
    report.rating, report.rated_at = stars, now
    db.session.flush()


@dataclass(frozen=True)
class Step:
    at: datetime
    code: str           # "received", a RESIDENT_STATUS, or an item status


def public_history(report: ResidentReport) -> list[Step]:
    """What the resident may read: when it was received, how it was handled, and each
    status the item went through since (dates and statuses only: no names, no notes)."""
    steps = [Step(report.created_at, "received")]
    if report.status != "pending" and report.handled_at:
        steps.append(Step(report.handled_at, report.status))
    item, seen = report.item, set()
    while item is not None and item.id not in seen:
        seen.add(item.id)
        for ev in item.events:
            if report.handled_at and ev.at < report.handled_at:
                continue
            if ev.action == "report" or ev.from_status == ev.to_status:
                continue
            steps.append(Step(ev.at, ev.to_status))
        item = item.merged_into if item.status == Status.MERGED.value else None
    return steps
