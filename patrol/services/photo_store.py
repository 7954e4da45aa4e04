"""Store processed photos: files first (atomic), then the row, in the caller's transaction.

A crash between the two leaves at worst a file with no row, which
`patrol photos-orphans` reports and, with --fix, removes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from ..extensions import db
from ..models import Photo, utcnow
from . import photos as pipeline
from .storage import LocalStorage


# Photos uploaded for a form stay unclaimed while the form is being filled in or
# waits in a phone's outbox; after this long nobody is coming back for them.
PENDING_GRACE = timedelta(days=8)


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


@dataclass
class Orphans:
    stray_files: list          # files no row points at (e.g. a crash before commit)
    missing: list              # (photo id, key) rows whose file is gone
    abandoned: list            # photo ids uploaded for a form that was never sent

    def __bool__(self):
        return bool(self.stray_files or self.missing or self.abandoned)


def find_orphans(now=None, pending_for=PENDING_GRACE) -> Orphans:
    store = storage()
    referenced, missing, abandoned = set(), [], []
    cutoff = (now or utcnow()) - pending_for
    for photo in db.session.execute(db.select(Photo)).scalars():
        if photo.item_id is None and photo.created_at < cutoff:
            abandoned.append(photo.id)
            continue
        for key in (photo.key, photo.thumb_key):
            referenced.add(key)
            if not store.exists(key):
                missing.append((photo.id, key))
    # Temporary files belong to writes in progress; an atomic rename finishes them.
    stray = sorted(k for k in store.keys() if k not in referenced and "/.tmp-" not in f"/{k}")
    return Orphans(stray, missing, abandoned)


def remove_orphans(orphans: Orphans):
    """Drop abandoned and file-less rows, then every file no remaining row points at."""
    ids = set(orphans.abandoned) | {pid for pid, _ in orphans.missing}
    if ids:
        db.session.execute(db.delete(Photo).where(Photo.id.in_(ids)))
        db.session.commit()
    for key in find_orphans(pending_for=timedelta(days=36500)).stray_files:
        storage().delete(key)
