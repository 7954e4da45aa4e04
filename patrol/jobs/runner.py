"""Running a job: claim its row, call its kind's function, keep the result, retry with
back-off. Called by the queue's tasks (patrol/jobs/__init__.py) inside an app context.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, cast

from flask import current_app
from sqlalchemy import and_, or_, update
from sqlalchemy.engine import CursorResult

from .. import notify as notify_rules
from ..clock import utcnow
from ..extensions import db
from ..models import Job

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=30)       # a running job whose worker died is taken again after this
STALE = timedelta(minutes=2)        # a queued job with no message this long: queued again
RESULT_PREFIX = "jobs/"
PROGRESS_EVERY = 0.3                # seconds between progress writes


@dataclass
class Result:
    """What a job made: a file (kept in the store under jobs/<id>/) and a line for people."""
    data: bytes | None = None
    filename: str = "result.bin"
    mimetype: str = "application/octet-stream"
    note: str | None = None
    once: bool = False                        # deleted after its first download
    after_commit: list[Callable[[], None]] = field(default_factory=list)


class Permanent(Exception):
    """A failure that another try cannot mend (the data changed, not allowed): the job
    fails at once, with this message."""


class Progress:
    """done/total on the job's row, written on a connection of its own (the job's session
    may hold its own transaction), at most a few times a second."""

    def __init__(self, job_id: int, every: float | None = None):
        self.job_id = job_id
        self.every = PROGRESS_EVERY if every is None else every
        self.done, self.total = 0, 0
        self._last = 0.0

    def set(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        try:
            with db.engine.begin() as conn:
                conn.execute(update(Job).where(Job.id == self.job_id).values(
                    progress_done=self.done, progress_total=self.total, updated_at=utcnow()))
        except Exception:       # progress is a courtesy: never fail the job for it
            log.warning("job %s: progress not recorded", self.job_id, exc_info=True)

    def step(self, n: int = 1) -> None:
        self.set(self.done + n)


# kind -> function(job, progress) -> Result | None; filled by patrol/jobs/kinds.py
KINDS: dict[str, Callable[[Job, Progress], Result | None]] = {}


def kind(name: str):
    def register(fn):
        KINDS[name] = fn
        return fn
    return register


# --- making jobs --------------------------------------------------------------------

def submit(kind_: str, *, user, title: str, params: dict[str, Any], total: int = 0,
           enqueue: bool = True) -> Job:
    """A new queued job of `user`, committed, and its message on the queue."""
    from . import enqueue_job, kinds  # noqa: F401  (registers the kinds)
    if kind_ not in KINDS:
        raise ValueError(f"unknown job kind {kind_!r}")
    now = utcnow()
    job = Job(kind=kind_, state="queued", title=title[:200], params=params,
              progress_total=total, created_by_id=user.id if user is not None else None,
              max_attempts=current_app.config.get("JOB_MAX_ATTEMPTS", 4),
              created_at=now, updated_at=now, next_try_at=now)
    db.session.add(job)
    db.session.commit()
    if enqueue:
        enqueue_job(job.id)
    return job


def may_see(user, job: Job) -> bool:
    """A job is its owner's; admins see every one."""
    from ..lifecycle import Role
    return user.role == Role.ADMIN or (job.created_by_id is not None
                                       and job.created_by_id == user.id)


def retry(job: Job) -> bool:
    """A person asks for a failed job again: a fresh set of tries."""
    from . import enqueue_job
    if job.state != "failed":
        return False
    now = utcnow()
    job.state, job.attempts, job.next_try_at, job.updated_at = "queued", 0, now, now
    job.error = None
    job.progress_done = 0
    db.session.commit()
    enqueue_job(job.id)
    return True


# --- running ------------------------------------------------------------------------

def _claim(job_id: int, now: datetime) -> bool:
    """queued and due, or running with its lease run out (its worker died): ours now."""
    due = or_(Job.next_try_at.is_(None), Job.next_try_at <= now + timedelta(seconds=1))
    result = cast("CursorResult[Any]", db.session.execute(
        update(Job).where(Job.id == job_id, or_(
            and_(Job.state == "queued", due),
            and_(Job.state == "running", Job.lease_until < now)))
        .values(state="running", attempts=Job.attempts + 1, lease_until=now + LEASE,
                started_at=db.func.coalesce(Job.started_at, now), updated_at=now)
        .execution_options(synchronize_session=False)))
    db.session.commit()
    return bool(result.rowcount)


def _result_name(job: Job, filename: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename)[-80:] or "result"
    return f"{RESULT_PREFIX}{job.id}/{job.attempts}-{safe}"


def execute(job_id: int) -> float | None:
    """Run one job if it is ours to run. Returns the seconds to wait before the next try
    when it failed with tries left, else None."""
    from . import kinds  # noqa: F401  (registers the kinds)
    from ..services.photo_store import storage
    cfg = current_app.config
    try:
        if not _claim(job_id, utcnow()):
            return None          # done, failed, not due, or another worker has it
        job = db.session.get(Job, job_id)
        if job is None:
            return None
        progress = Progress(job.id)
        progress.total = job.progress_total
        try:
            handler = KINDS[job.kind]
            result = handler(job, progress)
            if result is not None and result.data is not None:
                key = _result_name(job, result.filename)
                storage().put(key, result.data)
                job.result_key, job.result_name = key, result.filename[:200]
                job.result_type = result.mimetype[:100]
                job.params = {**(job.params or {}), "once": result.once}
            if result is not None and result.note:
                job.result_note = result.note[:300]
        except Exception as exc:
            db.session.rollback()
            log.exception("job %s (%s) failed, attempt %s", job_id, job.kind, job.attempts)
            final = isinstance(exc, Permanent)      # its message is for people, as is
            return _failed(job_id, str(exc) if final else f"{type(exc).__name__}: {exc}", cfg,
                           final=final)
        now = utcnow()
        job.state, job.finished_at, job.updated_at, job.lease_until = "done", now, now, None
        job.error = None
        job.progress_total = progress.total or job.progress_total
        job.progress_done = job.progress_total
        db.session.commit()
        for callback in (result.after_commit if result else []):
            try:
                callback()
            except Exception:
                log.exception("job %s: an after-commit step failed", job_id)
        return None
    finally:
        db.session.remove()


def _failed(job_id: int, error: str, cfg, *, final: bool = False) -> float | None:
    job = db.session.get(Job, job_id)
    if job is None:
        return None
    now = utcnow()
    job.error, job.updated_at, job.lease_until = error[:2000], now, None
    if final or job.attempts >= job.max_attempts:
        job.state, job.finished_at = "failed", now
        db.session.commit()
        return None
    wait = notify_rules.backoff(job.attempts, cfg.get("JOB_BACKOFF", timedelta(seconds=30)),
                                timedelta(hours=1))
    job.state, job.next_try_at = "queued", now + wait
    db.session.commit()
    return wait.total_seconds()


# --- notifications and the periodic sweep -------------------------------------------

def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Try these deliveries now. Each is claimed first (services/notify.attempt), so a
    message that arrives twice, or a sweep at the same moment, sends nothing twice."""
    from ..services import notify
    counts = {"sent": 0, "retry": 0, "failed": 0}
    try:
        for delivery_id in delivery_ids:
            try:
                outcome = notify.attempt(delivery_id, utcnow())
            except Exception:
                db.session.rollback()
                log.exception("delivery %s could not be attempted", delivery_id)
                continue
            if outcome:
                counts[outcome] += 1
    finally:
        db.session.remove()
    return counts


def sweep(now: datetime | None = None) -> list[int]:
    """The worker's periodic task (every minute; the `patrol deliver` cron line's work):
    queue `overdue` and `lookback_late`, send every due delivery (retries included); find
    jobs whose message was lost or whose worker died; forget old finished jobs. Returns
    the ids of jobs to queue again."""
    from ..services import notify
    now = now or utcnow()
    again: list[int] = []
    try:
        try:
            notify.enqueue_overdue(now)
            notify.enqueue_lookback_late(now)
            db.session.commit()
            notify.deliver_due(now)
        except Exception:
            db.session.rollback()
            log.exception("notification sweep failed")
        stale = db.session.execute(db.select(Job.id).where(or_(
            and_(Job.state == "queued", Job.next_try_at <= now - STALE),
            and_(Job.state == "running", Job.lease_until < now)))).scalars().all()
        again = list(stale)
        forget_old(now)
    finally:
        db.session.remove()
    return again


def forget_old(now: datetime) -> int:
    from ..services.photo_store import storage
    keep = current_app.config.get("JOB_KEEP", timedelta(days=7))
    old = db.session.execute(db.select(Job).where(
        Job.state.in_(("done", "failed")), Job.finished_at < now - keep)).scalars().all()
    for job in old:
        if job.result_key:
            try:
                storage().delete(job.result_key)
            except Exception:
                log.warning("job %s: result %s not deleted", job.id, job.result_key)
                continue
        db.session.delete(job)
    db.session.commit()
    return len(old)
