from sqlalchemy import ForeignKey, String, Float
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import new_token


class Community(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    compounds = relationship("Compound", back_populates="community", order_by="Compound.name")


class Company(db.Model):
    """A property-management company (物业公司)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    compounds = relationship("Compound", back_populates="company")


class Compound(db.Model):
    """A residential compound (小区) with its gate QR token."""
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
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
