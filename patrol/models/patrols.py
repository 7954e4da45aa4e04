"""Patrols on record (巡查记录): walks, their members, checkpoints, schedules, highlights.

The rules (joining, ending after a quiet spell, hours, presence) are in patrol/patrols.py
(pure) and services/patrols.py; these are the rows.
"""
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import new_token, utcnow
from .items import _one_of

# Ending a patrol asks for one tap: 无问题 / 发现问题 N 条 / 未完成.
PATROL_SUMMARIES = ("none", "found", "unfinished")
# Ended by the volunteer's tap, or on its own after a quiet spell (no one scanned or reported).
PATROL_ENDINGS = ("tapped", "quiet")
CHECKPOINT_KINDS = ("building", "fire_exit", "other")
SCHEDULE_PERIODS = ("week", "month")


class Patrol(db.Model):
    """One walk of a compound by (members of) a team."""
    __table_args__ = (
        CheckConstraint(_one_of("summary", PATROL_SUMMARIES), name="ck_patrol_summary"),
        CheckConstraint(_one_of("ended_by", PATROL_ENDINGS), name="ck_patrol_ended_by"),
        Index("ix_patrol_compound_started", "compound_id", "started_at"),
        Index("ix_patrol_team_started", "team_id", "started_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"))
    # The team it belongs to; a staff member's own walk has none.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    started_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # Times are the phone's when the walk was recorded offline.
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(8))
    summary: Mapped[str | None] = mapped_column(String(12))
    found_count: Mapped[int | None]          # the N of 发现问题 N 条, as the volunteer said
    # Scans and checkpoints recorded more than the compound's radius away (位置不符).
    far_scans: Mapped[int] = mapped_column(default=0)
    client_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    compound = relationship("Compound")
    team = relationship("Team")
    started_by = relationship("User")
    members = relationship("PatrolMember", back_populates="patrol",
                           order_by="PatrolMember.joined_at")
    checkpoint_scans = relationship("CheckpointScan", back_populates="patrol",
                                    order_by="CheckpointScan.at")


class PatrolMember(db.Model):
    """A volunteer on a patrol, with the service time it gives them (志愿服务时长)."""
    __tablename__ = "patrol_member"
    __table_args__ = (Index("ix_patrol_member_user", "user_id", "joined_at"),)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrol.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the patrol ends, by the rule in patrol/patrols.py (capped and rounded).
    minutes: Mapped[int | None]
    # A staff correction (the audit log keeps who, when and why); counts instead of minutes.
    corrected_minutes: Mapped[int | None]

    patrol = relationship("Patrol", back_populates="members")
    user = relationship("User")

    @property
    def served_minutes(self) -> int:
        if self.corrected_minutes is not None:
            return self.corrected_minutes
        return self.minutes or 0


class Checkpoint(db.Model):
    """A printed QR sticker inside a compound (楼栋码, 消防通道码)."""
    __table_args__ = (
        CheckConstraint(_one_of("kind", CHECKPOINT_KINDS), name="ck_checkpoint_kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(12), default="building")
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    qr_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_token)
    archived_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    compound = relationship("Compound")
    building = relationship("Building")


class CheckpointScan(db.Model):
    __tablename__ = "checkpoint_scan"
    id: Mapped[int] = mapped_column(primary_key=True)
    patrol_id: Mapped[int] = mapped_column(ForeignKey("patrol.id"), index=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoint.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    device_at: Mapped[datetime | None]
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    distance_m: Mapped[int | None]
    far: Mapped[bool] = mapped_column(default=False)
    client_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)

    patrol = relationship("Patrol", back_populates="checkpoint_scans")
    checkpoint = relationship("Checkpoint")
    user = relationship("User")


class PatrolSchedule(db.Model):
    """How often a team must walk a compound (or one checkpoint of it)."""
    __tablename__ = "patrol_schedule"
    __table_args__ = (
        CheckConstraint(_one_of("period", SCHEDULE_PERIODS), name="ck_patrol_schedule_period"),
        CheckConstraint("times >= 1", name="ck_patrol_schedule_times"),
        UniqueConstraint("team_id", "compound_id", "checkpoint_id",
                         name="uq_patrol_schedule_target"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), index=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), index=True)
    checkpoint_id: Mapped[int | None] = mapped_column(ForeignKey("checkpoint.id"))
    period: Mapped[str] = mapped_column(String(8), default="week")
    times: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team = relationship("Team")
    compound = relationship("Compound")
    checkpoint = relationship("Checkpoint")


class MonthlyHighlight(db.Model):
    """A before/after pair staff chose for a month's statistics pack (at most three)."""
    __tablename__ = "monthly_highlight"
    __table_args__ = (
        CheckConstraint("(community_id IS NULL) != (street_id IS NULL)",
                        name="ck_monthly_highlight_scope"),
        Index("ix_monthly_highlight_scope", "month", "community_id", "street_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date]                       # the first day of the month
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    position: Mapped[int] = mapped_column(default=0)
    chosen_by_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item = relationship("Item")
