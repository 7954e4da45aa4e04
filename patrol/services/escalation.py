"""Escalations and the day's reminders, as SQL over the same rules as lifecycle.py.

An item is escalated when it is overdue (lifecycle.is_overdue) or was reported and
not acknowledged within ACK_ESCALATE (lifecycle.is_ack_late). Nothing is stored:
both are derived from status, created_at and deadline at the moment of asking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, or_

from .. import lifecycle
from ..extensions import db
from ..lifecycle import OWED, Status
from ..models import Community, Company, Item
from . import notify as notify_service

OWED_VALUES = [s.value for s in OWED]


def overdue_cond(now: datetime):
    return and_(Item.status.in_(OWED_VALUES), Item.deadline < now)


def ack_late_cond(now: datetime, limit: timedelta):
    return and_(Item.status == Status.REPORTED.value, Item.created_at < now - limit)


def due_soon_cond(now: datetime, horizon: timedelta):
    return and_(Item.status.in_(OWED_VALUES), Item.deadline >= now, Item.deadline <= now + horizon)


def escalated_cond(now: datetime, limit: timedelta):
    return or_(overdue_cond(now), ack_late_cond(now, limit))


def reasons(item, now: datetime, limit: timedelta) -> list[str]:
    """Why an item is on the escalation list, by the pure rules."""
    out = []
    if lifecycle.is_ack_late(item.status, item.created_at, now, limit):
        out.append("ack_late")
    if lifecycle.is_overdue(item.status, item.deadline, now):
        out.append("overdue")
    return out


def groups(scope, now: datetime, *, ack_limit: timedelta,
           horizon: timedelta) -> dict[str, list[Item]]:
    """overdue / ack_late / due_soon items within `scope` (an SQL condition), oldest first."""
    out = {}
    for key, cond, order in (("overdue", overdue_cond(now), Item.deadline),
                             ("ack_late", ack_late_cond(now, ack_limit), Item.created_at),
                             ("due_soon", due_soon_cond(now, horizon), Item.deadline)):
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
        run.companies.append((company, groups(Item.company_id == company.id, now,
                                              ack_limit=ack_limit, horizon=horizon)))
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
    db.session.commit()
    if deliver:
        run.delivered = notify_service.deliver_due(now)
    return run

