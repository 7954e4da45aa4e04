"""Volunteer service hours (志愿服务时长): per volunteer and period, from the patrols they
were on; the sheet staff hand in; staff corrections.

The rule (patrol/patrols.py, docs/patrols.md): a member's time on a patrol runs from
joining it to the patrol's end (a quiet patrol ends at its last activity), capped at
PATROL_HOURS_CAP_MINUTES and rounded to the nearest PATROL_HOURS_ROUND_MINUTES. It is
set when the patrol ends (PatrolMember.minutes); a staff correction
(PatrolMember.corrected_minutes, audited) counts instead. A patrol counts in the period
it *started*, and only once it has ended (call patrols.close_quiet(now) first, so quiet
patrols are settled).

"Volunteers of these communities" are accounts with the volunteer role whose community
is one of them.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func

from .. import patrols as rules
from ..xlsx import Sheet, write as write_xlsx
from ..clock import local_date
from ..extensions import db
from ..ledger import neutralise
from ..lifecycle import Role
from ..models import Compound, ItemEvent, Patrol, PatrolMember, Team, User
from . import audit, row_locks

UTC = ZoneInfo("UTC")
MAX_CORRECTED_MINUTES = 24 * 60
REASON_MAX = 200
COLUMNS = ("姓名", "手机号", "服务日期", "服务时长", "服务内容", "服务地点")
CHECK_ACTIONS = ("verify", "reopen")


@dataclass
class VolunteerTotal:
    user_id: int
    name: str
    phone: str | None
    patrols: int
    minutes: int
    items_found: int        # the volunteer's own reports on those patrols
    checks_done: int        # the volunteer's own on-the-spot checks on those patrols

    @property
    def hours(self) -> float:
        return rules.hours(self.minutes)


@dataclass
class Entry:
    """One volunteer on one patrol: a row of the service-hours sheet."""
    patrol_id: int
    user_id: int
    name: str
    phone: str | None
    started_at: datetime        # naive UTC
    ended_at: datetime | None
    compound_id: int
    compound_name: str
    team_name: str | None
    minutes: int                # what counts: the correction, else the rule's
    rule_minutes: int | None
    corrected: bool
    items_found: int            # reported on the patrol, by anyone on it
    summary: str | None
    ended_by: str | None

    @property
    def hours(self) -> float:
        return rules.hours(self.minutes)

    def content(self) -> str:
        """服务内容: 小区巡查（发现问题2条） / 小区巡查（未发现问题）."""
        if self.items_found:
            return f"小区巡查（发现问题{self.items_found}条）"
        return "小区巡查（未发现问题）"


def _in_period(start: datetime, end: datetime):
    return db.and_(Patrol.started_at >= start, Patrol.started_at < end,
                   Patrol.ended_at.is_not(None))


def volunteers_of(community_ids: list[int]):
    return db.and_(User.role == Role.VOLUNTEER.value, User.community_id.in_(list(community_ids)))


def _served():
    return func.coalesce(PatrolMember.corrected_minutes, PatrolMember.minutes, 0)


def _own_events(who, start: datetime, end: datetime, actions) -> dict[int, int]:
    """Per user: their own events of `actions` on patrols they were on, started in the period."""
    return dict(db.session.execute(
        db.select(ItemEvent.actor_id, func.count(ItemEvent.id))
        .join(PatrolMember, db.and_(PatrolMember.patrol_id == ItemEvent.patrol_id,
                                    PatrolMember.user_id == ItemEvent.actor_id))
        .join(Patrol, Patrol.id == PatrolMember.patrol_id)
        .join(User, User.id == PatrolMember.user_id)
        .where(who, _in_period(start, end), ItemEvent.action.in_(actions))
        .group_by(ItemEvent.actor_id)).all())


def _totals(who, start: datetime, end: datetime) -> list[VolunteerTotal]:
    found = _own_events(who, start, end, ("report",))
    checks = _own_events(who, start, end, CHECK_ACTIONS)
    out = []
    for user_id, name, phone, patrols, minutes in db.session.execute(
            db.select(User.id, User.display_name, User.phone, func.count(PatrolMember.patrol_id),
                      func.sum(_served()))
            .join(PatrolMember, PatrolMember.user_id == User.id)
            .join(Patrol, Patrol.id == PatrolMember.patrol_id)
            .where(who, _in_period(start, end))
            .group_by(User.id, User.display_name, User.phone)
            .order_by(User.display_name, User.id)):
        out.append(VolunteerTotal(user_id=user_id, name=name, phone=phone, patrols=patrols,
                                  minutes=int(minutes or 0), items_found=found.get(user_id, 0),
                                  checks_done=checks.get(user_id, 0)))
    out.sort(key=lambda t: (t.name, t.user_id))     # the same order on every engine
    return out


def totals(community_ids: list[int], start: datetime, end: datetime) -> list[VolunteerTotal]:
    """Per volunteer of these communities with a patrol started in [start, end) (naive
    UTC) and ended: patrols, minutes served, items found and checks done, by name."""
    if not community_ids:
        return []
    return _totals(volunteers_of(community_ids), start, end)


def user_total(user_id: int, start: datetime, end: datetime) -> VolunteerTotal | None:
    """One person's own (the /me/hours page): whatever their community."""
    found = _totals(User.id == user_id, start, end)
    return found[0] if found else None


def _entries(who, start: datetime, end: datetime) -> list[Entry]:
    rows = db.session.execute(
        db.select(PatrolMember, User.display_name, User.phone, Patrol, Compound.name, Team.name)
        .join(User, User.id == PatrolMember.user_id)
        .join(Patrol, Patrol.id == PatrolMember.patrol_id)
        .join(Compound, Compound.id == Patrol.compound_id)
        .outerjoin(Team, Team.id == Patrol.team_id)
        .where(who, _in_period(start, end))
        .order_by(User.display_name, User.id, Patrol.started_at, Patrol.id)).all()
    patrol_ids = sorted({p.id for _m, _n, _ph, p, _c, _t in rows})
    found: dict[int, int] = {}
    if patrol_ids:
        found = dict(db.session.execute(
            db.select(ItemEvent.patrol_id, func.count(ItemEvent.id))
            .where(ItemEvent.patrol_id.in_(patrol_ids), ItemEvent.action == "report")
            .group_by(ItemEvent.patrol_id)).all())
    out = [Entry(patrol_id=p.id, user_id=m.user_id, name=name, phone=phone,
                 started_at=p.started_at, ended_at=p.ended_at, compound_id=p.compound_id,
                 compound_name=compound, team_name=team, minutes=m.served_minutes,
                 rule_minutes=m.minutes, corrected=m.corrected_minutes is not None,
                 items_found=found.get(p.id, 0), summary=p.summary, ended_by=p.ended_by)
           for m, name, phone, p, compound, team in rows]
    out.sort(key=lambda e: (e.name, e.user_id, e.started_at, e.patrol_id))
    return out


def entries(community_ids: list[int], start: datetime, end: datetime, *,
            user_id: int | None = None) -> list[Entry]:
    """One row per volunteer per patrol (of these communities' volunteers, or of one of
    them), for patrols started in [start, end) and ended; by name, then time."""
    if not community_ids:
        return []
    who = volunteers_of(community_ids)
    if user_id is not None:
        who = db.and_(who, User.id == user_id)
    return _entries(who, start, end)


def user_entries(user_id: int, start: datetime, end: datetime) -> list[Entry]:
    return _entries(User.id == user_id, start, end)


# --- corrections --------------------------------------------------------------------------

class CorrectionInvalid(Exception):
    """`errors`: hours "hours", reason "reason", the patrol "not_ended"."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_hours(text) -> int | None:
    """"1.5" (hours, as staff think of them) → 90 minutes; None if not a number in range."""
    try:
        value = float(str(text).strip().replace("，", ".").replace(",", "."))
    except (TypeError, ValueError):
        return None
    if value != value or value < 0:          # NaN, negative
        return None
    minutes = round(value * 60)
    return minutes if minutes <= MAX_CORRECTED_MINUTES else None


def correct(actor, member: PatrolMember, minutes: int | None, reason: str, now: datetime
            ) -> PatrolMember:
    """A staff correction of one volunteer's time on one patrol, with the reason; the
    audit log keeps the before and after. The caller checked the actor may
    (permissions.can_manage_volunteer on member.user) and commits."""
    reason = (reason or "").strip()
    errors = {}
    if member.patrol.ended_at is None:
        errors["hours"] = "not_ended"
    elif minutes is None:
        errors["hours"] = "hours"
    if not reason or len(reason) > REASON_MAX:
        errors["reason"] = "reason"
    if errors:
        raise CorrectionInvalid(errors)
    # Held and read again: of two corrections at once, the second's "before" is the first.
    row_locks.hold(Patrol.id, member.patrol_id)
    db.session.refresh(member)
    before = {"user_id": member.user_id, "patrol_id": member.patrol_id,
              "minutes": member.minutes, "corrected_minutes": member.corrected_minutes,
              "served_minutes": member.served_minutes}
    member.corrected_minutes = minutes
    after = {"user_id": member.user_id, "patrol_id": member.patrol_id,
             "minutes": member.minutes, "corrected_minutes": minutes,
             "served_minutes": member.served_minutes, "reason": reason}
    audit.record(actor, "patrol_hours.correct", member.patrol, before, after, now,
                 community_id=member.user.community_id)
    db.session.flush()
    return member


# --- the sheet ----------------------------------------------------------------------------

def xlsx(rows: list[Entry], tz: str, notes: list[str]):
    """The service-hours sheet (服务时长) as an XLSX in a temporary file (rewound): the
    header row first, in the columns volunteer-hour records use, one row per volunteer
    per patrol (date in local time, hours as a number), and a total row; a second sheet
    says what it covers and the rule."""
    body = []
    for e in rows:
        local = local_date(e.started_at, tz)
        # The phone is digits, +, - and spaces (checked when saved), and an XLSX text cell
        # is never a formula: no apostrophe in front of +86….
        body.append((neutralise(e.name), e.phone or "",
                     datetime(local.year, local.month, local.day), e.hours, e.content(),
                     neutralise(e.compound_name)))
    total_minutes = sum(e.minutes for e in rows)
    out = tempfile.TemporaryFile(suffix=".xlsx")
    write_xlsx(out, [
        Sheet("服务时长", COLUMNS, body, widths=(12, 14, 12, 10, 28, 20),
                   formats=("", "", "yyyy-mm-dd", "0.00"),
                   footer=("合计", None, None, rules.hours(total_minutes), f"{len(rows)}条记录", None)),
        Sheet("说明", ("说明",), [(neutralise(line),) for line in notes], widths=(90,),
                   table=False),
    ])
    out.seek(0)
    return out
