"""The seed's chain around the fix: departments that answer, residents who report
without an account (a triage queue), and the owners' committee's monthly rating."""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Float, ForeignKey, Index, String, Text, \
    UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow
from .items import _one_of

# 供水, 供电, 电梯维保, 城管, the community itself, anything else.
DEPARTMENT_KINDS = ("water", "power", "lift", "chengguan", "community", "other")
# A resident's report waits for triage (pending), became an item (accepted), was added to
# an open item as a supporting report (supported), or was declined with a coded reason.
RESIDENT_STATUSES = ("pending", "accepted", "supported", "declined")
DECLINE_REASONS = ("not_a_hazard", "not_this_compound", "private_matter", "no_detail",
                   "abusive", "other")


class Department(db.Model):
    """A responsible party that is not a property company (部门). Bound to a street
    (or, with neither, district-wide) or to one community (the community itself)."""
    __table_args__ = (CheckConstraint(_one_of("kind", DEPARTMENT_KINDS),
                                      name="ck_department_kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="other")
    phone: Mapped[str | None] = mapped_column(String(40))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    street = relationship("Street")
    community = relationship("Community")


class ResidentReport(db.Model):
    """A report from a signed-out phone at a gate QR (业主提诉求). It waits in the triage
    queue and reaches no company and no receiver until staff or a volunteer leader
    handle it. The resident keeps an unguessable receipt link: only its hash is here."""
    __tablename__ = "resident_report"
    __table_args__ = (
        CheckConstraint(_one_of("status", RESIDENT_STATUSES), name="ck_resident_report_status"),
        CheckConstraint(_one_of("decline_reason", DECLINE_REASONS),
                        name="ck_resident_report_decline_reason"),
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)",
                        name="ck_resident_report_rating"),
        Index("ix_resident_report_queue", "community_id", "status", "created_at"),
        Index("ix_resident_report_device", "compound_id", "device_hash", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    category: Mapped[str] = mapped_column(String(40))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    note: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))       # personal data: staff only
    status: Mapped[str] = mapped_column(String(12), default="pending")
    decline_reason: Mapped[str | None] = mapped_column(String(40))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), index=True)
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    handled_at: Mapped[datetime | None]
    # Hashes (never the raw values): the device cookie and the address, to collapse
    # repeats and limit floods; the receipt token, to find the report from its link.
    device_hash: Mapped[str] = mapped_column(String(64))
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    receipt_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    repeats: Mapped[int] = mapped_column(default=0)   # later sends collapsed into this one
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    rating: Mapped[int | None]          # 业主满意度, 1–5, once the item is closed
    rated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    compound = relationship("Compound")
    building = relationship("Building")
    item = relationship("Item")
    handled_by = relationship("User")
    photos = relationship("Photo", order_by="Photo.id", foreign_keys="Photo.resident_report_id",
                          viewonly=True)


class CommitteeRating(db.Model):
    """The owners' committee's monthly rating of the company's work at its compound."""
    __tablename__ = "committee_rating"
    __table_args__ = (
        UniqueConstraint("user_id", "compound_id", "month", name="uq_committee_rating_month"),
        CheckConstraint("stars >= 1 AND stars <= 5", name="ck_committee_rating_stars"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), index=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    month: Mapped[date] = mapped_column(Date)       # the first day of the month rated
    stars: Mapped[int]
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    compound = relationship("Compound")
    company = relationship("Company")
