"""Handing a compound to another property company (物业更换), with an effective date.

    hand_over(compound, new_company, date(2026, 11, 18), actor=staff, now=now, tz=tz,
              default_choice="transfer", choices={item_id: "close", …})

The one way to do it (the staff page and `patrol handover` alike). What it does, in the
caller's transaction (the caller commits):

* contract periods (models.Contract): the old company's period ends on the date (one is
  made, "since before the records", if the compound had none) and the new one's starts
  on it; Compound.company_id becomes the new company.
* items keep the company stamped when they were reported: those reported before the
  date stay the old company's, in its ratings, weekly lists and scorecards; the
  compound's items from the date on are stamped with the new company.
* every item still open for the old company is closed as handed over (action
  `hand_over` → status `handed_over`, lifecycle.RULES), the old company still
  accountable for it (docs/scoring.md). By staff choice, per item:
    - "transfer": the new company gets a new item for the same hazard, reported now with
      the category's deadline, its report event naming the item it continues
      (data.transferred_from), the old item's hand_over event naming it (data.successor);
    - "close": nothing more (the hazard is not passed on).
* audit: one "compound.handover" row, with the items transferred and closed.

Access follows from the data (patrol/permissions.py): a manager of the old company no
longer sees the compound (its company is the new one) and keeps read access to its own
past items (they carry its company and are all closed, so there is nothing left to act
on); the new company's manager sees the compound and its new items.

Refused (HandoverInvalid, every problem at once, nothing changed): a date in the future
(record a handover on or after its day), a date not after the current period's start,
the same company, an actor who does not manage the compound's community, or items
reported for the old company on or after the date (they would be the new company's:
choose the date after them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from ..clock import local_date, utc_at
from .. import permissions
from ..display import form_for
from ..extensions import db
from ..lifecycle import OPEN, Action, Evidence, Status, transition
from ..models import Company, Compound, Contract, Item, ItemEvent, Photo
from . import audit, notify, row_locks

TRANSFER, CLOSE = "transfer", "close"
CHOICES = (TRANSFER, CLOSE)
# ItemEvent.reason of the hand_over event, labelled in patrol/labels.py (REASON).
REASONS = {TRANSFER: "transferred", CLOSE: "closed_at_handover"}
DEFAULT_HOURS = 72


class HandoverInvalid(Exception):
    """Nothing was changed; `errors` maps a field to a code: company "same" / "missing",
    effective_on "future" / "before_period", choice "bad_choice", actor "forbidden",
    items "reported_after"."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Handover:
    compound: Compound
    old_company_id: int | None
    new_company: Company
    effective_on: date
    effective_at: datetime                       # local midnight of the date, naive UTC
    ended: Contract | None
    started: Contract
    transferred: list = field(default_factory=list)   # (old Item, new Item)
    closed: list = field(default_factory=list)        # Item


def start_of(day: date, tz: str) -> datetime:
    """Local midnight of `day`, as naive UTC (how the database stores times)."""
    return utc_at(day, time(0), tz)


def current_contract(compound: Compound) -> Contract | None:
    return db.session.execute(
        db.select(Contract).where(Contract.compound_id == compound.id,
                                  Contract.ends_on.is_(None))
        .order_by(Contract.id.desc()).limit(1)).scalar_one_or_none()


def contracts(compound: Compound) -> list[Contract]:
    """The compound's periods, oldest first."""
    return list(db.session.execute(
        db.select(Contract).where(Contract.compound_id == compound.id)
        .order_by(Contract.starts_on.is_not(None), Contract.starts_on, Contract.id)).scalars())


def _old_company_condition(company_id):
    return Item.company_id.is_(None) if company_id is None else Item.company_id == company_id


def open_items(compound: Compound) -> list[Item]:
    """The compound's items still open for its current company: what a handover decides."""
    return list(db.session.execute(
        db.select(Item).where(Item.compound_id == compound.id,
                              _old_company_condition(compound.company_id),
                              Item.status.in_([s.value for s in OPEN]))
        .order_by(Item.created_at, Item.id)).scalars())


def _deadline_hours(item) -> float:
    form = form_for(item)
    category = form.category(item.category) if form else None
    return category["deadline_hours"] if category else DEFAULT_HOURS


def _successor(item: Item, new_company: Company, actor, now: datetime,
               contract: Contract) -> Item:
    """The new company's item for the same hazard, reported now, with the same photos."""
    deadline = now + timedelta(hours=_deadline_hours(item))
    new = Item(compound_id=item.compound_id, community_id=item.community_id,
               company_id=new_company.id, building_id=item.building_id, unit=item.unit,
               floor=item.floor, category=item.category, note=item.note,
               answers=dict(item.answers or {}), form_id=item.form_id,
               form_version=item.form_version, status=Status.REPORTED.value,
               reporter_id=item.reporter_id, created_at=now, updated_at=now,
               deadline=deadline)
    db.session.add(new)
    db.session.flush()
    ev = ItemEvent(item=new, actor_id=actor.id, at=now, action="report", from_status=None,
                   to_status=Status.REPORTED.value, note=item.note,
                   data={"deadline": deadline.isoformat(timespec="seconds"),
                         "transferred_from": item.id, "handover": contract.id})
    db.session.add(ev)
    db.session.flush()
    # Files are content-addressed: the new rows point at the same files.
    for photo in [p for p in item.photos if p.kind == "before"]:
        db.session.add(Photo(item_id=new.id, event_id=ev.id, uploader_id=photo.uploader_id,
                             kind="before", key=photo.key, thumb_key=photo.thumb_key,
                             width=photo.width, height=photo.height, size=photo.size,
                             taken_at=photo.taken_at, lat=photo.lat, lon=photo.lon,
                             created_at=now))
    return new


def hand_over(compound: Compound, new_company: Company | None, effective_on: date | None, *,
              actor, now: datetime, tz: str, default_choice: str = TRANSFER,
              choices: dict | None = None, note: str | None = None) -> Handover:
    """Hand `compound` to `new_company` from `effective_on` (see the module's text).
    Changes models and flushes; the caller commits. Raises HandoverInvalid."""
    errors: dict[str, str] = {}
    choices = {int(k): v for k, v in (choices or {}).items()}
    # The compound held until the commit: the same form sent twice waits and is refused
    # (its date is no longer after the current contract's start), and a report made at
    # the same moment comes before (and is passed on) or after (the new company's).
    old_company_id = row_locks.hold(Compound.company_id, compound.id)
    db.session.refresh(compound)
    if actor is None or not permissions.can_manage_community(actor, compound.community_id):
        errors["actor"] = "forbidden"
    if new_company is None:
        errors["company"] = "missing"
    elif new_company.id == old_company_id:
        errors["company"] = "same"
    if default_choice not in CHOICES or any(c not in CHOICES for c in choices.values()):
        errors["choice"] = "bad_choice"
    current = current_contract(compound)
    effective_at = None
    if effective_on is None:
        errors["effective_on"] = "missing"
    elif effective_on > local_date(now, tz):
        errors["effective_on"] = "future"
    elif current is not None and current.starts_on is not None \
            and effective_on <= current.starts_on:
        errors["effective_on"] = "before_period"
    else:
        effective_at = start_of(effective_on, tz)
        late = db.session.execute(
            db.select(Item.id).where(Item.compound_id == compound.id,
                                     _old_company_condition(old_company_id),
                                     Item.created_at >= effective_at).limit(1)).first()
        if late:
            errors["items"] = "reported_after"
    if errors:
        raise HandoverInvalid(errors)
    # No errors: the company and the date were given, and the date's midnight found.
    assert new_company is not None and effective_on is not None and effective_at is not None

    if current is None and old_company_id is not None:
        current = Contract(compound_id=compound.id, company_id=old_company_id, starts_on=None,
                           created_at=now, created_by_id=actor.id)
        db.session.add(current)
    if current is not None:
        current.ends_on = effective_on
    started = Contract(compound_id=compound.id, company_id=new_company.id,
                       starts_on=effective_on, created_at=now, created_by_id=actor.id,
                       note=(note or "").strip()[:200] or None)
    db.session.add(started)
    db.session.flush()
    result = Handover(compound, old_company_id, new_company, effective_on, effective_at,
                      current, started)

    for item in open_items(compound):   # still the old company's: read before the switch
        choice = choices.get(item.id, default_choice)
        outcome = transition(item.status, Action.HAND_OVER, actor.role, {Evidence.HANDOVER})
        data = {"handover": started.id, "to_company_id": new_company.id,
                "effective_on": effective_on.isoformat(), "choice": choice}
        if choice == TRANSFER:
            successor = _successor(item, new_company, actor, now, started)
            data["successor"] = successor.id
            result.transferred.append((item, successor))
        else:
            result.closed.append(item)
        item.status = outcome.target.value
        item.closed_at = now
        item.updated_at = now
        db.session.add(ItemEvent(item=item, actor_id=actor.id, at=now,
                                 action=Action.HAND_OVER.value,
                                 from_status=outcome.source.value,
                                 to_status=outcome.target.value, reason=REASONS[choice],
                                 data=data))
    compound.company_id = new_company.id
    db.session.flush()
    for _, successor in result.transferred:
        notify.notify_item("new_item", successor, now)
    audit.record(actor, "compound.handover", compound,
                 {"company_id": old_company_id},
                 {"company_id": new_company.id, "effective_on": effective_on,
                  "transferred": {old.id: new.id for old, new in result.transferred},
                  "closed": [item.id for item in result.closed]}, now)
    return result
