"""Jobs: long or retried work run by the queue's worker (patrol/jobs/, docs/jobs.md).

The row is the job's truth: the queue's message only carries its id. Staff see their
rows on /jobs (admins all), with state, progress, error and the result file.
"""
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import utcnow

# queued: waiting (also between tries); running: a worker has it (until lease_until);
# failed: every try used (a person may retry it); done: finished, result kept.
JOB_STATES = ("queued", "running", "failed", "done")
_STATE_CHECK = "state in ({})".format(",".join(f"'{s}'" for s in JOB_STATES))


class Job(db.Model):
    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(_STATE_CHECK, name="ck_job_state"),
        CheckConstraint("progress_done >= 0 AND progress_total >= 0", name="ck_job_progress"),
        Index("ix_job_owner_created", "created_by_id", "created_at"),
        Index("ix_job_state", "state", "next_try_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(10), default="queued")
    title: Mapped[str] = mapped_column(String(200), default="")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    # The result: a key in the store (jobs/<id>/<file>), its download name and type.
    result_key: Mapped[str | None] = mapped_column(String(200))
    result_name: Mapped[str | None] = mapped_column(String(200))
    result_type: Mapped[str | None] = mapped_column(String(100))
    result_note: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=4)
    next_try_at: Mapped[datetime | None] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", name="fk_job_created_by_id_user", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by = relationship("User")

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))
