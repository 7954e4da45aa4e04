from datetime import datetime

from sqlalchemy import ForeignKey, String, Float, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import new_token


class Street(db.Model):
    """A street office (街道): the level above communities."""
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    communities = relationship("Community", back_populates="street", order_by="Community.name")


class Community(db.Model):
    # Two streets may each have a 和平社区: a name is unique within its street only.
    __table_args__ = (UniqueConstraint("street_id", "name", name="uq_community_street_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id"), index=True)
    street = relationship("Street", back_populates="communities")
    compounds = relationship("Compound", back_populates="community", order_by="Compound.name")


class Company(db.Model):
    """A property-management company (物业公司)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    contact: Mapped[str | None] = mapped_column(String(60))
    credit_code: Mapped[str | None] = mapped_column(String(18))   # 统一社会信用代码
    compounds = relationship("Compound", back_populates="company")


class Compound(db.Model):
    """A residential compound (小区) with its gate QR token."""
    # Two communities may each have a 幸福小区: unique within the community only.
    __table_args__ = (UniqueConstraint("community_id", "name", name="uq_compound_community_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None]        # for presence checks: how far from lat/lon is "here"
    archived_at: Mapped[datetime | None]  # gone from lists and scans; history kept
    # 192 random bits; rotating it invalidates every printed poster.
    qr_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)

    community = relationship("Community", back_populates="compounds")
    company = relationship("Company", back_populates="compounds")
    buildings = relationship("Building", back_populates="compound", order_by="Building.sort_key")

    def rotate_token(self):
        self.qr_token = new_token()


class Building(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    sort_key: Mapped[int] = mapped_column(default=0)
    compound = relationship("Compound", back_populates="buildings")
