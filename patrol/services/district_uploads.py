"""The district import from the web page: preview first, then apply exactly what was shown.

An uploaded workbook is read (importer.read) and planned (district_import.plan); nothing
is written. If the plan is clean and within the user's scope, the file is kept in the
shared store (the photo store: a folder or a bucket, under `imports/`, so every app
instance and worker reads it) under a random 192-bit name, with a record of who uploaded
it and a fingerprint of the plan that was shown. Confirming (a job, run by the worker)
reads that same file again, plans again and refuses if the fingerprint differs (the
database changed in between); nothing the browser sends except the file's name is used.
Confirms of one uploader run one at a time and claim the upload first, so a second
confirm (a double tap, a reload, another tab) finds nothing to apply.

Who may import what (docs: README "From an empty database to a real district"):

- admins: anything;
- community staff: rows of their own community only. Every row of 街道社区 and 小区 must
  name their street and community; every row of 楼栋 and 志愿者 their community (and
  street, if given). They may add property companies but not change one already in the
  system, may not move a volunteer from another community (same phone number), and may
  not import 账号 (accounts: an admin's job). A file that reaches further is refused as a
  whole, listing what is outside. While the import is applied, a check on every row the
  database is about to write (before_flush) refuses anything outside the community,
  whatever the reading of the sheets above may have missed.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, NoReturn

from sqlalchemy import event

from ..extensions import db
from ..importer import normalise
from ..importer.read import Refused, read
from ..importer.sheets import EXAMPLE
from ..lifecycle import Role
from ..models import Building, Community, Company, Compound, Street, Team, User, utcnow
from . import district_import, row_locks

KEEP = timedelta(hours=24)          # uploads never confirmed are removed after this
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
_EXAMPLE = normalise.text(EXAMPLE)


class ImportGone(Exception):
    """No such upload for this user: never made, already confirmed, or too old."""


class ImportChanged(Exception):
    """The plan is not the one previewed (the database or the rules changed)."""


@dataclass(frozen=True)
class Refusal:
    """Why a user may not import a file, for the page to say in words. Codes: "role"
    (neither admin nor staff of a community), "places" (own, others: rows of other
    communities), "accounts" (rows: the 账号 sheet), "volunteers" (rows: volunteers of
    another community), "companies" (changes: to existing companies), "outside" (the
    check on what is about to be written)."""
    code: str
    params: dict = field(default_factory=dict, hash=False)


class OutOfScope(Exception):
    """The import would write outside the user's community; `refusals` say what."""

    def __init__(self, refusals: list[Refusal]):
        super().__init__(", ".join(r.code for r in refusals))
        self.refusals = refusals


@dataclass
class Preview:
    filename: str
    refused: str | None = None                   # the importer's message (Chinese)
    plan: district_import.Plan | None = None
    out_of_scope: list[Refusal] = field(default_factory=list)
    fingerprint: str = ""
    token: str | None = None                     # set when kept for confirming

    @property
    def ok(self) -> bool:
        return self.refused is None and self.plan is not None and self.plan.ok \
            and not self.out_of_scope


@dataclass
class Applied:
    summary: str
    new: dict
    changed: dict
    compound_ids: list[int]


def may_import(user) -> bool:
    return user.role == Role.ADMIN or (user.role == Role.STAFF and user.community_id is not None)


# --- preview --------------------------------------------------------------------------

def preview(data: bytes, filename: str, user) -> Preview:
    """Read and plan an upload; writes nothing to the database (the caller rolls back).
    A clean plan within scope is kept for confirm() and gets a token."""
    filename = _clean_name(filename)
    result = Preview(filename)
    try:
        tables = read(data, filename)
    except Refused as exc:
        result.refused = str(exc)
        return result
    result.out_of_scope = rows_out_of_scope(tables, user)
    result.plan = district_import.plan(tables)
    result.out_of_scope += _company_changes(result.plan, user)
    result.fingerprint = fingerprint(data, result.plan)
    if result.ok:
        result.token = _keep(data, filename, user, result.fingerprint)
    return result


def fingerprint(data: bytes, plan) -> str:
    """What the preview showed: the file and every count and change of its plan."""
    digest = hashlib.sha256(data).hexdigest()
    shown = json.dumps([digest, plan.new, plan.changed, plan.changes, len(plan.buildings)],
                       ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(shown.encode()).hexdigest()


# --- confirm ----------------------------------------------------------------------------

def confirm(token: str, user, progress: Callable[[int, int], None] | None = None) -> Applied:
    """Apply the upload `token` of `user`, if its plan is still the one previewed.
    Flushes; the caller commits (and then calls record_done). Raises ImportGone,
    ImportChanged or OutOfScope; nothing is written then (the caller rolls back).

    Run by the job queue's worker (jobs/kinds.py). The file is read and planned first;
    then, with the uploader's confirms one at a time (_one_at_a_time), the upload is
    claimed (a second confirm finds it claimed: ImportGone) and applied. A claimed
    upload is not applied again; record_done forgets it after the commit. `progress`
    (done, total) is told before the claim only: the claim holds SQLite's write lock."""
    step = progress or (lambda done, total: None)
    _meta(token, user, META)
    try:
        data = _store().get(_key(token, UPLOAD))
    except FileNotFoundError:
        raise ImportGone() from None
    meta = _meta(token, user, META)
    step(1, 4)
    try:
        tables = read(data, meta["filename"])
    except Refused:
        _refuse(token, ImportChanged())
    step(2, 4)
    problems = rows_out_of_scope(tables, user)
    plan = district_import.plan(tables)
    problems += _company_changes(plan, user)
    if problems:
        _refuse(token, OutOfScope(problems))
    if not plan.ok or fingerprint(data, plan) != meta["fingerprint"]:
        _refuse(token, ImportChanged())
    step(3, 4)
    _one_at_a_time(user)
    pending(token, user)            # again, now that no other confirm of it runs
    _store().put(_key(token, CLAIMED), b"")
    try:
        with _watch_writes(user) as created:
            _check_buildings(plan, user)
            district_import.apply(plan)
            db.session.flush()
    except OutOfScope:
        _forget(token, UPLOAD, META)        # as refused at the preview: upload again
        raise
    except Exception:
        _forget(token, CLAIMED)             # rolled back: it may be confirmed again
        raise
    return Applied(plan.summary(), dict(plan.new), dict(plan.changed),
                   [c.id for c in created])


def _refuse(token: str, exc: Exception) -> NoReturn:
    """A confirm refused: the upload is forgotten (upload again). Unless another confirm
    of it has just claimed it, and its import is what changed the plan: then this one
    has nothing to do. (A confirm writes `claimed` before its commit and removes it
    only after writing `done.json`: one of the two is there.)"""
    store = _store()
    if store.exists(_key(token, CLAIMED)) or store.exists(_key(token, DONE)):
        raise ImportGone()
    _forget(token, UPLOAD, META)
    raise exc


def record_done(token: str, user, applied: Applied):
    """After the caller's commit: what was imported, for the done page and its posters;
    the upload itself is forgotten."""
    _put_json(_key(token, DONE), {
        "user": user.id, "summary": applied.summary, "new": applied.new,
        "changed": applied.changed, "compounds": applied.compound_ids,
        "at": utcnow().isoformat()})
    _forget(token, UPLOAD, META, CLAIMED)


def done(token: str, user) -> dict:
    """The record of a confirmed import of `user`; ImportGone if there is none."""
    return _meta(token, user, DONE)


# --- who may import what ----------------------------------------------------------------

def _place(street: str, community: str) -> str:
    return f"{street} · {community}" if street else community


def own_place(user) -> str:
    """A staff member's street and community, as the page and the refusals name them."""
    own = db.session.get(Community, user.community_id) if user.community_id else None
    return _place(own.street.name if own.street else "", own.name) if own else ""


def rows_out_of_scope(tables, user) -> list[Refusal]:
    """Why `user` may not import these tables (empty: they may). Admins may import
    anything, staff their own community's rows (module docstring)."""
    if user.role == Role.ADMIN:
        return []
    if not may_import(user):
        return [Refusal("role")]
    own = db.session.get(Community, user.community_id)
    if own is None:         # their community is gone: they are staff of none
        return [Refusal("role")]
    own_street = own.street.name if own.street else ""
    others, accounts_rows = [], []
    phones: dict[str, int] = {}     # volunteer's phone → its first row

    def other(place):
        if place not in others:
            others.append(place)

    for name, table in tables.items():
        for number, row, raw in _rows(table):
            if name in ("街道社区", "小区"):
                if (row.get("街道", ""), row.get("社区", "")) != (own_street, own.name) \
                        and row.get("社区"):
                    other(_place(row.get("街道", ""), row["社区"]))
            elif name in ("楼栋", "志愿者"):
                street = row.get("街道", "")
                if row.get("社区") and (row["社区"] != own.name
                                       or (street and street != own_street)):
                    other(_place(street, row["社区"]))
                if name == "志愿者":
                    phone = normalise.phone(raw.get("手机号"))
                    if phone:
                        phones.setdefault(phone, number)
            elif name == "账号":
                accounts_rows.append(number)
    refusals = []
    if others:
        refusals.append(Refusal("places", {"own": _place(own_street, own.name),
                                           "others": others}))
    if accounts_rows:
        refusals.append(Refusal("accounts", {"rows": _numbers(accounts_rows)}))
    moved = _volunteers_elsewhere(phones, own.id)
    if moved:
        refusals.append(Refusal("volunteers", {"rows": _numbers(moved)}))
    return refusals


def _company_changes(plan, user) -> list[Refusal]:
    if user.role == Role.ADMIN:
        return []
    lines = [line for line in plan.changes if line.startswith("物业公司：")]
    if not lines:
        return []
    return [Refusal("companies", {"changes": lines})]


def _rows(table):
    """(row number, cleaned cells, raw cells) without the template's example row."""
    first = table.sheet.required[0]
    for number, cells in table.cells():
        row = {k: normalise.text(v) for k, v in cells.items()}
        if row.get(first, "").startswith(_EXAMPLE):
            continue
        yield number, row, cells


def _numbers(rows: list[int], most: int = 20) -> str:
    shown = "、".join(str(n) for n in sorted(rows)[:most])
    return shown + ("…" if len(rows) > most else "")


def _volunteers_elsewhere(phones: dict[str, int], community_id: int) -> list[int]:
    rows, items = [], list(phones.items())
    for start in range(0, len(items), 500):
        chunk = dict(items[start:start + 500])
        for phone, where in db.session.execute(
                db.select(User.phone, User.community_id).where(
                    User.role == Role.VOLUNTEER.value, User.phone.in_(list(chunk)))):
            if where != community_id:
                rows.append(chunk[phone])
    return rows


def _community_of(obj):
    """(before, after) community ids of a compound, team or user about to be written."""
    community = obj.community
    after = community.id if community is not None else obj.community_id
    before = None if obj.id is None else obj.community_id   # the column is synced at flush
    return before, after


def _check_buildings(plan, user):
    if user.role == Role.ADMIN:
        return
    for compound, _name, _key in plan.buildings:
        if _community_of(compound)[1] != user.community_id:
            raise OutOfScope([Refusal("outside")])


@contextmanager
def _watch_writes(user):
    """Collect the compounds the import creates; for staff, refuse any write outside
    their community as the session is about to send it to the database."""
    session = db.session()
    created = []
    own = user.community_id
    staff = user.role != Role.ADMIN

    def inside(obj) -> bool:
        if isinstance(obj, Company):       # new companies: yes; changes: admins only
            return obj.id is None or not session.is_modified(obj, include_collections=False)
        if isinstance(obj, (Street, Community)):
            return obj.id is not None and not session.is_modified(obj, include_collections=False) \
                and (isinstance(obj, Street) or obj.id == own)
        if isinstance(obj, (Compound, Team)):
            before, after = _community_of(obj)
            return after == own and before in (None, own)
        if isinstance(obj, User):
            before, after = _community_of(obj)
            team_ok = obj.team is None or _community_of(obj.team)[1] == own
            return obj.role == Role.VOLUNTEER.value and after == own and before in (None, own) \
                and team_ok
        if isinstance(obj, Building):
            return obj.compound is not None and _community_of(obj.compound)[1] == own
        return not session.is_modified(obj, include_collections=False)

    def before_flush(sess, context, instances):
        for obj in list(sess.new):
            if isinstance(obj, Compound):
                created.append(obj)
        if not staff:
            return
        outside = [obj for obj in list(sess.new) + list(sess.dirty) if not inside(obj)]
        if outside:
            raise OutOfScope([Refusal("outside")])

    event.listen(session, "before_flush", before_flush)
    try:
        yield created
    finally:
        event.remove(session, "before_flush", before_flush)


# --- the kept files ---------------------------------------------------------------------
# In the shared store (services/photo_store.storage: a folder or a bucket), so any app
# instance or worker reads them: imports/<token>/upload (the file), meta.json (who, its
# name, the plan's fingerprint), claimed (a confirm has it), done.json (what was
# imported). `patrol photos-orphans` leaves imports/ alone; _clean_old removes what is
# older than KEEP, by the store's own clock.

PREFIX = "imports/"
UPLOAD, META, CLAIMED, DONE = "upload", "meta.json", "claimed", "done.json"


def _store():
    from .photo_store import storage
    return storage()


def _key(token: str, name: str) -> str:
    if not _TOKEN.match(token or ""):
        raise ImportGone()
    return f"{PREFIX}{token}/{name}"


def _clean_name(filename: str | None) -> str:
    """The upload's file name, for its extension and for showing: no path, no controls."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    return name[-120:] or "upload.xlsx"


def _put_json(key: str, value: dict) -> None:
    _store().put(key, json.dumps(value, ensure_ascii=False).encode())


def _keep(data: bytes, filename: str, user, fingerprint_: str) -> str:
    token = secrets.token_urlsafe(24)
    store = _store()
    store.put(_key(token, UPLOAD), data)
    _put_json(_key(token, META), {"user": user.id, "filename": filename,
                                  "fingerprint": fingerprint_, "at": utcnow().isoformat()})
    _clean_old(store.modified_at(_key(token, META)))
    return token


def _meta(token: str, user, name: str) -> dict:
    try:
        meta = json.loads(_store().get(_key(token, name)))
    except (FileNotFoundError, ValueError):
        raise ImportGone() from None
    if meta.get("user") != user.id:     # someone else's upload: as if it did not exist
        raise ImportGone()
    return meta


def pending(token: str, user) -> dict:
    """The record of an upload of `user` waiting for its confirm (who, the file's name);
    ImportGone if there is none (never made, confirmed already, too old, another's)."""
    meta = _meta(token, user, META)
    if _store().exists(_key(token, CLAIMED)):
        raise ImportGone()
    return meta


def _forget(token: str, *names: str) -> None:
    store = _store()
    for name in names:
        store.delete(_key(token, name))


def wait_for_others(user) -> None:
    """Wait until no other confirm of `user` is under way (their transactions ended);
    the caller rolls back afterwards. For a confirm that found its upload claimed."""
    _one_at_a_time(user)


def _one_at_a_time(user) -> None:
    """Confirms of one uploader wait for each other until the transaction ends: a lock on
    their user row (PostgreSQL), the database's write lock (SQLite). Every upload is
    confirmed by its uploader only, so two confirms of one upload meet here."""
    with db.session.no_autoflush:       # the plan's objects are written by apply() only
        row_locks.hold(User.id, user.id)


def _clean_old(now: datetime) -> None:
    """Remove uploads and records older than KEEP. `now` is the time of a file just
    written: the store's clock, which the app's clock (clock.py) may not be."""
    store = _store()
    for key in list(store.keys(PREFIX)):
        try:
            if store.modified_at(key) < now - KEEP:
                store.delete(key)
        except FileNotFoundError:
            continue
