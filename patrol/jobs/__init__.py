"""The job queue: Huey, on a SQLite file by default and on Redis to scale (docs/jobs.md).

Web workers never do long or retried work themselves: they write a `job` row (or, for a
notification, a `delivery` row in the same transaction as the report) and put a message
on the queue; `patrol worker` (which `make run` starts beside gunicorn) takes it.

- PATROL_QUEUE=embedded: Huey's SqliteHuey, `queue.db` in the instance folder. No other
  service; one machine.
- PATROL_QUEUE=redis: Huey's RedisHuey on PATROL_REDIS_URL; any number of app servers
  and workers share it.

A message carries only an id. The database row is the truth: a message delivered twice,
or a job queued twice, runs once (the row is claimed with one UPDATE), and a worker that
dies mid-job leaves a row whose lease runs out and which the periodic sweep queues again.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from huey import RedisHuey, SqliteHuey, crontab
from huey.api import Huey

log = logging.getLogger(__name__)
EXT = "patrol.huey"
_build_lock = threading.Lock()


def queue(app: Flask | None = None) -> Huey:
    """This app's Huey instance (built on first use, one per app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    huey = app.extensions.get(EXT)
    if huey is None:
        with _build_lock:
            huey = app.extensions.get(EXT)
            if huey is None:
                huey = app.extensions[EXT] = _build(app)
    return huey


def _build(app: Flask) -> Huey:
    cfg = app.config
    name = cfg.get("QUEUE_NAME") or "patrol"
    huey: Huey
    if cfg.get("QUEUE") == "redis":
        huey = RedisHuey(name, url=cfg["REDIS_URL"], results=False, utc=True)
    else:
        path = Path(cfg["INSTANCE_DIR"]) / "queue.db"
        huey = SqliteHuey(name, filename=str(path), results=False, utc=True, timeout=10)
    _register(huey, app)
    return huey


def _register(huey: Huey, app: Flask) -> None:
    """The queue's tasks, bound to this app. Each opens its own app context and session."""
    from . import runner

    @huey.task(name="patrol.run_job")
    def run_job(job_id: int) -> None:
        with app.app_context():
            delay = runner.execute(job_id)
        if delay is not None:       # failed, tries left: back-off, then again
            run_job.schedule((job_id,), delay=delay)

    @huey.task(name="patrol.deliver")
    def deliver(delivery_ids: list[int]) -> None:
        with app.app_context():
            runner.deliver(delivery_ids)

    @huey.periodic_task(crontab(), name="patrol.sweep")      # every minute
    def sweep() -> None:
        with app.app_context():
            again = runner.sweep()
        for job_id in again:
            run_job(job_id)

    huey.patrol_tasks = {"run_job": run_job, "deliver": deliver,  # type: ignore[attr-defined]
                         "sweep": sweep}


def task(name: str, app: Flask | None = None) -> Any:
    return queue(app).patrol_tasks[name]  # type: ignore[attr-defined]


def enqueue_job(job_id: int) -> bool:
    """Put a job's message on the queue. A queue that is down loses nothing: the job's
    row stays queued and the worker's sweep queues it again."""
    try:
        task("run_job")(job_id)
        return True
    except Exception:
        log.exception("could not queue job %s (the sweep will)", job_id)
        return False


def enqueue_deliveries(app: Flask, delivery_ids: list[int]) -> bool:
    """After a commit: ask the worker to send these deliveries now. If the queue is
    down they wait, pending, for the worker's sweep (every minute)."""
    try:
        task("deliver", app)(list(delivery_ids))
        return True
    except Exception:
        log.exception("could not queue deliveries %s (the sweep will send them)", delivery_ids)
        return False


def consumer(app: Flask, workers: int | None = None, *, periodic: bool = True):
    """A Huey consumer for this app (threads). `patrol worker` runs it; tests start it."""
    huey = queue(app)
    embedded = app.config.get("QUEUE") != "redis"
    return huey.create_consumer(workers=workers or app.config.get("QUEUE_WORKERS", 2),
                                worker_type="thread", periodic=periodic,
                                # SQLite is polled: at most a second between looks.
                                max_delay=1.0 if embedded else 10.0, initial_delay=0.1,
                                check_worker_health=True)


def run_queued(app: Flask, *, limit: int = 1000) -> int:
    """Run, in this thread, every message waiting on the queue (and any scheduled one now
    due), through Huey's own execute(): the CLI's `--wait` and tests. Returns how many."""
    huey = queue(app)
    done = 0
    while done < limit:
        for due in huey.read_schedule():
            huey.enqueue(due)
        message = huey.dequeue()
        if message is None:
            break
        huey.execute(message)
        done += 1
    return done


def check(app: Flask) -> None:
    """For /readyz: the queue's storage answers (raises if not)."""
    huey = queue(app)
    huey.pending_count()
