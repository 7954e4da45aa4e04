"""Store processed photos: files first (atomic), then the row, in the caller's transaction.

A crash between the two leaves at worst a file with no row, and a crash during the
write a temporary file; `patrol photos-orphans` reports both (once older than the
write grace) and, with --fix, removes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app

from ..extensions import db
from ..models import Photo, utcnow
from . import photos as pipeline
from .storage import from_config


# Photos uploaded for a form stay unclaimed while the form is being filled in or
# waits in a phone's outbox; after this long nobody is coming back for them.
PENDING_GRACE = timedelta(days=8)
# Files are written before their row is committed: a file this young may belong to an
# upload still in progress, so it is not called a stray (and never deleted) yet.
WRITE_GRACE = timedelta(minutes=15)
# Keys in the store that are not photos, each kept and removed by its own owner.
NOT_PHOTOS = ("jobs/", "imports/")


def storage():
    app = current_app._get_current_object()
    if "patrol.storage" not in app.extensions:
        app.extensions["patrol.storage"] = from_config(app.config)   # local or S3 (settings)
    return app.extensions["patrol.storage"]


def save_upload(data: bytes, *, uploader, kind: str, lat=None, lon=None) -> Photo:
    """Validate, re-encode and store one upload. Raises PhotoRejected.

    `uploader` None: a resident's photo (no account); the caller sets its
    `resident_report_id`."""
    cfg = current_app.config
    processed = pipeline.process(data, max_bytes=cfg["MAX_PHOTO_BYTES"], tz=cfg["TIMEZONE"])
    key, thumb_key = pipeline.keys_for(processed)
    store = storage()
    store.put(key, processed.full)
    store.put(thumb_key, processed.thumb)
    photo = Photo(uploader_id=uploader.id if uploader is not None else None, kind=kind,
                  key=key, thumb_key=thumb_key, width=processed.width, height=processed.height,
                  size=len(processed.full),
                  taken_at=processed.taken_at, lat=lat, lon=lon)
    db.session.add(photo)
    return photo


@dataclass
class Orphans:
    stray_files: list          # files no row points at (e.g. a crash before commit)
    missing: list              # (photo id, key) rows whose file is gone
    abandoned: list            # photo ids uploaded for a form that was never sent
    # temporary files of writes that never finished (the process was killed mid-write)
    unfinished: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.stray_files or self.missing or self.abandoned or self.unfinished)


def _is_temporary(key: str) -> bool:
    """LocalStorage.put writes to a `.tmp-*` file next to the final one, then renames it."""
    return key.rsplit("/", 1)[-1].startswith(".tmp-")


def _written_before(store, key: str, cutoff) -> bool:
    try:
        return store.modified_at(key) < cutoff
    except FileNotFoundError:  # renamed (a write just finished) or deleted since listed
        return False


def find_orphans(now=None, pending_for=PENDING_GRACE, written_for=WRITE_GRACE) -> Orphans:
    """`now` (the app's clock) ages the rows; files are aged by the storage's own clock,
    which set their times."""
    store = storage()
    now = now or utcnow()
    referenced, missing, abandoned = set(), [], []
    cutoff = now - pending_for
    for photo in db.session.execute(db.select(Photo)).scalars():
        # A resident's photo belongs to its report (services/residents.py) until triage.
        if (photo.item_id is None and photo.resident_report_id is None
                and photo.created_at < cutoff):
            abandoned.append(photo.id)
            continue
        for key in (photo.key, photo.thumb_key):
            referenced.add(key)
            if not store.exists(key):
                missing.append((photo.id, key))
    # A temporary file belongs to a write in progress (an atomic rename finishes it) until
    # it is as old as the write grace: then its writer was killed and nobody will finish it.
    stray: list[str] = []
    unfinished: list[str] = []
    written_cutoff = store.now() - written_for
    # jobs/: the job queue's results (patrol/jobs/runner.py), which it deletes itself;
    # imports/: district imports between preview and confirm (services/district_uploads),
    # which that module removes after a day.
    for key in sorted(k for k in store.keys()
                      if k not in referenced and not k.startswith(NOT_PHOTOS)):
        if _written_before(store, key, written_cutoff):
            (unfinished if _is_temporary(key) else stray).append(key)
    return Orphans(stray, missing, abandoned, unfinished)


def remove_orphans(orphans: Orphans):
    """Drop abandoned and file-less rows, then the stray files and the files of the
    dropped rows, unless a remaining row points at them (files are shared by content)."""
    ids = set(orphans.abandoned) | {pid for pid, _ in orphans.missing}
    freed = set()
    if ids:
        rows = db.session.execute(db.select(Photo.key, Photo.thumb_key).where(Photo.id.in_(ids)))
        freed = {key for row in rows for key in row}
        db.session.execute(db.delete(Photo).where(Photo.id.in_(ids)))
        db.session.commit()
    referenced = {key for row in db.session.execute(db.select(Photo.key, Photo.thumb_key))
                  for key in row}
    for key in (set(orphans.stray_files) | set(orphans.unfinished) | freed) - referenced:
        storage().delete(key)
