from datetime import datetime

from sqlalchemy import (JSON, CheckConstraint, Float, ForeignKey, Index, String, Text,
                        event)
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from ..extensions import db
from ..lifecycle import Action, Status
from .base import utcnow

# Photos are taken when reporting, after a fix, or at a failed check (kind "check").
PHOTO_KINDS = ("before", "after", "check")
# An item's history starts with its report; every later entry is a lifecycle action.
EVENT_ACTIONS = ("report", *(a.value for a in Action))
ITEM_SOURCES = ("patrol", "resident")


def _one_of(column: str, values) -> str:
    """A CHECK condition generated from an enum (or a tuple of codes): a new value changes
    the text, and tests/test_enum_constraints.py then asks for the migration. NULL passes,
    as in SQL."""
    return "{} in ({})".format(column, ",".join(f"'{getattr(v, 'value', v)}'" for v in values))


class Item(db.Model):
    """One hazard on a compound's problem list (问题清单)."""
    __table_args__ = (
        CheckConstraint(_one_of("status", Status), name="ck_item_status"),
        CheckConstraint(f"status != '{Status.MERGED.value}' OR merged_into_id IS NOT NULL",
                        name="ck_item_merged"),
        Index("ix_item_compound_status", "compound_id", "status"),
        # Covers the community overview: every column it filters on or counts, so its
        # one aggregate query reads only this index (see docs/benchmarks.md).
        Index("ix_item_community_status", "community_id", "status", "category", "deadline",
              "company_id", "compound_id", "created_at"),
        # The overview's list order (newest first, then id) within a community: a page
        # by number skips its offset in this index alone (index-only, no sort).
        Index("ix_item_community_created", "community_id", "created_at", "id"),
        # The manager inbox: its tab counts and overdue/due-soon ranges read only this.
        Index("ix_item_company_status", "company_id", "status", "deadline"),
        Index("ix_item_status_deadline", "status", "deadline"),
        Index("ix_item_created", "created_at"),
        CheckConstraint(_one_of("source", ITEM_SOURCES), name="ck_item_source"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # The columns the tallies are keyed on (services/counts.KEY_ATTRS) keep their old value
    # when set while unloaded (active_history): the tally must take the item from its old key.
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), active_history=True)
    # Denormalised at report time: the company answerable for the item stays
    # answerable even if the compound later changes hands.
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), active_history=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), active_history=True)
    # Routed to a department (部门): it, not the company, is then the responsible party.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True,
                                                      active_history=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    unit: Mapped[str | None] = mapped_column(String(20))
    floor: Mapped[str | None] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40), active_history=True)
    note: Mapped[str | None] = mapped_column(Text)
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    form_id: Mapped[str] = mapped_column(String(40))
    form_version: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default=Status.REPORTED.value,
                                        active_history=True)
    deadline: Mapped[datetime | None] = mapped_column(active_history=True)
    fixed_on_spot: Mapped[bool] = mapped_column(default=False)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"))
    # Where the report came from: a patrol (volunteer or staff), or a resident's report
    # accepted in triage (the reporter is then the one who accepted it).
    source: Mapped[str] = mapped_column(String(12), default="patrol")
    # Supporting reports (同一个问题): "N 人反映" is support_count + 1.
    support_count: Mapped[int] = mapped_column(default=0)
    # 督办 by the owners' committee; lifted by staff or by closing.
    flagged_at: Mapped[datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(String(40))
    # The responsible party disputes the item (不属于职责) until staff decide.
    disputed_at: Mapped[datetime | None]
    # Reported (or checked) from a phone that said it was far outside the compound (位置不符).
    location_mismatch: Mapped[bool] = mapped_column(default=False)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    client_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, active_history=True)
    device_created_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    fixed_at: Mapped[datetime | None] = mapped_column(active_history=True)
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Optimistic locking: a stale write raises StaleDataError on SQLite and PostgreSQL alike.
    version: Mapped[int] = mapped_column(default=1)
    __mapper_args__ = {"version_id_col": version}

    compound = relationship("Compound")
    company = relationship("Company")
    department = relationship("Department")
    building = relationship("Building")
    reporter = relationship("User")
    merged_into = relationship("Item", remote_side=[id])
    events = relationship("ItemEvent", back_populates="item", order_by="ItemEvent.id")
    photos = relationship("Photo", back_populates="item", order_by="Photo.id",
                          foreign_keys="Photo.item_id")

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @staticmethod
    def row_options(with_compound: bool = False) -> list:
        """Loader options for lists drawn with templates/partials/item_row.html, which
        reads item.photos[0], item.building and (with show_compound) item.compound and
        item.company: a query each per page instead of one each per row."""
        options = [selectinload(Item.photos), selectinload(Item.building)]
        if with_compound:
            options += [selectinload(Item.compound), selectinload(Item.company)]
        return options


class ItemEvent(db.Model):
    """Append-only history: who did what, when, from which status to which."""
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(40))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    presence_id: Mapped[int | None] = mapped_column(ForeignKey("presence.id"))
    # The patrol (巡查) the actor was on when they did this, if any.
    patrol_id: Mapped[int | None] = mapped_column(ForeignKey("patrol.id"), index=True)
    # Idempotency key of the form that made this change (the phone's outbox resends).
    client_uuid: Mapped[str | None] = mapped_column(String(36))
    __table_args__ = (
        Index("uq_item_event_client_uuid", "client_uuid", unique=True),
        CheckConstraint(_one_of("action", EVENT_ACTIONS), name="ck_item_event_action"),
        CheckConstraint(_one_of("from_status", Status), name="ck_item_event_from_status"),
        CheckConstraint(_one_of("to_status", Status), name="ck_item_event_to_status"),
    )

    item = relationship("Item", back_populates="events")
    actor = relationship("User")
    presence = relationship("Presence")
    photos = relationship("Photo", order_by="Photo.id", foreign_keys="Photo.event_id",
                          viewonly=True)


@event.listens_for(ItemEvent, "before_update")
@event.listens_for(ItemEvent, "before_delete")
def _history_is_append_only(mapper, connection, target):
    raise RuntimeError("item history is append-only")


class Photo(db.Model):
    """A re-encoded photo. Files are content-addressed; see services/photos.py."""
    __table_args__ = (
        CheckConstraint(_one_of("kind", PHOTO_KINDS), name="ck_photo_kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("item_event.id"), index=True)
    # None for a resident's photo (no account): it belongs to its resident_report.
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    resident_report_id: Mapped[int | None] = mapped_column(ForeignKey("resident_report.id"),
                                                           index=True)
    kind: Mapped[str] = mapped_column(String(10), default="before")
    key: Mapped[str] = mapped_column(String(80), index=True)   # full-size file
    thumb_key: Mapped[str] = mapped_column(String(80))         # ~320 px thumbnail
    width: Mapped[int]
    height: Mapped[int]
    size: Mapped[int]
    taken_at: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item = relationship("Item", back_populates="photos", foreign_keys=[item_id])
    uploader = relationship("User")


class Presence(db.Model):
    """A QR scan: proof that someone stood in the compound at a given time."""
    __table_args__ = (Index("ix_presence_user_compound_at", "user_id", "compound_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # The columns the tallies are keyed on (services/counts.KEY_ATTRS) keep their old value
    # when set while unloaded (active_history): the tally must take the item from its old key.
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), active_history=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    device_at: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    # The patrol this scan started or joined, and how far from the compound the phone said
    # it was (位置不符 when `far`); both unknown without a location or a compound position.
    patrol_id: Mapped[int | None] = mapped_column(ForeignKey("patrol.id"))
    distance_m: Mapped[int | None]
    far: Mapped[bool] = mapped_column(default=False)
    compound = relationship("Compound")
