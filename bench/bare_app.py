"""The bare baseline of bench/submissions.py: a Flask app that takes the same multipart
report (a photo and the form's fields) in one request, writes the photo with fsync and
inserts a row. Nothing else: no sign-in, no CSRF, no checks. It is what a report costs
at the least on this machine, so Patrol's rate is read as a fraction of it.

With BARE_PIPELINE=1 it also runs Patrol's photo pipeline (re-encode, thumbnail) on the
upload and writes both files: where the pipeline alone puts the ceiling.

    BARE_DB=sqlite:////tmp/x.db BARE_DIR=/tmp/photos gunicorn 'bare_app:create_app()'
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, abort, jsonify, request
from sqlalchemy import (Column, DateTime, Integer, MetaData, String, Table, create_engine,
                        event, insert)

METADATA = MetaData()
REPORTS = Table("report", METADATA,
                Column("id", Integer, primary_key=True),
                Column("client_uuid", String(36), unique=True, nullable=False),
                Column("category", String(40), nullable=False),
                Column("note", String(500)),
                Column("photo", String(80), nullable=False),
                Column("created_at", DateTime, nullable=False))


def _engine(url: str):
    engine = create_engine(url, pool_size=8)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):   # as Patrol sets SQLite up: WAL, wait on locks
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA synchronous=NORMAL")
    return engine


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def create_app() -> Flask:
    app = Flask(__name__)
    engine = _engine(os.environ["BARE_DB"])
    METADATA.create_all(engine)
    folder = Path(os.environ["BARE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    pipeline = os.environ.get("BARE_PIPELINE") == "1"
    if pipeline:
        from patrol.services.photos import process

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.post("/report")
    def report():
        photo = request.files.get("photo")
        if photo is None or not request.form.get("category"):
            abort(400)
        data = photo.read()
        name = uuid.uuid4().hex
        if pipeline:
            done = process(data, max_bytes=20 * 1024 * 1024)
            _write(folder / f"{name}.jpg", done.full)
            _write(folder / f"{name}_t.jpg", done.thumb)
        else:
            _write(folder / f"{name}.jpg", data)
        with engine.begin() as conn:
            row = conn.execute(insert(REPORTS).values(
                client_uuid=request.form["client_uuid"], category=request.form["category"],
                note=request.form.get("note"), photo=name,
                created_at=datetime.now(timezone.utc).replace(tzinfo=None))).inserted_primary_key
        return jsonify(id=row[0]), 201

    return app
