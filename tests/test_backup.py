"""`patrol backup` under write load, `patrol restore` elsewhere: every item acknowledged
(committed) before the backup started is there, with its photos, byte for byte.

On SQLite and on PostgreSQL (PATROL_TEST_PG_URL, set by `make test`), each with photos in
a local folder and in an S3-compatible store (moto in server mode on loopback, started
by tests/test_storage_s3.py's fixture). A writer thread keeps reporting items with
photos through the services the whole time; the backup is held, after its snapshot,
until the writer has committed more, so writes certainly overlap it (no sleeps, no
reading of the clock).
"""
from __future__ import annotations

import json
import tarfile
import threading
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from patrol.extensions import db
from patrol.models import Compound, Item, Photo, User, utcnow
from patrol.services import backup as backup_service
from patrol.services import items as item_service
from patrol.services.photo_store import save_upload, storage
from tests.conftest import PG_URL, make_app
from tests.factories import build_world, jpeg_bytes
from tests.test_storage_s3 import raw_client, s3_server, s3_settings  # noqa: F401 (fixture)

WAIT = 60   # seconds: only a safety net against a hung thread, never a measurement


_made_databases: set[str] = set()


def _pg_database(name: str) -> str:
    """A database of that name next to the test one (the role may create them), made once
    a session, so these tests neither disturb nor are disturbed by tests on the shared
    one. make_app empties its schema for each test."""
    base = make_url(PG_URL)
    if name not in _made_databases:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        _made_databases.add(name)
    return base.set(database=name).render_as_string(hide_password=False)


class Installation:
    """One place to back up from or restore into: a database and a photo store."""

    def __init__(self, engine, store, tmp_path, name, s3_endpoint=None):
        self.engine = engine
        self.dir = tmp_path / name
        self.dir.mkdir()
        config = {}
        url = None
        if engine == "postgresql":
            url = _pg_database(f"patrol_backup_{name}")
        if store == "s3":
            bucket = f"patrol-{name}-{uuid.uuid4().hex[:8]}"
            raw_client(s3_endpoint).create_bucket(Bucket=bucket)
            config = s3_settings(s3_endpoint, bucket)
        self.app = make_app(self.dir, url, **config)

    def close(self):
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(params=[
    ("sqlite", "local"), ("sqlite", "s3"),
    pytest.param(("postgresql", "local"), marks=pytest.mark.pg),
    pytest.param(("postgresql", "s3"), marks=pytest.mark.pg),
], ids=["sqlite-local", "sqlite-s3", "postgresql-local", "postgresql-s3"])
def setup(request, tmp_path):
    engine, store = request.param
    if engine == "postgresql" and not PG_URL:
        pytest.skip("no PostgreSQL server (run `make test`)")
    endpoint = request.getfixturevalue("s3_server") if store == "s3" else None
    made = []

    def installation(name):
        made.append(Installation(engine, store, tmp_path, name, endpoint))
        return made[-1]

    yield installation
    for inst in made:
        inst.close()


class Writer(threading.Thread):
    """Reports items with a unique photo each, through the services, until stopped."""

    def __init__(self, app, world):
        super().__init__(daemon=True)
        self.app, self.world = app, world
        self.acked: list[tuple[int, str, str]] = []   # (item id, photo key, thumb key)
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.error: BaseException | None = None

    def run(self):
        try:
            with self.app.app_context():
                from patrol.web.helpers import hazard_form
                user = db.session.get(User, self.world.vol_a)
                compound = db.session.get(Compound, self.world.a1)
                n = 0
                while not self.stop.is_set() and n < 5000:
                    n += 1
                    photo = save_upload(jpeg_bytes(size=(320, 240),
                                                   color=(n % 256, (n // 256) % 256, 99)),
                                        uploader=user, kind="before")
                    item = item_service.report(form=hazard_form(), compound=compound,
                                               reporter=user, clean={"category": "flyers"},
                                               photos=[photo], now=utcnow())
                    db.session.commit()          # acknowledged from here on
                    with self.progress:
                        self.acked.append((item.id, photo.key, photo.thumb_key))
                        self.progress.notify_all()
                db.session.remove()
        except BaseException as exc:   # reported by the test
            self.error = exc
            with self.progress:
                self.progress.notify_all()

    def wait_for(self, count):
        with self.progress:
            assert self.progress.wait_for(lambda: len(self.acked) >= count or self.error,
                                          timeout=WAIT), "the writer stalled"
        assert self.error is None, self.error
        return len(self.acked)


def _hold_after_snapshot(app, writer, more):
    """The backup reads photos after its database snapshot: the first read waits until the
    writer has committed `more` items, which the snapshot cannot hold."""
    with app.app_context():
        store = storage()
    real_get, held = store.get, []

    def get(key):
        if not held:
            held.append(writer.wait_for(len(writer.acked) + more))
        return real_get(key)

    store.get = get
    return held


@pytest.mark.parametrize("form", ["folder", "tar"])
def test_backup_under_write_load_restores_every_acknowledged_item(setup, tmp_path, form):
    source = setup("src")
    with source.app.app_context():
        world = build_world()
        db.session.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) "
                                "NOT NULL PRIMARY KEY)"))
        db.session.execute(text("INSERT INTO alembic_version VALUES ('test_head_1')"))
        db.session.commit()
    writer = Writer(source.app, world)
    writer.start()
    try:
        writer.wait_for(5)
        with writer.progress:
            before = list(writer.acked)          # acknowledged before the backup starts
        held = _hold_after_snapshot(source.app, writer, more=3)
        target = tmp_path / ("backup.tar" if form == "tar" else "backup")
        result = source.app.test_cli_runner().invoke(args=["backup", str(target)])
        assert result.exit_code == 0, result.output
        assert held, "the backup read no photo"
        writer.wait_for(len(writer.acked) + 2)   # still writing after the backup
    finally:
        writer.stop.set()
        writer.join(WAIT)
    assert writer.error is None, writer.error
    assert "backup written to" in result.output

    if form == "tar":
        with tarfile.open(target) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
    else:
        manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["revision"] == "test_head_1"
    assert manifest["engine"] == source.engine
    assert manifest["missing_photos"] == []
    backed_up_items = manifest["counts"]["item"]
    assert len(before) <= backed_up_items < len(writer.acked)   # a snapshot mid-load

    copy = setup("dst")
    restored = copy.app.test_cli_runner().invoke(args=["restore", str(target)])
    assert restored.exit_code == 0, restored.output
    assert "checksums: all match" in restored.output
    with source.app.app_context():
        source_store = storage()
        originals = {k: source_store.get(k) for _, key, thumb in before for k in (key, thumb)}
    with copy.app.app_context():
        store = storage()
        for item_id, key, thumb in before:
            assert db.session.get(Item, item_id) is not None, f"item {item_id} lost"
            photo = db.session.execute(db.select(Photo).where(Photo.item_id == item_id)).scalar_one()
            assert (photo.key, photo.thumb_key) == (key, thumb)
            assert store.get(key) == originals[key] and store.get(thumb) == originals[thumb]
        # Consistent: the copy has exactly the snapshot's items, and every photo row of
        # it has its file.
        assert db.session.execute(db.select(db.func.count(Item.id))).scalar_one() == backed_up_items
        for photo in db.session.execute(db.select(Photo)).scalars():
            assert store.exists(photo.key) and store.exists(photo.thumb_key)
        assert db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one() \
            == "test_head_1"
        assert set(store.keys()) == set(manifest["photos"])

    # Never over an installation in use: the restored one now has rows and files.
    again = copy.app.test_cli_runner().invoke(args=["restore", str(target)])
    assert again.exit_code != 0 and "empty installation" in again.output
    assert "the database has rows" in again.output


def test_restore_refuses_a_store_with_files_and_a_damaged_backup(tmp_path):
    source = make_app(tmp_path / "src")
    with source.app_context():
        w = build_world()
        photo = save_upload(jpeg_bytes(), uploader=db.session.get(User, w.vol_a), kind="before")
        db.session.commit()
        key = photo.key
    target = tmp_path / "backup"
    assert source.test_cli_runner().invoke(args=["backup", str(target)]).exit_code == 0
    # A folder that is not empty is not overwritten.
    refused = source.test_cli_runner().invoke(args=["backup", str(target)])
    assert refused.exit_code != 0 and "not an empty folder" in refused.output

    (tmp_path / "dst").mkdir()
    copy = make_app(tmp_path / "dst")
    with copy.app_context():
        storage().put("00/stray.jpg", b"x")
    refused = copy.test_cli_runner().invoke(args=["restore", str(target)])
    assert refused.exit_code != 0 and "photo store has files" in refused.output
    with copy.app_context():
        storage().delete("00/stray.jpg")
        assert db.session.execute(db.select(db.func.count(User.id))).scalar_one() == 0

    (target / "photos" / key).write_bytes(b"not the photo")
    damaged = copy.test_cli_runner().invoke(args=["restore", str(target)])
    assert damaged.exit_code != 0 and "damaged" in damaged.output
    with copy.app_context():
        assert list(storage().keys()) == []
    for app in (source, copy):
        with app.app_context():
            db.engine.dispose()


def test_a_backup_of_a_row_whose_file_is_gone_says_so(tmp_path):
    app = make_app(tmp_path)
    with app.app_context():
        w = build_world()
        photo = save_upload(jpeg_bytes(), uploader=db.session.get(User, w.vol_a), kind="before")
        db.session.commit()
        storage().delete(photo.thumb_key)
        manifest = backup_service.backup(tmp_path / "b")
        assert manifest["missing_photos"] == [photo.thumb_key]
        assert list(manifest["photos"]) == [photo.key]
        db.engine.dispose()
