"""The owners' committee's monthly rating (业委会评价) of the property company's work at
its compound: 1–5 stars and an optional note, once per member, compound and month. The
ratings computation (services/ratings.py, docs/scoring.md) reads these rows.

Changes models and flushes; the caller commits.
"""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError

from .. import permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import CommitteeRating, Compound

NOTE_MAX = 300


class RatingRefused(Exception):
    """`code`: "not_committee", "no_company", "already_rated", "stars" or "note"."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def rating_month(now: datetime, tz: str) -> date:
    """The first day of the month `now` (naive UTC) falls in, in the configured zone."""
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz))
    return date(local.year, local.month, 1)


def rated_compound(user) -> Compound | None:
    """The compound a committee member rates: their own, if they supervise it."""
    if Role(user.role) != Role.COMMITTEE or user.compound_id is None:
        return None
    compound = db.session.get(Compound, user.compound_id)
    if compound is None or not permissions.SUPERVISE.allows(
            user, compound, permissions.COMPOUND_ROW):
        return None
    return compound


def this_months(user, compound, month: date) -> CommitteeRating | None:
    return db.session.execute(db.select(CommitteeRating).where(
        CommitteeRating.user_id == user.id, CommitteeRating.compound_id == compound.id,
        CommitteeRating.month == month)).scalar_one_or_none()


def rate(user, *, stars, note, now: datetime, tz: str) -> CommitteeRating:
    compound = rated_compound(user)
    if compound is None:
        raise RatingRefused("not_committee")
    if compound.company_id is None:
        raise RatingRefused("no_company")
    try:
        stars = int(stars)
    except (TypeError, ValueError):
        raise RatingRefused("stars") from None
    if not 1 <= stars <= 5:
        raise RatingRefused("stars")
    note = " ".join((note or "").split()) or None
    if note and len(note) > NOTE_MAX:
        raise RatingRefused("note")
    month = rating_month(now, tz)
    if this_months(user, compound, month) is not None:
        raise RatingRefused("already_rated")
    rating = CommitteeRating(compound_id=compound.id, company_id=compound.company_id,
                             user_id=user.id, month=month, stars=stars, note=note,
                             created_at=now)
    db.session.add(rating)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:      # a second send of the form raced the first
        raise RatingRefused("already_rated") from None
    return rating
