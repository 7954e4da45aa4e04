"""Schedules and coverage (巡查计划与覆盖): how often each team must walk each compound (or
one checkpoint of it), what was done against it this week and month, what was missed,
and the reminder the day before a period ends with a patrol still due.

The rules (periods, met / due / missed, the reminder day) are patrol/patrols.py's;
this counts patrols in the database and applies them.

Counting. A patrol counts for a schedule when it is the schedule's team's, in the
schedule's compound, and *started* within the local period (Monday 00:00 to the next
Monday 00:00 in TIMEZONE, or the calendar month). A checkpoint schedule counts the team's
patrols that scanned that checkpoint. A schedule applies from the period in which it was
set (in full), never to earlier ones. A compound without any schedule is "no schedule",
never missed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func

from .. import patrols as rules
from ..clock import local_date, utc_at
from .. import permissions
from ..extensions import db
from ..models import (Checkpoint, CheckpointScan, Community, Compound, NotifyEndpoint, Patrol,
                      PatrolSchedule, Team)
from ..models.patrols import SCHEDULE_PERIODS
from . import audit
from . import notify as notify_service

UTC = ZoneInfo("UTC")
MAX_TIMES = 31            # at most this many patrols per period in a schedule
REMINDER_EVENT = "patrol_due"


@dataclass
class Row:
    """One schedule in one period: patrols done against those due."""
    compound_id: int
    compound_name: str
    team_id: int
    team_name: str
    checkpoint_id: int | None
    checkpoint_name: str | None
    period: rules.Period
    due: int
    done: int
    last_patrol_at: datetime | None     # naive UTC: the team's last patrol here (so far)
    state: str                          # 'met' | 'due' | 'missed'
    schedule_id: int | None = None
    community_id: int | None = None

    @property
    def missing(self) -> int:
        return max(self.due - self.done, 0)


def local_bounds(period: rules.Period, tz: str) -> tuple[datetime, datetime]:
    """A local period as stored times (naive UTC): [first 00:00, end 00:00)."""
    return utc_at(period.first, time.min, tz), utc_at(period.end, time.min, tz)


def _compound_condition(compounds_condition_or_ids):
    if isinstance(compounds_condition_or_ids, (list, tuple, set, frozenset)):
        return Compound.id.in_(list(compounds_condition_or_ids))
    return compounds_condition_or_ids


def _done(schedules: list[PatrolSchedule], start: datetime, end: datetime
          ) -> tuple[dict, dict]:
    """Patrols started in [start, end): per (team, compound), and per (team, checkpoint)
    the distinct patrols that scanned it. Two grouped queries for any number of schedules."""
    if not schedules:
        return {}, {}
    compound_ids = sorted({s.compound_id for s in schedules})
    by_compound = dict(((t, c), n) for t, c, n in db.session.execute(
        db.select(Patrol.team_id, Patrol.compound_id, func.count(Patrol.id))
        .where(Patrol.compound_id.in_(compound_ids), Patrol.team_id.is_not(None),
               Patrol.started_at >= start, Patrol.started_at < end)
        .group_by(Patrol.team_id, Patrol.compound_id)))
    checkpoint_ids = sorted({s.checkpoint_id for s in schedules if s.checkpoint_id})
    by_checkpoint: dict = {}
    if checkpoint_ids:
        by_checkpoint = dict(((t, k), n) for t, k, n in db.session.execute(
            db.select(Patrol.team_id, CheckpointScan.checkpoint_id,
                      func.count(func.distinct(Patrol.id)))
            .join(CheckpointScan, CheckpointScan.patrol_id == Patrol.id)
            .where(CheckpointScan.checkpoint_id.in_(checkpoint_ids),
                   Patrol.team_id.is_not(None),
                   Patrol.started_at >= start, Patrol.started_at < end)
            .group_by(Patrol.team_id, CheckpointScan.checkpoint_id)))
    return by_compound, by_checkpoint


def _last(schedules: list[PatrolSchedule], now: datetime) -> tuple[dict, dict]:
    """The team's last patrol in each compound (and the last that scanned each checkpoint)
    that started by `now`."""
    if not schedules:
        return {}, {}
    compound_ids = sorted({s.compound_id for s in schedules})
    by_compound = dict(((t, c), at) for t, c, at in db.session.execute(
        db.select(Patrol.team_id, Patrol.compound_id, func.max(Patrol.started_at))
        .where(Patrol.compound_id.in_(compound_ids), Patrol.team_id.is_not(None),
               Patrol.started_at <= now)
        .group_by(Patrol.team_id, Patrol.compound_id)))
    checkpoint_ids = sorted({s.checkpoint_id for s in schedules if s.checkpoint_id})
    by_checkpoint: dict = {}
    if checkpoint_ids:
        by_checkpoint = dict(((t, k), at) for t, k, at in db.session.execute(
            db.select(Patrol.team_id, CheckpointScan.checkpoint_id, func.max(Patrol.started_at))
            .join(CheckpointScan, CheckpointScan.patrol_id == Patrol.id)
            .where(CheckpointScan.checkpoint_id.in_(checkpoint_ids),
                   Patrol.team_id.is_not(None), Patrol.started_at <= now)
            .group_by(Patrol.team_id, CheckpointScan.checkpoint_id)))
    return by_compound, by_checkpoint


def schedules_of(compounds_condition_or_ids, period_kind: str | None = None
                 ) -> list[PatrolSchedule]:
    """The schedules of these compounds (not archived), by compound, team, checkpoint."""
    query = (db.select(PatrolSchedule).join(Compound, PatrolSchedule.compound_id == Compound.id)
             .join(Team, PatrolSchedule.team_id == Team.id)
             .outerjoin(Checkpoint, PatrolSchedule.checkpoint_id == Checkpoint.id)
             .where(_compound_condition(compounds_condition_or_ids),
                    Compound.archived_at.is_(None), Checkpoint.archived_at.is_(None))
             .order_by(Compound.name, Compound.id, Team.name, Team.id,
                       PatrolSchedule.checkpoint_id.is_not(None), Checkpoint.name,
                       PatrolSchedule.id))
    if period_kind is not None:
        query = query.where(PatrolSchedule.period == period_kind)
    return list(db.session.execute(query).scalars())


def rows(compounds_condition_or_ids, period_kind: str, today: date, tz: str, *,
         now: datetime, as_of: date | None = None) -> list[Row]:
    """Every `period_kind` ('week' | 'month') schedule of these compounds (a SQL condition
    on Compound, or a list of compound ids) in the period containing the local day
    `today`: done against due, the team's last patrol there by `now`, and the state as
    of `now` ('met', 'due' while there is still time, 'missed' once the period is over),
    so a past period's rows say whether it was missed (`as_of`: judged on that local day
    instead)."""
    if period_kind not in SCHEDULE_PERIODS:
        raise ValueError(f"not a schedule period: {period_kind!r}")
    period = rules.period_of(period_kind, today)
    start, end = local_bounds(period, tz)
    # A schedule set during a period counts for it, never for the periods before.
    schedules = [s for s in schedules_of(compounds_condition_or_ids, period_kind)
                 if s.created_at < end]
    done_c, done_k = _done(schedules, start, end)
    last_c, last_k = _last(schedules, now)
    judged = as_of or max(today, local_date(now, tz))
    out = []
    for s in schedules:
        if s.checkpoint_id:
            key = (s.team_id, s.checkpoint_id)
            done, last = done_k.get(key, 0), last_k.get(key)
        else:
            key = (s.team_id, s.compound_id)
            done, last = done_c.get(key, 0), last_c.get(key)
        state = rules.coverage(done, s.times, period, judged).state
        out.append(Row(compound_id=s.compound_id, compound_name=s.compound.name,
                       team_id=s.team_id, team_name=s.team.name,
                       checkpoint_id=s.checkpoint_id,
                       checkpoint_name=s.checkpoint.name if s.checkpoint else None,
                       period=period, due=s.times, done=done, last_patrol_at=last,
                       state=state, schedule_id=s.id,
                       community_id=s.compound.community_id))
    return out


def last_ended(kind: str, today: date) -> rules.Period:
    """The last period of this kind that is over by the local day `today`."""
    return rules.period_of(kind, rules.period_of(kind, today).first - timedelta(days=1))


def missed_rows(compounds_condition_or_ids, today: date, tz: str, *, now: datetime) -> list[Row]:
    """The schedules short in the last ended week (week schedules) and the last ended
    month (month schedules): the compounds missed past their schedule."""
    out = []
    for kind in SCHEDULE_PERIODS:
        ended = last_ended(kind, today)
        out += [r for r in rows(compounds_condition_or_ids, kind, ended.first, tz, now=now,
                                as_of=today) if r.state == "missed"]
    return out


# --- the board ------------------------------------------------------------------------------

@dataclass
class CompoundLine:
    compound_id: int
    name: str
    community_name: str
    week: list[Row] = field(default_factory=list)
    month: list[Row] = field(default_factory=list)
    last_patrol_at: datetime | None = None      # any team's

    @property
    def scheduled(self) -> bool:
        return bool(self.week or self.month)

    @property
    def state(self) -> str:
        """The compound's worst: 'missed' > 'due' > 'met'; 'none' without a schedule."""
        states = {r.state for r in self.week + self.month}
        for s in ("missed", "due", "met"):
            if s in states:
                return s
        return "none"


@dataclass
class Board:
    scope: str                  # 'community' | 'street'
    name: str
    today: date
    week: rules.Period
    month: rules.Period
    last_week: rules.Period
    last_month: rules.Period
    compounds: list[CompoundLine]
    missed: list[Row]           # the last ended week's and month's

    def count(self, kind: str, state: str) -> int:
        return sum(1 for c in self.compounds for r in getattr(c, kind) if r.state == state)

    @property
    def unscheduled(self) -> int:
        return sum(1 for c in self.compounds if not c.scheduled)


def board(user, scope: str, target, today: date, tz: str, now: datetime) -> Board:
    """The coverage board of a community or a street (`target`), as far as `user` may see:
    every compound with this week's and this month's rows, and the rows missed in the
    last ended week and month. The caller checks that the user may see `target`."""
    if scope == "community":
        community_ids = [target.id]
    elif scope == "street":
        community_ids = [c.id for c in target.communities]
    else:
        raise ValueError(scope)
    cond = db.and_(Compound.community_id.in_(community_ids), Compound.archived_at.is_(None),
                   permissions.compound_filter(user, Compound))
    compounds = list(db.session.execute(
        db.select(Compound, Community.name).join(Community, Compound.community_id == Community.id)
        .where(cond).order_by(Community.name, Compound.name, Compound.id)))
    lines = {c.id: CompoundLine(c.id, c.name, community_name) for c, community_name in compounds}
    ids = list(lines)
    for kind in SCHEDULE_PERIODS:
        for row in rows(ids, kind, today, tz, now=now):
            getattr(lines[row.compound_id], kind).append(row)
    if ids:
        for compound_id, at in db.session.execute(
                db.select(Patrol.compound_id, func.max(Patrol.started_at))
                .where(Patrol.compound_id.in_(ids), Patrol.started_at <= now)
                .group_by(Patrol.compound_id)):
            lines[compound_id].last_patrol_at = at
    return Board(scope=scope, name=target.name, today=today,
                 week=rules.week_of(today), month=rules.month_of(today),
                 last_week=last_ended("week", today), last_month=last_ended("month", today),
                 compounds=list(lines.values()),
                 missed=missed_rows(ids, today, tz, now=now) if ids else [])


# --- schedules: staff set and delete them ----------------------------------------------------

class ScheduleInvalid(Exception):
    """Nothing was saved; `errors` maps form fields to codes: team "team", compound
    "compound", checkpoint "checkpoint", period "period", times "times"."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def can_manage_schedule(user, schedule: PatrolSchedule) -> bool:
    return permissions.can_manage_compound(user, schedule.compound)


def _fields(s: PatrolSchedule) -> dict:
    return {"team_id": s.team_id, "compound_id": s.compound_id,
            "checkpoint_id": s.checkpoint_id, "period": s.period, "times": s.times}


def set_schedule(actor, *, team: Team | None, compound: Compound | None,
                 checkpoint: Checkpoint | None, period: str, times, now: datetime
                 ) -> tuple[PatrolSchedule, bool]:
    """Set how often `team` walks `compound` (or one checkpoint of it): a new schedule,
    or the new period and number on the existing one for the same target. The caller
    loaded team, compound and checkpoint among those the actor manages; this checks they
    fit together. (schedule, created); audited."""
    errors = {}
    if compound is None or compound.archived_at is not None \
            or not permissions.can_manage_compound(actor, compound):
        errors["compound"] = "compound"
    if team is None or not permissions.can_manage_community(actor, team.community_id) \
            or (compound is not None and team.community_id != compound.community_id):
        errors["team"] = "team"
    if checkpoint is not None and (compound is None or checkpoint.compound_id != compound.id
                                   or checkpoint.archived_at is not None):
        errors["checkpoint"] = "checkpoint"
    if period not in SCHEDULE_PERIODS:
        errors["period"] = "period"
    try:
        times = int(times)
    except (TypeError, ValueError):
        times = 0
    if not 1 <= times <= MAX_TIMES:
        errors["times"] = "times"
    if errors:
        raise ScheduleInvalid(errors)
    assert team is not None and compound is not None
    checkpoint_id = checkpoint.id if checkpoint is not None else None
    existing = db.session.execute(db.select(PatrolSchedule).where(
        PatrolSchedule.team_id == team.id, PatrolSchedule.compound_id == compound.id,
        PatrolSchedule.checkpoint_id.is_(None) if checkpoint_id is None
        else PatrolSchedule.checkpoint_id == checkpoint_id)).scalar_one_or_none()
    if existing is not None:
        before, after = audit.changes(existing, ("period", "times"),
                                      {"period": period, "times": times})
        if before:
            audit.record(actor, "patrol_schedule.update", existing, before, after, now)
        db.session.flush()
        return existing, False
    schedule = PatrolSchedule(team_id=team.id, compound_id=compound.id,
                              checkpoint_id=checkpoint_id, period=period, times=times,
                              created_at=now)
    schedule.compound = compound
    db.session.add(schedule)
    db.session.flush()
    audit.record(actor, "patrol_schedule.create", schedule, None, _fields(schedule), now)
    return schedule, True


def delete_schedule(actor, schedule: PatrolSchedule, now: datetime) -> None:
    audit.record(actor, "patrol_schedule.delete", schedule, _fields(schedule), None, now)
    db.session.delete(schedule)
    db.session.flush()


def managed_schedules(user, community_id: int) -> list[PatrolSchedule]:
    return [s for s in schedules_of(Compound.community_id == community_id)
            if can_manage_schedule(user, s)]


# --- the reminder ----------------------------------------------------------------------------

def _period_name(period: rules.Period) -> str:
    if period.kind == "week":
        return _("this week (%(first)s to %(last)s)", first=period.first.strftime("%m-%d"),
                 last=period.last.strftime("%m-%d"))
    return _("this month (%(month)s)", month=period.first.strftime("%Y-%m"))


def reminder_payload(team: Team, compound_name: str, due_rows: list[Row], now: datetime,
                     tz: str) -> dict:
    """The reminder for a team's receiver, in the default language (zh)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    period = due_rows[0].period
    with notify_service._zh():
        lines = [_("Compound: %(name)s", name=compound_name)]
        for r in due_rows:
            what = r.checkpoint_name or _("the whole compound")
            lines.append(_("%(what)s: %(done)s of %(due)s patrols done, %(missing)s still due",
                           what=what, done=r.done, due=r.due, missing=r.missing))
        lines.append(_("The period ends %(day)s.", day=period.last.strftime("%Y-%m-%d")))
        return {
            "event": REMINDER_EVENT,
            "title": _("[Patrol] %(team)s: a patrol is still due %(period)s",
                       team=team.name, period=_period_name(period)),
            "lines": lines,
            "url": f"{base}/compounds/{due_rows[0].compound_id}",
            "link_text": _("Open the compound"),
            "at": notify_service._iso(now),
            "team": team.name, "compound": compound_name,
            "period": {"kind": period.kind, "first": period.first.isoformat(),
                       "last": period.last.isoformat()},
            "due": [{"checkpoint": r.checkpoint_name, "done": r.done, "due": r.due}
                    for r in due_rows],
        }


@dataclass
class ReminderRun:
    day: date
    closed: int = 0          # quiet patrols closed
    due: int = 0             # team × compound × period with a patrol still due today
    queued: int = 0          # notifications queued (0 when run again)


def remind(now: datetime) -> ReminderRun:
    """The daily run (`patrol patrols-remind`): close quiet patrols, then queue one
    reminder per team, compound and period still short on the day before the period's
    last day, for the team's receivers that take them. Once only: the dedupe key is
    the team, compound and period. The caller commits."""
    from . import patrols as patrol_service
    tz = current_app.config["TIMEZONE"]
    today = local_date(now, tz)
    run = ReminderRun(day=today, closed=patrol_service.close_quiet(now))
    has_receivers = db.session.execute(db.select(NotifyEndpoint.id).where(
        NotifyEndpoint.active.is_(True), NotifyEndpoint.team_id.is_not(None)).limit(1)).first()
    for kind in SCHEDULE_PERIODS:
        period = rules.period_of(kind, today)
        if not rules.reminder_due(period, today, 0, 1):
            continue                     # not the reminder day of this kind of period
        short = [r for r in rows(Compound.id.is_not(None), kind, today, tz, now=now)
                 if rules.reminder_due(period, today, r.done, r.due)]
        grouped: dict[tuple[int, int], list[Row]] = defaultdict(list)
        for r in short:
            grouped[(r.team_id, r.compound_id)].append(r)
        run.due += len(grouped)
        if not has_receivers:
            continue
        for (team_id, compound_id), due_rows in grouped.items():
            endpoints = notify_service.endpoints_for(REMINDER_EVENT, team_ids=[team_id])
            if not endpoints:
                continue
            team = db.session.get(Team, team_id)
            assert team is not None
            payload = reminder_payload(team, due_rows[0].compound_name, due_rows, now, tz)
            key = f"{REMINDER_EVENT}:{team_id}:{compound_id}:{kind}:{period.first.isoformat()}"
            run.queued += sum(1 for e in endpoints if notify_service.enqueue(
                e, REMINDER_EVENT, payload, now=now, dedupe_key=key, kick=False) is not None)
    return run

