from datetime import datetime

from sqlalchemy import (JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..notify import EVENTS, KINDS
from .base import new_token, utcnow

_KIND_CHECK = "kind in ({})".format(",".join(f"'{k}'" for k in KINDS))
# A delivery waits (pending), or has been sent, or was given up on (failed).
DELIVERY_STATUSES = ("pending", "sent", "failed")
_DELIVERY_STATUS_CHECK = "status in ({})".format(",".join(f"'{s}'" for s in DELIVERY_STATUSES))


# Exactly one owner per receiver.
ENDPOINT_OWNERS = ("community_id", "company_id", "team_id", "department_id", "compound_id")
ENDPOINT_OWNER_CHECK = " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)"
                                  for c in ENDPOINT_OWNERS) + " = 1"


class NotifyEndpoint(db.Model):
    """Where notifications go: a webhook URL or an e-mail address, owned by exactly one
    community (staff), property company (its managers), patrol team (its group robot:
    fixes waiting for the look-back), department (its inbox) or compound (its owners'
    committee)."""
    __tablename__ = "notify_endpoint"
    __table_args__ = (
        CheckConstraint(_KIND_CHECK, name="ck_notify_endpoint_kind"),
        CheckConstraint(ENDPOINT_OWNER_CHECK, name="ck_notify_endpoint_owner"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20))
    target: Mapped[str] = mapped_column(String(500))        # URL or e-mail address
    # Generic JSON receivers can check X-Patrol-Signature with it.
    secret: Mapped[str] = mapped_column(String(64), default=lambda: new_token(24))
    events: Mapped[list] = mapped_column(JSON, default=lambda: list(EVENTS))
    active: Mapped[bool] = mapped_column(default=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("compound.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    community = relationship("Community")
    company = relationship("Company")
    team = relationship("Team")
    department = relationship("Department")
    compound = relationship("Compound")
    deliveries = relationship("Delivery", back_populates="endpoint",
                              cascade="all, delete-orphan", passive_deletes=True)


class Delivery(db.Model):
    """One notification to one endpoint: queued in the transaction that caused it,
    sent outside any request, retried with exponential backoff."""
    __table_args__ = (
        CheckConstraint(_DELIVERY_STATUS_CHECK, name="ck_delivery_status"),
        # The same event is never queued twice for the same endpoint (cron may rerun).
        UniqueConstraint("endpoint_id", "dedupe_key", name="uq_delivery_endpoint_key"),
        Index("ix_delivery_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("notify_endpoint.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    # When a pending delivery may next be tried; a sender claims a row by moving this
    # forward (a lease), so a crashed sender's row is simply tried again later.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    response_status: Mapped[int | None]
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    endpoint = relationship("NotifyEndpoint", back_populates="deliveries")
    item = relationship("Item")

