"""Ratings from the database: load item histories, hand them to the pure scoring module
(which reads each history with lifecycle.replay)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app

from .. import scoring
from ..extensions import db
from ..lifecycle import Event, Status
from ..models import CommitteeRating, Company, Compound, Item, ItemEvent, ResidentReport
from ..models.base import utcnow


def _category_hours(form_id: str, code: str) -> int:
    forms = current_app.extensions["patrol.forms"]
    form = forms.get(form_id) or forms.get("hazard")
    category = form.category(code) if form else None
    return category["deadline_hours"] if category else 72


def load_histories(conditions, start: datetime, end: datetime) -> list[scoring.ItemHistory]:
    """Histories of the items reported in [start, end) that match `conditions`."""
    where = [Item.created_at >= start, Item.created_at < end, Item.company_id.is_not(None),
             *conditions]
    items = db.session.execute(
        db.select(Item.id, Item.company_id, Item.created_at, Item.form_id, Item.category,
                  Item.department_id)
        .where(*where)).all()
    if not items:
        return []
    events: dict[int, list] = {row.id: [] for row in items}
    for item_id, at, action, data in db.session.execute(
            db.select(ItemEvent.item_id, ItemEvent.at, ItemEvent.action, ItemEvent.data)
            .join(Item, Item.id == ItemEvent.item_id).where(*where)
            .order_by(ItemEvent.item_id, ItemEvent.id)):
        events[item_id].append((at, action, data or {}))
    hours: dict[tuple, int] = {}
    out = []
    for row in items:
        key = (row.form_id, row.category)
        if key not in hours:
            # For histories recorded before deadlines were written into report and
            # reopen events: lifecycle.replay rebuilds them from the category's default.
            hours[key] = _category_hours(*key)
        history = tuple(Event.from_record(at, action, data) for at, action, data in events[row.id])
        out.append(scoring.ItemHistory(row.id, row.company_id, row.created_at, history,
                                       default_hours=hours[key],
                                       department_id=row.department_id))
    return out


def companies_in(community_id: int | None) -> dict[int, str]:
    """Companies rated in a community's list: those managing one of its compounds, and
    those with items there (a compound may have changed hands). None: every company."""
    query = db.select(Company.id, Company.name)
    if community_id is not None:
        managing = db.select(Compound.company_id).where(Compound.community_id == community_id)
        with_items = db.select(Item.company_id).where(Item.community_id == community_id)
        query = query.where(Company.id.in_(managing.union(with_items)))
    return dict(db.session.execute(query).all())


def community_ids_of(company_id: int) -> set[int]:
    """Communities where the company manages a compound or has items (it may have left)."""
    managing = db.select(Compound.community_id).where(Compound.company_id == company_id)
    with_items = db.select(Item.community_id).where(Item.company_id == company_id)
    return set(db.session.execute(managing.union(with_items)).scalars())


@dataclass
class Ratings:
    period: scoring.Period
    start: datetime
    end: datetime
    now: datetime
    names: dict
    figures: list          # scoring.Figures, ranked first, then insufficient
    min_items: int
    residents: dict = field(default_factory=dict)   # company id → scoring.Opinion (业主满意度)
    committee: dict = field(default_factory=dict)   # company id → scoring.Opinion (业委会)

    def of(self, company_id) -> scoring.Figures | None:
        return next((f for f in self.figures if f.company_id == company_id), None)

    def residents_of(self, company_id) -> scoring.Opinion:
        return self.residents.get(company_id) or scoring.opinion([], min_n=self.min_items)

    def committee_of(self, company_id) -> scoring.Opinion:
        return self.committee.get(company_id) or scoring.opinion([], min_n=self.min_items)

    @property
    def red(self):
        return [f for f in self.figures if f.listing == "red"]

    @property
    def black(self):
        return [f for f in self.figures if f.listing == "black"]


def rate_period(period: scoring.Period, *, community_id=None, names=None, now=None) -> Ratings:
    cfg = current_app.config
    now = now or utcnow()
    start, end = period.bounds_utc(cfg["TIMEZONE"])
    names = companies_in(community_id) if names is None else names
    conditions = [Item.company_id.in_(list(names))]
    if community_id is not None:
        conditions.append(Item.community_id == community_id)
    histories = load_histories(conditions, start, end)
    figures = scoring.rate(histories, start, end, now, names, min_items=cfg["RATING_MIN_ITEMS"])
    min_n = cfg["RATING_MIN_ITEMS"]
    return Ratings(period, start, end, now, names, figures, min_n,
                   residents=scoring.opinions(resident_ratings(start, end, now, community_id),
                                              names, min_n=min_n),
                   committee=scoring.opinions(committee_ratings(period, community_id),
                                              names, min_n=min_n))


RATED_CLOSED = (Status.VERIFIED.value, Status.ANSWERED.value)


def resident_ratings(start: datetime, end: datetime, now: datetime,
                     community_id=None) -> list[tuple[int, int]]:
    """(company id, stars) of residents' ratings (业主满意度) of items closed, verified or
    answered, in [start, end) and rated by `now`: the company the item was reported for,
    unless it went to a department. A report added to an item that was later merged
    rates the item it was merged into."""
    query = (db.select(ResidentReport.rating, ResidentReport.item_id)
             .where(ResidentReport.rating.is_not(None), ResidentReport.item_id.is_not(None),
                    ResidentReport.rated_at >= start, ResidentReport.rated_at <= now))
    if community_id is not None:
        query = query.where(ResidentReport.community_id == community_id)
    rows = db.session.execute(query).all()
    out = []
    for stars, item_id in rows:
        item = db.session.get(Item, item_id)
        seen = set()
        while item is not None and item.status == Status.MERGED.value and item.merged_into_id \
                and item.id not in seen:
            seen.add(item.id)
            item = db.session.get(Item, item.merged_into_id)
        if (item is None or item.status not in RATED_CLOSED or item.company_id is None
                or item.department_id is not None or item.closed_at is None
                or not start <= item.closed_at < end):
            continue
        out.append((item.company_id, stars))
    return out


def committee_ratings(period: scoring.Period, community_id=None) -> list[tuple[int, int]]:
    """(company id, stars) of the owners' committees' monthly ratings of the months in the
    period (of the community's compounds, for a community's list)."""
    query = (db.select(CommitteeRating.company_id, CommitteeRating.stars)
             .where(CommitteeRating.month >= period.start_date,
                    CommitteeRating.month < period.end_date))
    if community_id is not None:
        query = query.join(Compound, Compound.id == CommitteeRating.compound_id) \
            .where(Compound.community_id == community_id)
    return [(cid, stars) for cid, stars in db.session.execute(query).all()]


def monthly(company_id: int, last: scoring.Period, *, community_id=None, months=12, now=None):
    """Items per month for the chart: the `months` months ending with `last`'s last month."""
    cfg = current_app.config
    now = now or utcnow()
    final = scoring.Period(last.year, "month", last.first_month + last.months - 1)
    periods = [final.shift(-k) for k in range(months - 1, -1, -1)]
    bounds = [p.bounds_utc(cfg["TIMEZONE"]) for p in periods]
    conditions = [Item.company_id == company_id]
    if community_id is not None:
        conditions.append(Item.community_id == community_id)
    histories = load_histories(conditions, bounds[0][0], bounds[-1][1])
    return scoring.monthly_counts(histories, periods, bounds, now)


def default_period(now: datetime, kind: str = "quarter") -> scoring.Period:
    """The last complete quarter (or month): ratings are published after a period ends."""
    from zoneinfo import ZoneInfo
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(current_app.config["TIMEZONE"]))
    return scoring.Period.containing(local.date(), kind).shift(-1)
