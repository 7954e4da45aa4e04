"""Store processed photos: files first (atomic), then the row, in the caller's transaction.

A crash between the two leaves at worst a file with no row, which
`patrol photos-orphans` reports and, with --fix, removes.
"""
from __future__ import annotations

from flask import current_app

from ..extensions import db
from ..models import Photo
from . import photos as pipeline
from .storage import LocalStorage


def storage():
    app = current_app._get_current_object()
    if "patrol.storage" not in app.extensions:
        app.extensions["patrol.storage"] = LocalStorage(app.config["PHOTO_DIR"])
    return app.extensions["patrol.storage"]


def save_upload(data: bytes, *, uploader, kind: str, lat=None, lon=None) -> Photo:
    """Validate, re-encode and store one upload. Raises PhotoRejected."""
    cfg = current_app.config
    processed = pipeline.process(data, max_bytes=cfg["MAX_PHOTO_BYTES"], tz=cfg["TIMEZONE"])
    key, thumb_key = pipeline.keys_for(processed)
    store = storage()
    store.put(key, processed.full)
    store.put(thumb_key, processed.thumb)
    photo = Photo(uploader_id=uploader.id, kind=kind, key=key, thumb_key=thumb_key,
                  width=processed.width, height=processed.height, size=len(processed.full),
                  taken_at=processed.taken_at, lat=lat, lon=lon)
    db.session.add(photo)
    return photo


def find_orphans():
    """Files without rows, and rows whose files are missing."""
    store = storage()
    referenced = set()
    missing = []
    for photo in db.session.execute(db.select(Photo)).scalars():
        for key in (photo.key, photo.thumb_key):
            referenced.add(key)
            if not store.exists(key):
                missing.append((photo.id, key))
    stray = sorted(k for k in store.keys() if k not in referenced and "/.tmp-" not in f"/{k}")
    return stray, missing
