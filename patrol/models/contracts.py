from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow


class Contract(db.Model):
    """A company's contract period for a compound (物业服务期): from `starts_on` (None:
    since before the records began) up to, not including, `ends_on` (None: current).
    A handover (services/handover.py) ends one period and starts the next on the same
    local date; Compound.company_id is the company of the current period."""
    __table_args__ = (
        CheckConstraint("starts_on IS NULL OR ends_on IS NULL OR starts_on < ends_on",
                        name="ck_contract_period"),
        Index("ix_contract_compound_ends", "compound_id", "ends_on"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id"), index=True)
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    note: Mapped[str | None] = mapped_column(String(200))

    compound = relationship("Compound")
    company = relationship("Company")
