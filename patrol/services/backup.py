"""`patrol backup` and `patrol restore`: the database and the photos it refers to.

Consistent here means: the database as it was at one instant (SQLite's online backup
API copies it in one read transaction; PostgreSQL's `pg_dump` runs on a snapshot that
this module exports and reads too), plus every photo file that this copy of the database
refers to. Photo files are written, whole, before their row is committed, and never
change (content-addressed), so each file a committed row names is in the store when the
backup reads it, after the snapshot. The app keeps running and writing meanwhile; what
it commits after the snapshot is not in the backup.

A backup is a folder (or the same folder as one `.tar` file):

    manifest.json        time, engine, migration revision, row counts, checksums
    database.sqlite3     SQLite: a copy made with the online backup API
    database.pgdump      PostgreSQL: `pg_dump --format=custom`
    photos/<key>         each photo file the database refers to

`restore` puts one into an empty installation (no rows, no photo files), after
checking every checksum.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL

from .. import settings
from ..extensions import db
from ..models import Photo
from .photo_store import storage

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
PHOTOS = "photos"

Say = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


def _quiet(_: str) -> None:
    pass


@dataclass
class Snapshot:
    engine: str
    revision: str | None
    counts: dict[str, int]
    photo_keys: list[str]


# --- backup ------------------------------------------------------------------------

def backup(target: str | Path, *, say: Say = _quiet) -> dict[str, Any]:
    """Write a backup to `target` (a new or empty folder, or a file ending in `.tar`) while
    the app may be running. Returns the manifest."""
    target = Path(target)
    as_tar = target.name.endswith(".tar")
    if as_tar and target.exists():
        raise BackupError(f"{target} exists already: give a new file name")
    if not as_tar and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not an empty folder: give a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built aside and moved into place at the end: a half-made backup never looks finished.
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        manifest = _write_backup(work, say)
        if as_tar:
            partial = target.with_name(f".{target.name}.partial")
            with tarfile.open(partial, "w") as tar:
                for path in sorted(work.rglob("*")):
                    tar.add(path, arcname=path.relative_to(work).as_posix(), recursive=False)
            _fsync_file(partial)
            os.replace(partial, target)
        else:
            if target.exists():
                target.rmdir()
            os.replace(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    say(f"backup written to {target}")
    return manifest


def _write_backup(work: Path, say: Say) -> dict[str, Any]:
    started = datetime.now(timezone.utc)
    engine_name = db.engine.dialect.name
    if engine_name == "sqlite":
        db_file = work / SQLITE_FILE
        say("database: SQLite online backup …")
        snapshot = _sqlite_backup(db_file)
    elif engine_name == "postgresql":
        db_file = work / PG_FILE
        say("database: pg_dump on an exported snapshot …")
        snapshot = _pg_backup(db_file)
    else:
        raise BackupError(f"no backup for the {engine_name} engine")
    say(f"database: {sum(snapshot.counts.values())} rows in {len(snapshot.counts)} tables, "
        f"{len(snapshot.photo_keys)} photo files referred to")
    store = storage()
    photos: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for n, key in enumerate(snapshot.photo_keys, 1):
        try:
            data = store.get(key)
        except FileNotFoundError:
            missing.append(key)   # a row whose file is gone (see `patrol photos-orphans`)
            say(f"photos: missing in the store: {key}")
            continue
        path = work / PHOTOS / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        photos[key] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        if n % 500 == 0:
            say(f"photos: {n}/{len(snapshot.photo_keys)}")
    say(f"photos: {len(photos)} copied")
    manifest = {
        "format": FORMAT,
        "app": "patrol",
        "created_at": started.isoformat(timespec="seconds"),
        "engine": snapshot.engine,
        "revision": snapshot.revision,
        "database": {"file": db_file.name, "sha256": _sha256_file(db_file),
                     "size": db_file.stat().st_size},
        "counts": snapshot.counts,
        "storage": type(store).__name__,
        "photos": photos,
        "missing_photos": missing,
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                 encoding="utf-8")
    for path in work.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    return manifest


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _sqlite_backup(dest: Path) -> Snapshot:
    source = sqlite3.connect(_sqlite_path(db.engine.url), timeout=30)
    copy = sqlite3.connect(dest)
    try:
        # pages=-1: the whole database in one step, so in one read transaction: a
        # snapshot. With WAL the app's writers go on meanwhile.
        source.backup(copy, pages=-1)
    finally:
        source.close()
    try:
        return _snapshot(lambda sql: copy.execute(sql).fetchall(),
                         {row[0] for row in copy.execute(
                             "SELECT name FROM sqlite_master WHERE type='table'")}, "sqlite")
    finally:
        copy.close()


def _snapshot(query: Callable[[str], list[Any]], present: set[str], engine: str) -> Snapshot:
    counts = {}
    for table in db.metadata.sorted_tables:
        if table.name in present:
            counts[table.name] = int(query(f'SELECT count(*) FROM "{table.name}"')[0][0])
    revision = None
    if "alembic_version" in present:
        rows = query("SELECT version_num FROM alembic_version")
        revision = rows[0][0] if rows else None
    photo = Photo.__table__.name
    keys: set[str] = set()
    if photo in present:
        for key, thumb_key in query(f'SELECT "key", thumb_key FROM "{photo}"'):
            keys.update(k for k in (key, thumb_key) if k)
    return Snapshot(engine, revision, counts, sorted(keys))


def _pg_backup(dest: Path) -> Snapshot:
    """pg_dump reads the snapshot that this transaction exported, and so do the counts
    and the photo keys: one instant for all three."""
    url = db.engine.url
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ",
                                                postgresql_readonly=True) as conn:
        with conn.begin():
            snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            present = set(inspect(conn).get_table_names())
            snap = _snapshot(lambda sql: list(conn.execute(text(sql))), present, "postgresql")
            major = _pg_major(conn)
            _run([_pg_tool("pg_dump", major), "--format=custom", "--no-owner",
                  "--no-privileges", f"--snapshot={snapshot_id}", "--file", str(dest),
                  "--dbname", _libpq_url(url)], url)
    return snap


def _pg_major(conn: Any) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _pg_tool(name: str, major: int) -> str:
    """The tool of the server's major version (Debian keeps each under its own folder),
    else a newer one, else the one on PATH."""
    folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                     key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in [Path(f"/usr/lib/postgresql/{major}/bin"), *folders]:
        version = folder.parent.name
        if (folder / name).exists() and version.isdigit() and int(version) >= major:
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install PostgreSQL's client tools "
                          f"(postgresql-client-{major})")
    return found


def _libpq_url(url: URL) -> str:
    """The SQLAlchemy URL as libpq takes it, without the password (given by PGPASSWORD)."""
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False)


def _run(command: list[str], url: URL) -> None:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")


# --- restore -----------------------------------------------------------------------

def restore(source: str | Path, *, say: Say = _quiet) -> dict[str, Any]:
    """Restore a backup (folder or `.tar`) into this installation, which must be empty.
    Returns the backup's manifest."""
    source = Path(source)
    if not source.exists():
        raise BackupError(f"{source}: no such backup")
    with _opened(source) as folder:
        manifest = _read_manifest(folder)
        say(f"backup of {manifest['created_at']}: {manifest['engine']}, revision "
            f"{manifest['revision'] or '(none)'}, {len(manifest['photos'])} photo files")
        _verify(folder, manifest)
        say("checksums: all match")
        engine_name = db.engine.dialect.name
        if engine_name != manifest["engine"]:
            raise BackupError(f"this backup is of a {manifest['engine']} database; this "
                              f"installation uses {engine_name} ({_var('database_url')})")
        _refuse_unless_empty()
        store = storage()
        # Files before rows, as the app writes them.
        for n, key in enumerate(sorted(manifest["photos"]), 1):
            store.put(key, (folder / PHOTOS / key).read_bytes())
            if n % 500 == 0:
                say(f"photos: {n}/{len(manifest['photos'])}")
        say(f"photos: {len(manifest['photos'])} restored")
        db_file = folder / manifest["database"]["file"]
        if engine_name == "sqlite":
            _sqlite_restore(db_file)
        else:
            _pg_restore(db_file)
        counts = _counts()
        wrong = {t: (n, counts.get(t)) for t, n in manifest["counts"].items() if counts.get(t) != n}
        if wrong:
            raise BackupError(f"restored row counts differ from the backup's: {wrong}")
        say(f"database: {sum(counts.values())} rows in {len(counts)} tables restored")
    return manifest


@contextmanager
def _opened(source: Path) -> Iterator[Path]:
    if source.is_dir():
        yield source
        return
    if not tarfile.is_tarfile(source):
        raise BackupError(f"{source} is neither a backup folder nor a .tar backup")
    with tempfile.TemporaryDirectory(prefix=".patrol-restore-") as tmp:
        with tarfile.open(source) as tar:
            tar.extractall(tmp, filter="data")   # no absolute paths, links or devices
        yield Path(tmp)


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder}: no readable {MANIFEST} ({exc})") from None
    if manifest.get("app") != "patrol" or manifest.get("format") != FORMAT:
        raise BackupError(f"{folder}: not a Patrol backup of format {FORMAT}")
    return manifest


def _verify(folder: Path, manifest: dict[str, Any]) -> None:
    bad = []
    if _sha256_file(folder / manifest["database"]["file"]) != manifest["database"]["sha256"]:
        bad.append(manifest["database"]["file"])
    for key, info in manifest["photos"].items():
        path = folder / PHOTOS / key
        if not path.is_file() or _sha256_file(path) != info["sha256"]:
            bad.append(f"{PHOTOS}/{key}")
    if bad:
        raise BackupError(f"the backup is damaged: {len(bad)} file(s) missing or changed, "
                          f"e.g. {', '.join(bad[:3])}")


def _counts() -> dict[str, int]:
    db.session.remove()
    present = set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        return {t.name: int(conn.execute(text(f'SELECT count(*) FROM "{t.name}"')).scalar_one())
                for t in db.metadata.sorted_tables if t.name in present}


def _refuse_unless_empty() -> None:
    """Tables may exist (`patrol db upgrade` made them) but hold no row; no photo file."""
    full = {t: n for t, n in _counts().items() if n}
    if full:
        raise BackupError("restore needs an empty installation, but the database has rows "
                          f"({', '.join(f'{t}: {n}' for t, n in sorted(full.items())[:5])}). "
                          f"Point {_var('database_url')} at a new database.")
    store = storage()
    for key in store.keys():
        raise BackupError(f"restore needs an empty installation, but the photo store has "
                          f"files (e.g. {key}). Point {_var('photo_dir')} (or "
                          f"{_var('s3_bucket')}, {_var('s3_prefix')}) at an empty one.")


def _sqlite_restore(db_file: Path) -> None:
    db.session.remove()
    db.engine.dispose()
    target = _sqlite_path(db.engine.url)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(db_file)
    dest = sqlite3.connect(target, timeout=30)
    try:
        source.backup(dest, pages=-1)   # replaces the whole (empty) database
    finally:
        dest.close()
        source.close()
    db.engine.dispose()


def _pg_restore(db_file: Path) -> None:
    db.session.remove()
    url = db.engine.url
    with db.engine.connect() as conn:
        major = _pg_major(conn)
        tables = bool(inspect(conn).get_table_names())
    db.engine.dispose()
    command = [_pg_tool("pg_restore", major), "--no-owner", "--no-privileges",
               "--exit-on-error", "--single-transaction", "--dbname", _libpq_url(url)]
    if tables:   # empty tables of `patrol db upgrade`: replaced by the backup's
        command += ["--clean", "--if-exists"]
    _run([*command, str(db_file)], url)


def _var(setting: str) -> str:
    """A setting's environment variable, for messages (settings.py names them all)."""
    return settings.PREFIX + setting.upper()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def describe(manifest: dict[str, Any]) -> str:
    """One line about a backup, for the CLI."""
    return (f"{manifest['engine']} at revision {manifest['revision'] or '(none)'}, "
            f"{sum(manifest['counts'].values())} rows, {len(manifest['photos'])} photo files"
            + (f", {len(manifest['missing_photos'])} missing" if manifest["missing_photos"] else ""))

