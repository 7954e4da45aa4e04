"""Patrols on record: starting, joining, checkpoints, ending, and linking what is done
on a walk to it. The rules are patrol/patrols.py's; this applies them to rows.

Times. Everything a phone queued offline carries the phone's time (`device_at`), and a
patrol is built from those times, not from when the records reached us: a walk made in a
basement and sent an hour later is the same walk. A patrol "ends on its own" after a
quiet spell (no scan, checkpoint or report for PATROL_QUIET): it is then closed at its
last activity (`ended_by='quiet'`), and a late record that falls within the quiet spell
after that still extends it. A patrol ended by a tap is final.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from .. import permissions
from .. import patrols as rules
from ..extensions import db
from ..lifecycle import TransitionError
from ..models import (Checkpoint, CheckpointScan, Compound, Item, ItemEvent, Patrol,
                      PatrolMember, Presence)
from . import row_locks

SUMMARIES = ("none", "found", "unfinished")
SAME_START = timedelta(minutes=1)   # two of a team tapping 开始巡查 this close: one walk


@dataclass(frozen=True)
class Config:
    quiet: timedelta
    auto_start: bool
    hours: rules.HoursRule
    presence: rules.PresenceRule


def config() -> Config:
    c = current_app.config
    return Config(quiet=c["PATROL_QUIET"], auto_start=c["PATROL_AUTO_START"],
                  hours=rules.HoursRule(c["PATROL_HOURS_CAP_MINUTES"],
                                        c["PATROL_HOURS_ROUND_MINUTES"]),
                  presence=rules.PresenceRule(c["PRESENCE_DEFAULT_RADIUS_M"],
                                              c["PRESENCE_ACCURACY_ALLOWANCE_M"]))


# --- which patrol -------------------------------------------------------------------------

def _covers(patrol: Patrol, at: datetime, quiet: timedelta) -> bool:
    """Is `at` within this patrol: after its start, and before its tapped end, or within
    the quiet spell after its last activity?"""
    if at < patrol.started_at:
        return False
    if patrol.ended_by == "tapped":
        return at <= patrol.ended_at  # type: ignore[operator]
    return at <= patrol.last_activity_at + quiet


def _team_condition(user):
    """Patrols a user may join: their team's; without a team, only their own."""
    if user.team_id is not None:
        return Patrol.team_id == user.team_id
    return db.and_(Patrol.team_id.is_(None), Patrol.started_by_id == user.id)


def joinable(user, compound_id: int, at: datetime, quiet: timedelta) -> Patrol | None:
    """The patrol under way in this compound at `at` that the user's scan joins."""
    candidates = db.session.execute(
        db.select(Patrol).where(Patrol.compound_id == compound_id, _team_condition(user),
                                Patrol.started_at <= at,
                                Patrol.last_activity_at >= at - quiet - timedelta(hours=24))
        .order_by(Patrol.started_at.desc()).limit(5)).scalars()
    return next((p for p in candidates if _covers(p, at, quiet)), None)


def member_patrol(user, compound_id: int, at: datetime, quiet: timedelta) -> Patrol | None:
    """The patrol the user is on in this compound at `at`, if any."""
    candidates = db.session.execute(
        db.select(Patrol).join(PatrolMember)
        .where(PatrolMember.user_id == user.id, Patrol.compound_id == compound_id,
               Patrol.started_at <= at)
        .order_by(Patrol.started_at.desc()).limit(3)).scalars()
    return next((p for p in candidates if _covers(p, at, quiet)), None)


def _member(patrol: Patrol, user) -> PatrolMember | None:
    return db.session.get(PatrolMember, (patrol.id, user.id))


def _touch(patrol: Patrol, user, at: datetime, cfg: Config) -> None:
    """Something was done on the patrol at `at`: the user is a member from then (or
    earlier), and a quiet-ended patrol extends to cover it."""
    member = _member(patrol, user)
    if member is None:
        db.session.add(PatrolMember(patrol_id=patrol.id, user_id=user.id, joined_at=at))
    elif at < member.joined_at:
        member.joined_at = at
    if at > patrol.last_activity_at:
        patrol.last_activity_at = at
    if patrol.ended_by == "quiet":
        patrol.ended_at = patrol.last_activity_at
    db.session.flush()
    if patrol.ended_at is not None:
        _settle_hours(patrol, cfg)


def _settle_hours(patrol: Patrol, cfg: Config) -> None:
    assert patrol.ended_at is not None      # only an ended patrol gives hours
    for member in db.session.execute(       # as committed: a join may have just moved
            db.select(PatrolMember).where(PatrolMember.patrol_id == patrol.id)
            .execution_options(populate_existing=True)).scalars():
        member.minutes = rules.served_minutes(member.joined_at, patrol.ended_at, cfg.hours)


def close_quiet(now: datetime, cfg: Config | None = None, *, compound_id: int | None = None) -> int:
    """End the patrols that have been quiet for PATROL_QUIET, at their last activity."""
    cfg = cfg or config()
    query = db.select(Patrol).where(Patrol.ended_at.is_(None),
                                    Patrol.last_activity_at < now - cfg.quiet)
    if compound_id is not None:
        query = query.where(Patrol.compound_id == compound_id)
    closed = 0
    for patrol in db.session.execute(query).scalars():
        patrol.ended_at, patrol.ended_by = patrol.last_activity_at, "quiet"
        _settle_hours(patrol, cfg)
        closed += 1
    db.session.flush()
    return closed


def start(user, compound: Compound, at: datetime, *, client_uuid: str | None = None,
          cfg: Config | None = None) -> tuple[Patrol, bool]:
    """开始巡查: join the team's patrol under way here, or start one. (patrol, started).

    A resend of an offline start (same client_uuid) answers with the same patrol."""
    cfg = cfg or config()
    if not permissions.can_record_presence(user, compound) or compound.archived_at:
        raise TransitionError("forbidden_object", "cannot patrol this compound")
    # Two starts here at the same moment (two of the team, or one offline start sent
    # twice) are taken one after the other: the second joins, or finds its resend.
    row_locks.hold(Compound.id, compound.id)
    if client_uuid:
        again = db.session.execute(
            db.select(Patrol).where(Patrol.client_uuid == client_uuid)).scalar_one_or_none()
        if again is not None:
            if again.compound_id != compound.id or _member(again, user) is None:
                raise TransitionError("conflict", "client key used for another patrol")
            return again, False
    # A teammate's start made a moment after this tap (it took the lock first) is the
    # same walk: joined, and it starts at the earlier tap.
    under_way = joinable(user, compound.id, at, cfg.quiet) or \
        joinable(user, compound.id, at + SAME_START, cfg.quiet)
    if under_way is not None:
        under_way.started_at = min(under_way.started_at, at)
        _touch(under_way, user, at, cfg)
        return under_way, False
    patrol = Patrol(compound_id=compound.id, team_id=user.team_id, started_by_id=user.id,
                    started_at=at, last_activity_at=at, client_uuid=client_uuid)
    db.session.add(patrol)
    db.session.flush()
    _touch(patrol, user, at, cfg)
    return patrol, True


def on_scan(user, compound: Compound, presence: Presence, cfg: Config | None = None
            ) -> Patrol | None:
    """A gate scan joins the team's patrol under way here; with PATROL_AUTO_START it
    starts one when none is. The scan is linked to the patrol."""
    cfg = cfg or config()
    at = presence.device_at or presence.at
    row_locks.hold(Compound.id, compound.id)     # as start(): one joins after the other
    patrol = joinable(user, compound.id, at, cfg.quiet)
    if patrol is None and cfg.auto_start:
        patrol, _ = start(user, compound, at, cfg=cfg)
    if patrol is None:
        return None
    _touch(patrol, user, at, cfg)
    presence.patrol_id = patrol.id
    if presence.far:
        patrol.far_scans += 1
    db.session.flush()
    return patrol


def judge_presence(presence: Presence, compound: Compound, cfg: Config | None = None) -> None:
    """Compare a scan's location (when the phone gave one) with the compound's."""
    cfg = cfg or config()
    was_far = presence.far
    verdict = rules.presence_verdict(compound.lat, compound.lon, compound.radius_m,
                                     presence.lat, presence.lon, presence.accuracy, cfg.presence)
    presence.distance_m, presence.far = verdict.distance_m, verdict.far
    if verdict.far and not was_far and presence.patrol_id:
        patrol = db.session.get(Patrol, presence.patrol_id)
        if patrol is not None:
            patrol.far_scans += 1
    db.session.flush()


def scan_checkpoint(user, checkpoint: Checkpoint, now: datetime, *, device_at=None,
                    lat=None, lon=None, accuracy=None, client_uuid: str | None = None,
                    cfg: Config | None = None) -> tuple[CheckpointScan, bool]:
    """A checkpoint sticker scanned: it joins (or starts) the patrol here. (scan, created)."""
    cfg = cfg or config()
    compound = checkpoint.compound
    if checkpoint.archived_at is not None:
        raise TransitionError("bad_state", "checkpoint archived")
    row_locks.hold(Compound.id, compound.id)     # as start(): a resend finds the first
    if client_uuid:
        again = db.session.execute(db.select(CheckpointScan).where(
            CheckpointScan.client_uuid == client_uuid)).scalar_one_or_none()
        if again is not None:
            if again.checkpoint_id != checkpoint.id or again.user_id != user.id:
                raise TransitionError("conflict", "client key used for another scan")
            return again, False
    at = device_at or now
    patrol = member_patrol(user, compound.id, at, cfg.quiet)
    if patrol is None:
        patrol, _ = start(user, compound, at, cfg=cfg)
    else:
        _touch(patrol, user, at, cfg)
    verdict = rules.presence_verdict(compound.lat, compound.lon, compound.radius_m,
                                     lat, lon, accuracy, cfg.presence)
    scan = CheckpointScan(patrol_id=patrol.id, checkpoint_id=checkpoint.id, user_id=user.id,
                          at=now, device_at=device_at, lat=lat, lon=lon, accuracy=accuracy,
                          distance_m=verdict.distance_m, far=verdict.far,
                          client_uuid=client_uuid)
    db.session.add(scan)
    if verdict.far:
        patrol.far_scans += 1
    db.session.flush()
    return scan, True


def end(patrol: Patrol, user, at: datetime, *, summary: str, found_count: int | None = None,
        cfg: Config | None = None) -> Patrol:
    """结束巡查 with its one-tap summary. Ending twice (a resend) changes nothing."""
    cfg = cfg or config()
    if _member(patrol, user) is None:
        raise TransitionError("forbidden_object", "not on this patrol")
    if summary not in SUMMARIES:
        raise TransitionError("missing_evidence", "summary")
    # Held as start() and the scans hold it, and read again: a teammate joining or a
    # report made at this moment comes before (settled and counted here) or after.
    row_locks.hold(Compound.id, patrol.compound_id)
    db.session.refresh(patrol)
    if patrol.ended_by == "tapped":
        return patrol
    at = max(at, patrol.last_activity_at)
    patrol.ended_at, patrol.ended_by = at, "tapped"
    patrol.last_activity_at = at
    patrol.summary = summary
    if summary == "found":
        patrol.found_count = found_count if found_count is not None else items_found(patrol)
    _settle_hours(patrol, cfg)
    db.session.flush()
    return patrol


# --- what was done on a patrol ------------------------------------------------------------

def on_event(actor, item: Item, at: datetime, presence: Presence | None,
             cfg: Config | None = None, *, new_item: bool = False) -> int | None:
    """A report, check or supporting report is about to be recorded at `at`: the patrol
    it belongs to (the actor's, under way here then), which it keeps going. A far scan
    behind it marks the item 位置不符. Called before the history row is written, since
    history is append-only. A new item (`new_item`) made during a patrol that has been
    ended since (sent later from the phone's outbox) counts among what it found."""
    cfg = cfg or config()
    if presence is not None and presence.far:
        item.location_mismatch = True
    patrol = member_patrol(actor, item.compound_id, at, cfg.quiet)
    if patrol is None:
        return None
    _touch(patrol, actor, at, cfg)
    if new_item and patrol.ended_by == "tapped":
        at_least = items_found(patrol) + 1          # this one is not written yet
        if (patrol.found_count or 0) < at_least:
            patrol.summary, patrol.found_count = "found", at_least
    return patrol.id


def judge_report(item: Item, compound: Compound, lat: float | None, lon: float | None,
                 cfg: Config | None = None) -> None:
    """A report sent with the phone's location far outside the compound: 位置不符."""
    cfg = cfg or config()
    if rules.presence_verdict(compound.lat, compound.lon, compound.radius_m, lat, lon, None,
                              cfg.presence).far:
        item.location_mismatch = True


def items_found(patrol: Patrol) -> int:
    """Items reported on the patrol (supporting reports are not new problems)."""
    return db.session.execute(
        db.select(db.func.count()).select_from(ItemEvent)
        .where(ItemEvent.patrol_id == patrol.id, ItemEvent.action == "report")).scalar_one()


def checks_done(patrol: Patrol) -> int:
    return db.session.execute(
        db.select(db.func.count()).select_from(ItemEvent)
        .where(ItemEvent.patrol_id == patrol.id,
               ItemEvent.action.in_(("verify", "reopen")))).scalar_one()


def checkpoints_of(compound_id: int) -> list[Checkpoint]:
    return list(db.session.execute(
        db.select(Checkpoint).where(Checkpoint.compound_id == compound_id,
                                    Checkpoint.archived_at.is_(None))
        .order_by(Checkpoint.kind, Checkpoint.name, Checkpoint.id)).scalars())


def scanned_checkpoint_ids(patrol: Patrol) -> set[int]:
    return set(db.session.execute(
        db.select(CheckpointScan.checkpoint_id).where(CheckpointScan.patrol_id == patrol.id)
    ).scalars())


# --- for the pages (web/patrols.py, web/compounds.py) -------------------------------------

def under_way(user, compound_id: int, now: datetime, cfg: Config | None = None
              ) -> Patrol | None:
    """The user's patrol in this compound that has not been ended by a tap."""
    cfg = cfg or config()
    patrol = member_patrol(user, compound_id, now, cfg.quiet)
    return patrol if patrol is not None and patrol.ended_by != "tapped" else None


def judge_checkpoint_scan(scan: CheckpointScan, lat: float, lon: float,
                          accuracy: float | None, cfg: Config | None = None) -> None:
    """The page adds the phone's location to a checkpoint scan made online (the QR link
    itself carries none), as it does for a gate scan."""
    cfg = cfg or config()
    compound = scan.checkpoint.compound
    verdict = rules.presence_verdict(compound.lat, compound.lon, compound.radius_m,
                                     lat, lon, accuracy, cfg.presence)
    was_far = scan.far
    scan.lat, scan.lon, scan.accuracy = lat, lon, accuracy
    scan.distance_m, scan.far = verdict.distance_m, verdict.far
    if verdict.far and not was_far:
        scan.patrol.far_scans += 1
    db.session.flush()
