"""Item operations: report, and every lifecycle action.

They change models and flush; the request handler (or CLI) commits once. The one
exception is `submit_report`, the whole report use case, which commits itself: photos
must survive a refused form, and of two sends of one form the database's unique key
decides only at commit.
`actor` and `now` are arguments, so everything here runs without a request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import db
from ..formdefs.store import ITEM_COLUMNS
from ..formdefs.submission import validate_submission
from ..lifecycle import (CLOSED, DISPUTE_DECISIONS, FLAG_REASONS, ROUTE_REASONS, Action,
                         Evidence, Role, Status, TransitionError, EXTEND_REASONS,
                         REJECT_REASONS, REOPEN_REASONS, check_extension, clamp_deadline,
                         presence_valid, transition)
from ..models import Compound, Department, Item, ItemEvent, Photo, Presence
from .. import permissions
from . import counts  # noqa: F401  (its session listener keeps the item tallies in step)
from . import notify, row_locks
from . import patrols as patrol_service
from .photo_store import save_upload
from .photos import PhotoRejected


CLOCK_SKEW = timedelta(minutes=5)
# An action's note (what was done, why, an answer): the form's textarea holds this much,
# and the server holds to it (a longer one reached the ledgers; Excel's cell ends at 32,767).
NOTE_MAX = 1000


class ConflictError(Exception):
    """Someone else changed the item first."""


@dataclass
class ActionInput:
    note: str | None = None
    reason: str | None = None
    deadline: datetime | None = None
    target_id: int | None = None
    photos: list = field(default_factory=list)   # Photo rows already saved
    version: int | None = None                  # the version the actor saw
    rating: int | None = None
    device_at: datetime | None = None           # when it was done, if queued offline
    client_uuid: str | None = None              # idempotency key of the form
    department_id: int | None = None            # route: to this department …
    to_company: bool = False                    # … or back to the property company
    data: dict = field(default_factory=dict)    # extra history data (a triage's report id)


# The coded reasons each action takes (its Evidence.REASON).
REASONS = {Action.REOPEN: REOPEN_REASONS, Action.REJECT: REJECT_REASONS,
           Action.EXTEND_DEADLINE: EXTEND_REASONS, Action.ROUTE: ROUTE_REASONS,
           Action.DECIDE_DISPUTE: DISPUTE_DECISIONS, Action.FLAG: FLAG_REASONS}
# Actions the parties around an item hear of (services/notify.py; receivers choose).
ACTION_EVENTS = {Action.FIX: "fixed", Action.COMMENT: "comment", Action.ROUTE: "routed",
                 Action.FLAG: "flagged", Action.DISPUTE: "disputed"}
# Who may take an action on this item: the lifecycle table says which roles; this says
# which object check (the committee is outside ACT, yet replies and flags).
OBJECT_CHECK = {Action.COMMENT: permissions.can_comment, Action.FLAG: permissions.can_supervise,
                Action.ROUTE: permissions.can_route,
                Action.DECIDE_DISPUTE: permissions.can_route}


def department_in_reach(department: Department | None, item: Item) -> bool:
    """A department may take items of its community (the community itself), of its
    street's communities, or of anywhere (bound to neither)."""
    if department is None or not department.active:
        return False
    if department.community_id is not None:
        return department.community_id == item.community_id
    if department.street_id is not None:
        from ..models import Community
        community = db.session.get(Community, item.community_id)
        return community is not None and community.street_id == department.street_id
    return True


def latest_presence(user, compound_id, now, window) -> Presence | None:
    """The user's most recent scan of this compound, if within the window before `now`.

    A scan made offline counts from its device time; it was uploaded later.
    """
    scanned = db.func.coalesce(Presence.device_at, Presence.at)
    presence = db.session.execute(
        db.select(Presence)
        .where(Presence.user_id == user.id, Presence.compound_id == compound_id,
               scanned <= now, scanned >= now - window)
        .order_by(scanned.desc(), Presence.id.desc()).limit(1)
    ).scalar_one_or_none()
    if presence and presence_valid(presence.device_at or presence.at, now, window):
        return presence
    return None


def on_the_spot(actor, compound_id, *, now: datetime, device_at: datetime | None,
                window: timedelta) -> Presence | None:
    """The scan that puts `actor` on the spot for something done now, or, when it was
    queued offline, at `device_at`: a scan within the window before the moment the phone
    recorded it, not before it reached us. One rule for checks and fixes on the spot."""
    return latest_presence(actor, compound_id, device_at or now, window)


def device_time(value: datetime | None, now: datetime, max_age: timedelta) -> datetime | None:
    """A phone's clock reading for something done offline, if plausible; else TransitionError."""
    if value is None:
        return None
    if value > now + CLOCK_SKEW or value < now - max_age:
        raise TransitionError("device_time", "device time out of range")
    return min(value, now)


def record_presence(user, compound, now, *, lat=None, lon=None, accuracy=None,
                    device_at=None) -> Presence:
    presence = Presence(user_id=user.id, compound_id=compound.id, at=now, lat=lat, lon=lon,
                        accuracy=accuracy, device_at=device_at)
    db.session.add(presence)
    db.session.flush()
    return presence


def record_offline_scan(user, compound, now, *, device_at: datetime, lat=None, lon=None
                        ) -> tuple[Presence, bool]:
    """A gate scan made without signal, sent later by the phone's outbox. Sent again
    after a lost answer it is the same scan, not a second one: (presence, created). The
    compound is held, so two sends at the same moment find one another too."""
    row_locks.hold(Compound.id, compound.id)
    again = db.session.execute(db.select(Presence).where(
        Presence.user_id == user.id, Presence.compound_id == compound.id,
        Presence.device_at == device_at)).scalars().first()
    if again:
        return again, False
    return record_presence(user, compound, now, lat=lat, lon=lon, device_at=device_at), True


def _event(item, actor, now, action, source, target, *, note=None, reason=None, data=None,
           presence=None, photos=(), client_uuid=None, device_at=None):
    # Done on a walk (at the phone's time when it was queued offline): part of that patrol.
    patrol_id = patrol_service.on_event(actor, item, device_at or now, presence,
                                        new_item=action == "report")
    ev = ItemEvent(item=item, actor_id=actor.id, at=now, action=action,
                   from_status=source, to_status=target, note=note, reason=reason,
                   data=data or {}, presence_id=presence.id if presence else None,
                   client_uuid=client_uuid, patrol_id=patrol_id)
    db.session.add(ev)
    db.session.flush()
    for photo in photos:
        photo.event_id = ev.id
        photo.item_id = item.id
    return ev


def find_resent(client_uuid, *, reporter, compound, clean, photo_count=None) -> Item | None:
    """The item an earlier send of this same report created, if any.

    The client UUID is an idempotency key (unique in the database). The same
    key with different content is a conflict, never a silent overwrite. Content is
    the fields, the extra answers and, when given, the number of photos (an item
    exists only if every photo of its send was accepted, so a resend has as many).
    """
    if not client_uuid:
        return None
    item = db.session.execute(
        db.select(Item).where(Item.client_uuid == client_uuid)).scalar_one_or_none()
    if item is None:
        return None

    def norm(value):  # raw form strings and stored values compare alike
        return None if value is None or str(value).strip() == "" else str(value).strip()

    def answers(extra):
        return {k: norm(v) for k, v in (extra or {}).items() if norm(v) is not None}

    same = (item.reporter_id == reporter.id and item.compound_id == compound.id
            and all(norm(getattr(item, attr)) == norm(clean.get(key)) for attr, key in (
                ("category", "category"), ("building_id", "building"),
                *((name, name) for name in ITEM_COLUMNS)))
            and answers(item.answers) == answers(clean.get("extra"))
            and (photo_count is None
                 or photo_count == sum(p.kind == "before" for p in item.photos)))
    if not same:
        raise ConflictError()
    return item


def find_repeated(client_uuid, *, item, actor, action) -> ItemEvent | None:
    """The change an earlier send of this same form made, if any (a phone resending
    after a lost answer). The same key on another item, person or action conflicts."""
    if not client_uuid:
        return None
    earlier = db.session.execute(
        db.select(ItemEvent).where(ItemEvent.client_uuid == client_uuid)).scalar_one_or_none()
    if earlier is None:
        return None
    if (earlier.item_id, earlier.actor_id, earlier.action) != (item.id, actor.id, Action(action).value):
        raise ConflictError()
    return earlier


def report(*, form, compound, reporter, clean: dict, photos: list, now: datetime,
           client_uuid=None, device_at=None) -> Item:
    """Create an item from an already-validated submission (see formdefs.submission)."""
    if not permissions.can_report(reporter, compound):
        raise TransitionError("forbidden_object", "cannot report in this compound")
    category = form.category(clean["category"])
    # The columns the form's fields name in their `store` (formdefs/store.py).
    columns = {name: clean.get(name) or None for name in ITEM_COLUMNS}
    deadline = now + timedelta(hours=category["deadline_hours"])
    # The company as it is now, the compound held until the commit: a handover of this
    # compound at the same moment either comes first (the item is the new company's) or
    # waits and finds the item among the open ones it passes on.
    company_id = row_locks.hold(Compound.company_id, compound.id, share=True)
    item = Item(compound_id=compound.id, community_id=compound.community_id,
                company_id=company_id, building_id=clean.get("building"),
                category=category["code"], **columns,
                answers=clean.get("extra", {}), form_id=form.id, form_version=form.version,
                status=Status.REPORTED.value, reporter_id=reporter.id, created_at=now,
                updated_at=now, deadline=deadline,
                client_uuid=client_uuid, device_created_at=device_at)
    db.session.add(item)
    db.session.flush()
    for photo in photos:
        photo.kind = "before"
    _event(item, reporter, now, "report", None, Status.REPORTED.value, note=item.note,
           data={"deadline": deadline.isoformat(timespec="seconds")}, photos=photos,
           device_at=device_at)
    # Queued in this transaction; sent after commit, outside the request (services/notify.py).
    notify.notify_item("new_item", item, now)
    return item


def act(item: Item, action, actor, now: datetime, given: ActionInput, *, form,
        window: timedelta) -> ItemEvent:
    """Apply one lifecycle action, with its evidence, or raise.

    TransitionError for illegal moves or missing evidence, ConflictError when
    the item changed since the actor looked at it.
    """
    action = Action(action)
    if not OBJECT_CHECK.get(action, permissions.can_act_on_item)(actor, item):
        raise TransitionError("forbidden_object", "not your item")
    if (action.value in permissions.RESPONSIBLE_ACTIONS
            and Role(actor.role) in (Role.MANAGER, Role.DEPARTMENT)
            and not permissions.is_responsible(actor, item)):
        raise TransitionError("forbidden_object", "not the responsible party")
    earlier = find_repeated(given.client_uuid, item=item, actor=actor, action=action)
    if earlier:
        return earlier
    if given.version is not None and given.version != item.version:
        raise ConflictError()
    if given.note and len(given.note.strip()) > NOTE_MAX:
        raise TransitionError("note_too_long", str(NOTE_MAX))

    evidence: set[Evidence] = set()
    data: dict[str, Any] = {}           # the history entry's JSON
    presence = None
    if given.note and given.note.strip():
        evidence.add(Evidence.NOTE)
    if given.photos:
        evidence.add(Evidence.PHOTO)
    if given.reason and given.reason in REASONS.get(action, ()):
        evidence.add(Evidence.REASON)
    data.update(given.data)
    department = None
    if action == Action.ROUTE:
        if given.department_id is not None:
            department = db.session.get(Department, given.department_id)
            if (department is not None and department_in_reach(department, item)
                    and department.id != item.department_id):
                evidence.add(Evidence.PARTY)
                data["department_id"] = department.id
        elif given.to_company and item.department_id is not None and item.company_id:
            evidence.add(Evidence.PARTY)
            data["company_id"] = item.company_id
    if action == Action.APPROVE_ANSWER and any(e.action == Action.ANSWER.value
                                               for e in item.events):
        evidence.add(Evidence.ANSWER)
    if action == Action.DECIDE_DISPUTE and item.disputed_at is None:
        raise TransitionError("not_disputed", "nothing to decide")
    if action == Action.FLAG and item.flagged_at is not None:
        raise TransitionError("already_flagged", "flagged already")
    if action == Action.UNFLAG and item.flagged_at is None:
        raise TransitionError("not_flagged", "not flagged")
    if action in (Action.VERIFY, Action.REOPEN, Action.FIX_ON_SPOT):
        presence = on_the_spot(actor, item.compound_id, now=now, device_at=given.device_at,
                               window=window)
        if presence:
            evidence.add(Evidence.PRESENCE)
    if action == Action.ACKNOWLEDGE:
        default = default_deadline(item, form, now)
        deadline = clamp_deadline(given.deadline, default, Role(actor.role))
        if deadline <= now:
            raise TransitionError("deadline_past", "deadline must be in the future")
        evidence.add(Evidence.DEADLINE)
        data["deadline"] = deadline.isoformat(timespec="seconds")
    if action == Action.EXTEND_DEADLINE and given.deadline is not None:
        evidence.add(Evidence.DEADLINE)
    target = None
    if action == Action.MERGE and given.target_id and given.target_id != item.id:
        target = db.session.get(Item, given.target_id)
        if (target and target.compound_id == item.compound_id
                and Status(target.status).is_open and target.merged_into_id is None):
            evidence.add(Evidence.TARGET)
            data["merged_into"] = target.id
    if given.device_at:
        # A check cannot predate the fix it checks: this bounds what a phone's
        # claimed time can reach back to.
        if (action in (Action.VERIFY, Action.REOPEN) and item.fixed_at
                and given.device_at < item.fixed_at):
            raise TransitionError("device_time", "checked before the fix was recorded")
        data["device_at"] = given.device_at.isoformat(timespec="seconds")
    if given.rating and action in (Action.VERIFY, Action.FIX_ON_SPOT):
        data["rating"] = max(1, min(5, int(given.rating)))

    outcome = transition(item.status, action, actor.role, evidence)
    if action == Action.EXTEND_DEADLINE:  # only staff get here (the table says so)
        deadline = check_extension(given.deadline, item.deadline, now)
        data["deadline"] = deadline.isoformat(timespec="seconds")
        if item.deadline:
            data["previous_deadline"] = item.deadline.isoformat(timespec="seconds")

    item.status = outcome.target.value
    item.updated_at = now
    if action == Action.ACKNOWLEDGE:
        item.deadline = deadline
        item.acknowledged_at = now
    elif action == Action.EXTEND_DEADLINE:
        item.deadline = deadline
    elif action == Action.FIX:
        item.fixed_at = now
    elif action == Action.REOPEN:
        category = form.category(item.category) if form else None
        hours = category["deadline_hours"] if category else 72
        item.deadline = now + timedelta(hours=hours)
        data["deadline"] = item.deadline.isoformat(timespec="seconds")
    elif action == Action.MERGE:
        assert target is not None           # transition() required Evidence.TARGET
        item.merged_into_id = target.id
        # The merged item's reports support the one kept (N 人反映 moves with them).
        target.support_count += item.support_count + 1
        target.updated_at = now
    elif action == Action.ROUTE:
        # The new party starts afresh: its own acknowledgement, the category's deadline.
        item.department_id = department.id if department else None
        item.disputed_at = None
        item.acknowledged_at = None
        category = form.category(item.category) if form else None
        item.deadline = now + timedelta(hours=category["deadline_hours"] if category else 72)
        data["deadline"] = item.deadline.isoformat(timespec="seconds")
    elif action == Action.DISPUTE:
        item.disputed_at = now
    elif action == Action.DECIDE_DISPUTE:
        item.disputed_at = None
    elif action == Action.SUPPORT:
        item.support_count += 1
    elif action == Action.FLAG:
        item.flagged_at, item.flag_reason = now, given.reason
    elif action == Action.UNFLAG:
        item.flagged_at, item.flag_reason = None, None
    if action == Action.FIX_ON_SPOT:
        item.fixed_on_spot = True
        item.fixed_at = now
    if outcome.target in CLOSED and outcome.source not in CLOSED:
        item.closed_at = now
        # Closing lifts the committee's flag and ends a dispute.
        item.flagged_at = item.flag_reason = item.disputed_at = None
    for photo in given.photos:
        photo.kind = {Action.REOPEN: "check", Action.SUPPORT: "before"}.get(action, "after")
    try:
        ev = _event(item, actor, now, action.value, outcome.source.value, outcome.target.value,
                    note=(given.note or "").strip() or None, reason=given.reason,
                    data=data, presence=presence, photos=given.photos,
                    client_uuid=given.client_uuid, device_at=given.device_at)
    except StaleDataError:
        raise ConflictError() from None
    if action == Action.REOPEN:
        notify.notify_reopened(item, ev, now)
    elif action in ACTION_EVENTS:
        notify.notify_action(ACTION_EVENTS[action], item, ev, now)
    return ev


SUPPORT_TRIES = 3


def act_once(item: Item, action, actor, now: datetime, given: ActionInput, *, form,
             window: timedelta) -> None:
    """`act`, then commit. If the same form arrives twice at the same moment, the second
    send gets the first one's success: the loser of the race fails on the history entry's
    unique key or on the item's version, and then finds the winner's entry. A support
    (同一个) needs only an open item, so one that loses to another change is tried again
    on the changed item rather than refused."""
    for attempt in range(1, SUPPORT_TRIES + 1):
        try:
            act(item, action, actor, now, given, form=form, window=window)
            db.session.commit()
            return
        except (IntegrityError, ConflictError):
            db.session.rollback()
            fresh = db.session.get(Item, item.id)
            if find_repeated(given.client_uuid, item=fresh, actor=actor, action=action):
                return
            if Action(action) != Action.SUPPORT or attempt == SUPPORT_TRIES or fresh is None:
                raise
            item = fresh


def default_deadline(item, form, now) -> datetime:
    """The deadline acknowledging proposes: the category's hours from the report."""
    category = form.category(item.category) if form else None
    hours = category["deadline_hours"] if category else 72
    base = item.created_at if item.status == Status.REPORTED.value else now
    default = base + timedelta(hours=hours)
    # The clock runs from the report; an item acknowledged late still gets a
    # deadline an hour ahead, so acknowledging stays possible.
    return max(default, now + timedelta(hours=1))


# --- the report use case: a form from the page or the phone's outbox ------------------------

@dataclass
class PhotoSend:
    """The photos one form field brings: new uploads (file-like, with `filename` and
    `read()`) and the ids of photos stored by an earlier send that was refused, so a
    retry never asks for a photo twice."""
    uploads: list = field(default_factory=list)
    kept_ids: list = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many photos this is, without reading them (each kept id once)."""
        return len(set(self.kept_ids)) + sum(1 for f in self.uploads if f.filename)


def store_photos(sent: PhotoSend, *, uploader, kind: str, lat=None, lon=None
                 ) -> tuple[list[Photo], list[tuple[str, str]]]:
    """Store a form's uploads, kept even if the form has other errors; reuse its kept
    photos (the uploader's own, not yet claimed by an item).

    Returns (photos, [(file name, PhotoRejected code)]).
    """
    photos: list[Photo] = []
    refused: list[tuple[str, str]] = []
    if sent.kept_ids:
        photos.extend(db.session.execute(
            db.select(Photo).where(Photo.id.in_(sent.kept_ids), Photo.uploader_id == uploader.id,
                                   Photo.item_id.is_(None))).scalars())
    for upload in sent.uploads:
        data = upload.read()
        if not data and not upload.filename:
            continue
        try:
            photos.append(save_upload(data, uploader=uploader, kind=kind, lat=lat, lon=lon))
        except PhotoRejected as exc:
            refused.append((upload.filename or "", exc.code))
    if photos:
        db.session.flush()
    return photos, refused


@dataclass
class ReportSend:
    """A report form as sent, parsed by the view."""
    values: dict                                 # the form's fields (strings)
    client_uuid: str | None = None               # idempotency key of the form
    photos: PhotoSend = field(default_factory=PhotoSend)
    after_photos: PhotoSend = field(default_factory=PhotoSend)  # when fixed on the spot
    lat: float | None = None
    lon: float | None = None
    device_at: datetime | None = None            # the phone's time, if plausible

    @property
    def fixed_on_spot(self) -> bool:
        return self.values.get("fixed_on_spot") == "1"


@dataclass
class ReportOutcome:
    item: Item | None = None
    duplicate: bool = False          # an earlier send of this form made the item
    conflict: bool = False           # the form's key was used for a different report
    errors: dict = field(default_factory=dict)        # field name → error code
    photo_errors: list = field(default_factory=list)  # (field, file name, PhotoRejected code)
    kept: list = field(default_factory=list)          # photos stored for the retry
    kept_after: list = field(default_factory=list)


def submit_report(*, form, compound, reporter, sent: ReportSend, now: datetime,
                  max_photos: int, window: timedelta) -> ReportOutcome:
    """Report a hazard from a form: validate it, store its photos, create the item (and,
    fixed on the spot, close it at once), exactly once per form.

    A resend of a form that already arrived answers with its item (`duplicate`), or a
    `conflict` if the same key came with different content. A refused form keeps its
    photos (committed) for the retry. Commits; rolls back what it does not keep.
    """
    earlier = _earlier_send(form, compound, reporter, sent, max_photos)
    if earlier:
        return earlier
    if compound.archived_at is not None:   # gone from lists and scans; history kept
        return ReportOutcome(errors={"compound": "archived"})
    out = ReportOutcome()
    photos, refused = store_photos(sent.photos, uploader=reporter, kind="before",
                                   lat=sent.lat, lon=sent.lon)
    out.photo_errors = [("photos", *r) for r in refused]
    after: list[Photo] = []
    if sent.fixed_on_spot:
        after, refused = store_photos(sent.after_photos, uploader=reporter, kind="after",
                                      lat=sent.lat, lon=sent.lon)
        out.photo_errors += [("after_photos", *r) for r in refused]
    clean, out.errors = validate_submission(
        form, sent.values, building_ids={b.id for b in compound.buildings},
        photo_count=len(photos), max_photos=max_photos)
    if sent.fixed_on_spot:
        if not after:
            out.errors["after_photos"] = "required_photo"
        if not on_the_spot(reporter, compound.id, now=now, device_at=sent.device_at,
                           window=window):
            out.errors["fixed_on_spot"] = "presence"
    if out.errors or out.photo_errors:
        # Two sends of one form at once: the other may have arrived since we looked, and
        # claimed the kept photos (so this one found none). It is the duplicate it is.
        earlier = _earlier_send(form, compound, reporter, sent, max_photos)
        if earlier:
            db.session.rollback()
            return earlier
        db.session.commit()  # keep the photos already received for the retry
        out.kept, out.kept_after = photos, after
        return out
    try:
        out.item, out.duplicate = _report_once(form, compound, reporter, sent, clean, photos,
                                               after, now, window)
    except ConflictError:
        db.session.rollback()
        return ReportOutcome(conflict=True)
    return out


def _earlier_send(form, compound, reporter, sent: ReportSend, max_photos) -> ReportOutcome | None:
    """The answer for a resend of a form that already arrived (its item, or a conflict)."""
    try:
        earlier = find_resent(
            sent.client_uuid, reporter=reporter, compound=compound,
            clean=validate_submission(form, sent.values,
                                      building_ids={b.id for b in compound.buildings},
                                      photo_count=0, max_photos=max_photos)[0],
            photo_count=sent.photos.count)
    except ConflictError:
        return ReportOutcome(conflict=True)
    return ReportOutcome(item=earlier, duplicate=True) if earlier else None


def _report_once(form, compound, reporter, sent: ReportSend, clean, photos, after, now, window):
    """Create the item; if the same form arrives twice at the same moment, the unique key
    decides. Returns (item, duplicate)."""
    try:
        item = report(form=form, compound=compound, reporter=reporter, clean=clean,
                      photos=photos, now=now, client_uuid=sent.client_uuid,
                      device_at=sent.device_at)
        patrol_service.judge_report(item, compound, sent.lat, sent.lon)
        if sent.fixed_on_spot:
            act(item, Action.FIX_ON_SPOT, reporter, now,
                ActionInput(photos=after, device_at=sent.device_at), form=form, window=window)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        resent = find_resent(sent.client_uuid, reporter=reporter, compound=compound, clean=clean,
                             photo_count=len(photos))
        if resent is None:
            raise
        return resent, True
    return item, False
