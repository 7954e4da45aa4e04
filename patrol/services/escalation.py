"""Escalations and the day's reminders, as SQL over the same rules as lifecycle.py.

An item is escalated when it is overdue (lifecycle.is_overdue) or was reported and
not acknowledged within ACK_ESCALATE (lifecycle.is_ack_late). Nothing is stored:
both are derived from status, created_at and deadline at the moment of asking.

Three more groups go to staff (the seed's chain around the fix):
- lookback_late: fixed, and the fix has waited longer than LOOKBACK_ESCALATE for its
  on-the-spot check (回头看): the loop is stalling (`is_lookback_late`);
- flagged: open and flagged by the owners' committee (督办);
- disputed: open and its responsible party disputes it, until staff decide.

And one group that is not items: patrols missed (漏巡), the schedules short in the last
ended week or month (services/coverage.py, `patrols_missed`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, or_

from ..clock import local_date
from .. import lifecycle
from ..extensions import db
from ..lifecycle import OPEN, OWED, Status
from ..models import Community, Company, Item
from . import notify as notify_service

OWED_VALUES = [s.value for s in OWED]
OPEN_VALUES = [s.value for s in OPEN]
# The groups staff follow up (the escalation list); due_soon is a reminder only.
STAFF_GROUPS = ("ack_late", "overdue", "lookback_late", "flagged", "disputed")
# Not the company's to act on: left out of a company's daily reminder.
NOT_FOR_COMPANIES = ("lookback_late",)


def overdue_cond(now: datetime):
    return and_(Item.status.in_(OWED_VALUES), Item.deadline < now)


def ack_late_cond(now: datetime, limit: timedelta):
    return and_(Item.status == Status.REPORTED.value, Item.created_at < now - limit)


def due_soon_cond(now: datetime, horizon: timedelta):
    return and_(Item.status.in_(OWED_VALUES), Item.deadline >= now, Item.deadline <= now + horizon)


def is_lookback_late(status, fixed_at: datetime | None, now: datetime,
                     limit: timedelta) -> bool:
    """A fix waiting longer than `limit` for its look-back (the pure rule of
    lookback_late_cond)."""
    return (Status(status) == Status.FIXED and fixed_at is not None
            and fixed_at < now - limit)


def lookback_late_cond(now: datetime, limit: timedelta):
    return and_(Item.status == Status.FIXED.value, Item.fixed_at.is_not(None),
                Item.fixed_at < now - limit)


def flagged_cond():
    return and_(Item.status.in_(OPEN_VALUES), Item.flagged_at.is_not(None))


def disputed_cond():
    return and_(Item.status.in_(OPEN_VALUES), Item.disputed_at.is_not(None))


def patrols_missed(compound_scope, now: datetime) -> list:
    """漏巡: the schedules of the compounds in `compound_scope` (a SQL condition on
    Compound) left short in the last ended week or month (coverage.Row, by compound)."""
    from . import coverage
    tz = current_app.config["TIMEZONE"]
    return coverage.missed_rows(compound_scope, local_date(now, tz), tz, now=now)


def lookback_limit() -> timedelta:
    return current_app.config["LOOKBACK_ESCALATE"]


def escalated_cond(now: datetime, limit: timedelta):
    return or_(overdue_cond(now), ack_late_cond(now, limit))


def reasons(item, now: datetime, limit: timedelta) -> list[str]:
    """Why an item is on the escalation list, by the pure rules."""
    out = []
    if lifecycle.is_ack_late(item.status, item.created_at, now, limit):
        out.append("ack_late")
    if lifecycle.is_overdue(item.status, item.deadline, now):
        out.append("overdue")
    if is_lookback_late(item.status, item.fixed_at, now, lookback_limit()):
        out.append("lookback_late")
    if Status(item.status).is_open and item.flagged_at is not None:
        out.append("flagged")
    if Status(item.status).is_open and item.disputed_at is not None:
        out.append("disputed")
    return out


def groups(scope, now: datetime, *, ack_limit: timedelta, horizon: timedelta,
           late_limit: timedelta | None = None) -> dict[str, list[Item]]:
    """overdue / ack_late / due_soon / lookback_late / flagged / disputed items within
    `scope` (an SQL condition), oldest first. `late_limit`: LOOKBACK_ESCALATE unless given."""
    late_limit = lookback_limit() if late_limit is None else late_limit
    out = {}
    for key, cond, order in (("overdue", overdue_cond(now), Item.deadline),
                             ("ack_late", ack_late_cond(now, ack_limit), Item.created_at),
                             ("due_soon", due_soon_cond(now, horizon), Item.deadline),
                             ("lookback_late", lookback_late_cond(now, late_limit),
                              Item.fixed_at),
                             ("flagged", flagged_cond(), Item.flagged_at),
                             ("disputed", disputed_cond(), Item.disputed_at)):
        out[key] = list(db.session.execute(
            db.select(Item).where(scope, cond).order_by(order, Item.id)
            .options(*Item.row_options(with_compound=True))).scalars())
    return out


@dataclass
class DailyRun:
    day: str
    communities: list = field(default_factory=list)   # (name, groups)
    companies: list = field(default_factory=list)     # (name, groups)
    queued: dict = field(default_factory=dict)
    delivered: dict = field(default_factory=dict)


def local_day(now: datetime) -> str:
    tz = ZoneInfo(current_app.config["TIMEZONE"])
    return now.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).strftime("%Y-%m-%d")


def run_daily(now: datetime, *, deliver: bool = True) -> DailyRun:
    """The day's reminders and escalations: figures per community (escalations) and per
    company (reminders), 'overdue' notifications for newly overdue items, one digest per
    endpoint that subscribes to 'daily' (skipped when it would be empty), then delivery.
    Safe to run more than once a day: every notification has a dedupe key."""
    cfg = current_app.config
    ack_limit, horizon = cfg["ACK_ESCALATE"], cfg["DUE_SOON"]
    run = DailyRun(day=local_day(now))
    for community in db.session.execute(db.select(Community).order_by(Community.name)).scalars():
        run.communities.append((community, groups(Item.community_id == community.id, now,
                                                  ack_limit=ack_limit, horizon=horizon)))
    for company in db.session.execute(db.select(Company).order_by(Company.name)).scalars():
        found = groups(Item.company_id == company.id, now, ack_limit=ack_limit,
                       horizon=horizon)
        for key in NOT_FOR_COMPANIES:       # the volunteers' to do, not the company's
            found.pop(key)
        run.companies.append((company, found))
    run.queued["overdue"] = notify_service.enqueue_overdue(now)
    digests = 0
    for owner, found in run.communities + run.companies:
        is_community = isinstance(owner, Community)
        endpoints = notify_service.endpoints_for(
            "daily", community_id=owner.id if is_community else None,
            company_id=None if is_community else owner.id)
        if not endpoints or not any(found.values()):
            continue
        payload = notify_service.digest_payload(owner.name, run.day, found, now)
        for endpoint in endpoints:
            if notify_service.enqueue(endpoint, "daily", payload, now=now, kick=False,
                                      dedupe_key=f"daily:{run.day}"):
                digests += 1
    run.queued["daily"] = digests
    run.queued["lookback_late"] = notify_service.enqueue_lookback_late(now)
    db.session.commit()
    if deliver:
        run.delivered = notify_service.deliver_due(now)
    return run

