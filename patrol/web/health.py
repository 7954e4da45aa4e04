"""Liveness and readiness for load balancers and monitors; no sign-in, no data shown."""
from __future__ import annotations

import uuid

from flask import Blueprint, jsonify
from sqlalchemy import text

from ..extensions import db, limiter
from ..services.photo_store import storage

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """The process answers."""
    return jsonify(ok=True)


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """The database answers, the photo store takes a write and the job queue answers
    (SQLite file or Redis): this instance can serve."""
    checks = {"database": _check(lambda: db.session.execute(text("SELECT 1")).scalar_one()),
              "photos": _check(_store_round_trip),
              "queue": _check(_queue)}
    db.session.rollback()
    ok = all(v == "ok" for v in checks.values())
    return jsonify(ok=ok, checks=checks), (200 if ok else 503)


def _store_round_trip():
    key = f"readyz/{uuid.uuid4().hex}"
    store = storage()
    store.put(key, b"ok")
    try:
        if store.get(key) != b"ok":
            raise OSError("read back something else")
    finally:
        store.delete(key)


def _queue():
    from flask import current_app
    from ..jobs import check
    check(current_app._get_current_object())  # type: ignore[attr-defined]


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # report, never raise: this is the health page
        return f"failed: {type(exc).__name__}"
