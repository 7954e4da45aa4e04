"""List-page benchmark: 100,000 items in a file-based SQLite database, or 1,000,000 on
PostgreSQL.

    .venv/bin/python bench/lists.py            # or: make bench
    .venv/bin/python bench/lists.py --items 20000 --runs 5 --explain
    .venv/bin/python bench/lists.py --db pg --items 100000,1000000 --explain
    .venv/bin/python bench/lists.py --db postgresql://patrol:patrol@127.0.0.1/patrol_bench_lists \
        --items 100000,1000000 --profile history

With several sizes each gets its own database and each page is timed at every size in
turns, request by request (a burst of load falls on the sizes alike), with the ratio of
the largest to the smallest (issue 15 §4: ≤ 1.5, and ≤ 50 ms per page at 1,000,000
items on PostgreSQL). On PostgreSQL the rows go in by COPY (psycopg's cursor.copy), then
VACUUM ANALYZE, with default server settings; the databases are dropped at the end
unless --keep.

Seeds one community with three compounds, two property companies, the eight
hazard categories and every status (one history event per item, a photo row
for about a third of them) with bulk inserts, then times each list page through
the Flask test client as a signed-in user: the median of --runs requests after
one warm-up request. It also prints the report page's first-load weight (HTML
plus the stylesheets and scripts it links, each gzip-compressed, summed).

`--explain` prints SQLite's EXPLAIN QUERY PLAN for every statement a page runs.
Exits 1 if a list page's median exceeds --budget-ms (150 ms by default).
"""
from __future__ import annotations

import argparse
import gzip
import itertools
import json
import logging
import os
import re
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_machine import describe  # noqa: E402

from sqlalchemy import event, insert, text  # noqa: E402

from patrol import create_app  # noqa: E402
from patrol.extensions import db  # noqa: E402
from patrol.lifecycle import Status  # noqa: E402
from patrol.models import (Building, Community, Company, Compound, Item, ItemEvent,  # noqa: E402
                           Photo, Team, User, utcnow)
from patrol.services import counts as tallies  # noqa: E402

GZIP_LEVEL = 6   # a typical server setting (nginx/Caddy/whitenoise use 5–6)

# Share of items in each status: most are closed, a quarter are still open.
STATUS_WEIGHTS = {
    Status.VERIFIED: 55, Status.REJECTED: 6, Status.MERGED: 3, Status.REPORTED: 12,
    Status.ACKNOWLEDGED: 12, Status.FIXED: 7, Status.REOPENED: 5,
}
COMPOUND_WEIGHTS = (0.45, 0.25, 0.30)     # 金桂园 is the big one
PHOTO_SHARE = 0.35


# --- page weight (tests/test_page_weight.py uses this too) ----------------------------

PAGE_WEIGHT_BUDGET = 60_000   # bytes, gzip-compressed: the report page's first load


class _Assets(HTMLParser):
    """Stylesheets and scripts a page makes the browser fetch on first load."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("href") and \
                {"stylesheet", "modulepreload"} & set((a.get("rel") or "").lower().split()):
            self.urls.append(a["href"])
        elif tag == "script" and a.get("src"):
            self.urls.append(a["src"])


def gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0))


def first_load_weight(client, url: str) -> dict[str, int]:
    """{resource: gzip bytes} for the page's HTML and every stylesheet and script it
    links (for the report page: static/css/app.css and static/js/app.js at least).
    Each resource is compressed on its own, as a server would send it."""
    resp = client.get(url)
    if resp.status_code != 200:
        raise RuntimeError(f"GET {url}: {resp.status_code}")
    html = resp.get_data()
    sizes = {url: gz(html)}
    parser = _Assets()
    parser.feed(html.decode())
    for asset in dict.fromkeys(parser.urls):
        if "//" in asset:
            raise RuntimeError(f"{url} loads an external resource: {asset}")
        asset_resp = client.get(asset)
        if asset_resp.status_code != 200:
            raise RuntimeError(f"GET {asset}: {asset_resp.status_code}")
        sizes[asset.split("?", 1)[0]] = gz(asset_resp.get_data())
        asset_resp.close()
    return sizes


def sign_in(client, user_id):
    """As tests/conftest.sign_in: a password-style login id in the session."""
    with client.session_transaction() as sess:
        sess["_user_id"] = f"u:{user_id}:0"
        sess["_fresh"] = True
    return client


# --- seeding -------------------------------------------------------------------------------

def make_app(instance: Path, url: str | None = None):
    """The app on a file-based SQLite database in `instance`, or on the PostgreSQL
    database `url` (emptied first: a benchmark's own, never the tests')."""
    app = create_app({
        "INSTANCE_DIR": instance,
        "SECRET_KEY": "bench",
        "SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{instance / 'bench.db'}",
        "PHOTO_DIR": str(instance / "photos"),
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "BASE_URL": "http://bench.test",
    })
    with app.app_context():
        if url and url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.create_all()
    return app


def seed_places():
    community = Community(name="和平社区")
    other = Community(name="胜利社区")        # a second community, so scopes filter something
    companies = [Company(name="宏远物业服务有限公司"), Company(name="安居物业管理有限公司")]
    compounds = [
        Compound(name="金桂园", address="建设路12号", community=community, company=companies[0]),
        Compound(name="银杏苑", address="建设路48号", community=community, company=companies[0]),
        Compound(name="翠竹小区", address="和平路7号", community=community, company=companies[1]),
    ]
    elsewhere = Compound(name="梧桐里", community=other, company=companies[1])
    for compound, count in zip([*compounds, elsewhere], (24, 12, 16, 6), strict=True):
        compound.buildings = [Building(name=f"{n}栋", sort_key=n) for n in range(1, count + 1)]
    db.session.add_all([community, other, *companies, *compounds, elsewhere])
    db.session.flush()
    team = Team(name="第一巡查队", community_id=community.id, compounds=compounds)
    users = {
        "volunteer": User(username="volunteer", display_name="刘阿姨", role="volunteer",
                          title="片长", community_id=community.id, team=team),
        "volunteer2": User(username="volunteer2", display_name="赵师傅", role="volunteer",
                           title="志愿者", community_id=community.id, team=team),
        "staff": User(username="staff", display_name="王主任", role="staff",
                      community_id=community.id),
        "manager": User(username="manager", display_name="李经理", role="manager",
                        company=companies[0]),
        "manager2": User(username="manager2", display_name="张经理", role="manager",
                         company=companies[1]),
    }
    db.session.add_all([team, *users.values()])
    db.session.commit()
    return community, companies, compounds, elsewhere, users


def item_rows(n: int, compounds, elsewhere, users, categories, now, rng,
              profile: str = "default", backlog: int = 10_000):
    """(item, event, photo or None) for n items (2% in the other community), one 'report'
    event each and a photo row for PHOTO_SHARE of them.

    Profiles: "default" draws every status by STATUS_WEIGHTS (the open share grows with
    the items); "history" keeps a constant backlog of `backlog` open items (the last
    45 days) and makes every other item a closed one spread over the last two years."""
    reporters = [users["volunteer"].id, users["volunteer2"].id, users["staff"].id]
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    closed = [s for s in statuses if s in (Status.VERIFIED, Status.REJECTED, Status.MERGED)]
    open_ = [s for s in statuses if s not in closed]
    closed_w = [STATUS_WEIGHTS[s] for s in closed]
    open_w = [STATUS_WEIGHTS[s] for s in open_]
    places = [*compounds, elsewhere]
    place_weights = [w * 0.98 for w in COMPOUND_WEIGHTS] + [0.02]
    buildings = {c.id: [b.id for b in c.buildings] for c in places}
    # Plain values, read now: the rows are made lazily, inside the COPY, when the ORM
    # objects must not be loaded again (the load holds locks on the tables they are in).
    places = [SimpleNamespace(id=c.id, community_id=c.community_id, company_id=c.company_id)
              for c in places]
    categories = [{"code": c["code"], "deadline_hours": c["deadline_hours"],
                   "label": {"zh": c["label"]["zh"]}} for c in categories]
    return _item_rows(n, rng, profile, backlog, reporters, statuses, weights, closed, closed_w,
                      open_, open_w, places, place_weights, buildings, categories, now)


def _item_rows(n, rng, profile, backlog, reporters, statuses, weights, closed, closed_w, open_,
               open_w, places, place_weights, buildings, categories, now):
    span = timedelta(days=730)
    first_id = 1
    backlog_at = set(rng.sample(range(n), min(backlog, n))) if profile == "history" else ()
    for i in range(n):
        item_id = first_id + i
        compound = rng.choices(places, place_weights)[0]
        category = rng.choice(categories)
        if profile == "history":
            status = rng.choices(open_, open_w)[0] if i in backlog_at \
                else rng.choices(closed, closed_w)[0]
        else:
            status = rng.choices(statuses, weights)[0]
        # Open items are recent; closed ones spread over two years.
        age = span * (rng.random() ** 2) if status in (Status.VERIFIED, Status.REJECTED,
                                                      Status.MERGED) \
            else timedelta(hours=rng.uniform(1, 24 * 45))
        created = now - age
        deadline = created + timedelta(hours=category["deadline_hours"])
        if status in (Status.ACKNOWLEDGED, Status.REOPENED):
            deadline = created + timedelta(hours=rng.uniform(12, 24 * 20))
        acknowledged = created + timedelta(hours=rng.uniform(1, 20)) \
            if status not in (Status.REPORTED,) else None
        fixed = created + timedelta(hours=rng.uniform(20, 80)) \
            if status in (Status.FIXED, Status.VERIFIED) else None
        closed_at = created + timedelta(hours=rng.uniform(80, 120)) \
            if status in (Status.VERIFIED, Status.REJECTED, Status.MERGED) else None
        updated = min(now, max(t for t in (created, acknowledged, fixed, closed_at) if t))
        reporter = rng.choice(reporters)
        note = f"{category['label']['zh']}：第{i % 97 + 1}处，请尽快处理"
        item = {
            "id": item_id, "compound_id": compound.id, "community_id": compound.community_id,
            "company_id": compound.company_id,
            "building_id": rng.choice(buildings[compound.id]),
            "unit": f"{rng.randint(1, 4)}单元" if rng.random() < 0.6 else None,
            "floor": str(rng.randint(1, 18)) if rng.random() < 0.5 else None,
            "category": category["code"], "note": note, "answers": {},
            "form_id": "hazard", "form_version": 1, "status": status.value,
            "deadline": deadline,
            "fixed_on_spot": status == Status.VERIFIED and rng.random() < 0.1,
            "merged_into_id": max(1, item_id - rng.randint(1, 50))
            if status == Status.MERGED and item_id > 1 else None,
            "reporter_id": reporter, "client_uuid": None, "created_at": created,
            "device_created_at": None, "acknowledged_at": acknowledged, "fixed_at": fixed,
            "closed_at": closed_at, "updated_at": updated, "version": 1,
        }
        if item["status"] == "merged" and item["merged_into_id"] is None:
            item["status"] = "rejected"
        event_row = {
            "id": item_id, "item_id": item_id, "actor_id": reporter, "at": created,
            "action": "report", "from_status": None, "to_status": "reported", "note": note,
            "reason": None, "data": {}, "presence_id": None,
        }
        photo = None
        if rng.random() < PHOTO_SHARE:
            digest = f"{rng.getrandbits(128):032x}"
            photo = {
                "item_id": item_id, "event_id": item_id, "uploader_id": reporter,
                "kind": "before", "key": f"{digest[:2]}/{digest}.jpg",
                "thumb_key": f"{digest[:2]}/{digest}-t.jpg", "width": 1600, "height": 1200,
                "size": rng.randint(150_000, 600_000), "taken_at": created, "lat": None,
                "lon": None, "created_at": created,
            }
        yield item, event_row, photo


def seed_items(n: int, compounds, elsewhere, users, categories, now, rng,
               profile: str = "default", backlog: int = 10_000):
    """Bulk-load item_rows(): COPY on PostgreSQL (copy_items), Core executemany in
    chunks on SQLite; then the item tallies from one GROUP BY (services/counts.py), as
    the migration fills them. Returns counts per table."""
    rows = item_rows(n, compounds, elsewhere, users, categories, now, rng, profile, backlog)
    if db.engine.dialect.name == "postgresql":
        db.session.commit()   # the session's read locks would stop the ALTER TABLEs
        counts = copy_items(rows)
    else:
        counts = {"items": 0, "events": 0, "photos": 0}
        with db.engine.begin() as conn:
            while True:
                chunk = list(itertools.islice(rows, 20_000))
                if not chunk:
                    break
                for table, key, batch in (
                        (Item.__table__, "items", [c[0] for c in chunk]),
                        (ItemEvent.__table__, "events", [c[1] for c in chunk]),
                        (Photo.__table__, "photos", [c[2] for c in chunk if c[2]])):
                    if batch:
                        conn.execute(insert(table), batch)
                    counts[key] += len(batch)
    with db.engine.begin() as conn:
        tallies.rebuild(conn)
    return counts


def _copy_value(column, row):
    value = row.get(column.name)
    if column.name not in row and column.default is not None and column.default.is_scalar:
        value = column.default.arg
    if isinstance(value, dict):
        return json.dumps(value)
    return value


def copy_items(rows) -> dict[str, int]:
    """COPY the rows into item, item_event and photo (psycopg's cursor.copy), with the
    three tables' foreign keys and secondary indexes dropped during the load and made
    again after it (one pass each instead of a check and an insert per row)."""
    tables = [Item.__table__, ItemEvent.__table__, Photo.__table__]
    names = [t.name for t in tables]
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                    "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text "
                    "= ANY(%s)", (names,))
        fkeys = cur.fetchall()
        cur.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = "
                    "ANY(%s) AND i.indexname NOT IN (SELECT conname FROM pg_constraint)",
                    (names,))
        indexes = cur.fetchall()
        for table, name, _ in fkeys:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        columns = {t.name: [c for c in t.columns if not (t is Photo.__table__
                                                         and c.name == "id")]
                   for t in tables}
        counts = {"items": 0, "events": 0, "photos": 0}
        copies = {t.name: f"COPY {t.name} ({', '.join(c.name for c in columns[t.name])}) "
                  "FROM STDIN" for t in tables}
        # Three tables, one pass over the generator: items and events stream together,
        # photos are kept (a third of the rows) and copied after.
        photos = []
        with cur.copy(copies["item"]) as item_copy:
            events = []
            for item, event_row, photo in rows:
                item_copy.write_row([_copy_value(c, item) for c in columns["item"]])
                events.append([_copy_value(c, event_row) for c in columns["item_event"]])
                if photo:
                    photos.append([_copy_value(c, photo) for c in columns["photo"]])
                counts["items"] += 1
        with cur.copy(copies["item_event"]) as event_copy:
            for event_values in events:
                event_copy.write_row(event_values)
        counts["events"] = len(events)
        del events
        with cur.copy(copies["photo"]) as photo_copy:
            for photo_values in photos:
                photo_copy.write_row(photo_values)
        counts["photos"] = len(photos)
        for _name, definition in indexes:
            cur.execute(definition)
        for table, name, definition in fkeys:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in ("item", "item_event"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))")
        raw.commit()
    finally:
        raw.close()
    return counts


# --- timing --------------------------------------------------------------------------------

class QueryLog:
    """Counts (and optionally keeps) the SQL statements a request runs."""

    def __init__(self, engine):
        self.statements: list[tuple[str, object]] = []
        self.times: list[float] = []       # ms, one per statement
        self.active = False
        self._start = 0.0
        event.listen(engine, "before_cursor_execute", self._record)
        event.listen(engine, "after_cursor_execute", self._done)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            self.statements.append((statement, parameters))
            self._start = time.perf_counter()

    def _done(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            self.times.append((time.perf_counter() - self._start) * 1000)

    def __enter__(self):
        self.statements.clear()
        self.times.clear()
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False


def time_pages(targets, runs):
    """Time one page at every size, request by request in turns (the order reversed every
    other round), so a burst of load on the shared machine falls on the sizes alike.
    `targets`: [(client, url, qlog)]; returns [(median ms, min, max, queries, bytes)]."""
    queries = []
    for client, url, qlog in targets:
        resp = client.get(url)   # warm-up (template compilation, SQLite page cache)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {url}: {resp.status_code}")
        with qlog:
            client.get(url)
        queries.append(len(qlog.statements))
    times: list[list[float]] = [[] for _ in targets]
    sizes: list[int] = [0] * len(targets)
    for r in range(runs):
        order = range(len(targets)) if r % 2 == 0 else reversed(range(len(targets)))
        for k in order:
            client, url, _qlog = targets[k]
            start = time.perf_counter()
            resp = client.get(url)
            sizes[k] = len(resp.get_data())
            times[k].append((time.perf_counter() - start) * 1000)
            assert resp.status_code == 200
    return [(statistics.median(t), min(t), max(t), q, n)
            for t, q, n in zip(times, queries, sizes, strict=True)]


def explain(app, client, url, qlog):
    """Print the plan of every SELECT the page runs. The request must run outside any app
    context: Flask would reuse it, and with it the previous request's user and session."""
    with qlog:
        resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    print(f"\n### EXPLAIN QUERY PLAN: {url}  ({len(qlog.statements)} statements)")
    seen = set()
    with app.app_context(), db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        if conn.dialect.name == "postgresql":
            return explain_pg(raw, qlog)
        for statement, params in qlog.statements:
            if not statement.lstrip().upper().startswith("SELECT") or statement in seen:
                continue
            seen.add(statement)   # the same lazy load repeated per row: show it once
            print("  " + " ".join(statement.split())[:300])
            for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params or ()).fetchall():
                print("      " + str(row[-1]))


def explain_pg(raw, qlog):
    """EXPLAIN (ANALYZE, BUFFERS) of the page's slowest statement, and the time of each."""
    timed = sorted(zip(qlog.times, qlog.statements, strict=True), key=lambda t: -t[0])
    for ms, (statement, _params) in timed[:8]:
        print(f"  {ms:6.2f} ms  " + " ".join(statement.split())[:160])
    ms, (statement, params) = timed[0]
    print(f"\n  Slowest ({ms:.2f} ms): " + " ".join(statement.split()))
    print(f"  Parameters: {params}")
    cur = raw.cursor()
    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params or None)
    for (line,) in cur.fetchall():
        print("      " + line)
    raw.rollback()


def machine() -> str:
    import sqlite3
    return describe(f"SQLite {sqlite3.sqlite_version}")


def pg_url(arg: str, suffix: str) -> str:
    """`--db pg` (this machine's server, bench/pgdb.py) or a postgresql:// URL; one
    database per size: <name>_<suffix>, made here (the role needs CREATEDB)."""
    if arg == "pg":
        from pgdb import bench_url
        base = bench_url("patrol_bench_lists")
        if base is None:
            raise SystemExit("no PostgreSQL server (scripts/pg-test-db.sh)")
    else:
        base = arg.replace("postgresql://", "postgresql+psycopg://", 1)
    if base.rsplit("/", 1)[1].startswith("patrol_test"):
        raise SystemExit("refusing a test database: the bench empties the databases it uses")
    url = f"{base}_{suffix}"
    from sqlalchemy import create_engine
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        name = url.rsplit("/", 1)[1]
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url


def drop_pg(url: str) -> None:
    from sqlalchemy import create_engine
    base, name = url.rsplit("/", 1)
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="100000",
                        help="items to seed; several (100000,1000000): one database each, "
                             "timed interleaved in one run, with the ratio of the last "
                             "to the first")
    parser.add_argument("--db", default=None,
                        help="postgresql://… (or 'pg': this machine's server): PostgreSQL, "
                             "seeded by COPY, VACUUM ANALYZE after; default SQLite in a "
                             "temporary file")
    parser.add_argument("--profile", choices=("default", "history"), default="default",
                        help="history: a constant backlog (--backlog) of open items, every "
                             "other item closed")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15, help="timed requests per page")
    parser.add_argument("--budget-ms", type=float, default=None,
                        help="per page median (default 150 on SQLite, 50 on PostgreSQL)")
    parser.add_argument("--ratio-max", type=float, default=1.5,
                        help="largest allowed ratio of the last size's median to the first's")
    parser.add_argument("--explain", action="store_true",
                        help="query plans (PostgreSQL: EXPLAIN ANALYZE of the slowest page's "
                             "slowest statement)")
    parser.add_argument("--explain-page", action="append", default=[], metavar="LABEL",
                        help="with --explain: the plans of this page too (a part of its label, "
                             "e.g. '90 days'; may be given again)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--analyze", action="store_true",
                        help="run ANALYZE after seeding on SQLite (always on PostgreSQL)")
    args = parser.parse_args(argv)
    args.sizes = [int(x.replace("_", "")) for x in str(args.items).split(",")]
    if args.budget_ms is None:
        args.budget_ms = 50.0 if args.db else 150.0

    logging.getLogger("patrol.requests").setLevel(logging.WARNING)   # one line per request
    instance = Path(tempfile.mkdtemp(prefix="patrol-bench-"))
    urls: list[str] = []
    try:
        return run(instance, args, urls)
    finally:
        if args.keep:
            print(f"\nDatabases kept: {urls or instance}")
        else:
            for url in urls:
                drop_pg(url)
            shutil.rmtree(instance, ignore_errors=True)


def setup(instance: Path, args, n: int, urls: list[str]):
    """One seeded app of n items; returns (app, ids, figures for the printout)."""
    rng = random.Random(args.seed)
    url = None
    if args.db:
        url = pg_url(args.db, f"{args.profile}_{n}")
        urls.append(url)
    sub = instance / str(n)
    sub.mkdir()
    app = make_app(sub, url)
    with app.app_context():
        now = utcnow()
        community, companies, compounds, elsewhere, users = seed_places()
        form = app.extensions["patrol.forms"]["hazard"]
        categories = list(form.categories)
        start = time.perf_counter()
        counts = seed_items(n, compounds, elsewhere, users, categories, now, rng,
                            args.profile, args.backlog)
        seed_s = time.perf_counter() - start
        if url:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        elif args.analyze:
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        per_status = dict(db.session.execute(
            db.select(Item.status, db.func.count()).group_by(Item.status)).all())
        ids = {k: u.id for k, u in users.items()}
        info = {"big": compounds[0].id, "small": compounds[1].id,
                "companies": [c.id for c in companies], "now": now}
        size = db.session.execute(text("SELECT pg_database_size(current_database())")
                                  ).scalar() if url else (sub / "bench.db").stat().st_size
    print(f"Seeded {counts['items']:,} items, {counts['events']:,} events, "
          f"{counts['photos']:,} photo rows in {seed_s:.1f} s (DB {size / 1e6:.0f} MB, "
          f"profile {args.profile})")
    print("  by status:   " + ", ".join(f"{k} {v:,}" for k, v in sorted(per_status.items())))
    return app, ids, info


def pages_for(info):
    now, big = info["now"], info["big"]
    since = (now - timedelta(days=90)).strftime("%Y-%m-%d")
    until = now.strftime("%Y-%m-%d")
    company_ids = info["companies"]
    return [
        ("volunteer", "compound page", f"/compounds/{big}"),
        ("volunteer", "compound page, page 100", f"/compounds/{big}?page=100"),
        ("volunteer", "compound page (small)", f"/compounds/{info['small']}"),
        ("volunteer", "compounds (index)", "/compounds"),
        *[("manager", f"inbox, tab={tab}", f"/inbox?tab={tab}")
          for tab in ("new", "overdue", "due_soon", "reopened", "awaiting_check")],
        ("manager", "inbox, new, page 50 (cursor)", "cursor:/inbox?tab=new:50"),
        ("staff", "overview", "/overview"),
        ("staff", "overview, page 200", "/overview?page=200"),
        ("staff", "overview, page 200 (cursor)", "cursor:/overview:200"),
        ("staff", "overview, status=open", "/overview?status=open"),
        ("staff", "overview, status=overdue", "/overview?status=overdue"),
        ("staff", "overview, category", "/overview?category=flying_wire"),
        ("staff", "overview, compound+status", f"/overview?compound={big}&status=reported"),
        ("staff", "overview, company", f"/overview?company={company_ids[1]}"),
        ("staff", "overview, last 90 days", f"/overview?since={since}&until={until}"),
        ("staff", "overview, all filters",
         f"/overview?compound={big}&company={company_ids[0]}&category=fire_exit"
         f"&status=open&since={since}&until={until}"),
    ]


def cursor_url(client, spec: str) -> str:
    """`cursor:<url>:<page>`: that page's URL as the pager links to it ("next" on the
    page before, which is read by page number): the cursor of the row before it."""
    _, url, number = spec.rsplit(":", 2)
    html = client.get(f"{url}{'&' if '?' in url else '?'}page={int(number) - 1}").get_data(
        as_text=True)
    m = re.search(r'rel="next" href="([^"]+)"', html)
    if not m:   # a small database: no such page; time the last one by number
        return f"{url}{'&' if '?' in url else '?'}page={number}"
    return m.group(1).replace("&amp;", "&")


def run(instance: Path, args, urls: list[str]) -> int:
    engine_name = "PostgreSQL" if args.db else "SQLite"
    setups = [setup(instance, args, n, urls) for n in args.sizes]
    with setups[-1][0].app_context():
        extra = db.session.execute(text("SELECT version()")).scalar().split(" on ")[0] \
            if args.db else None
    print(f"Machine: {machine() if not extra else describe(extra)}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []   # (role, label, [median per size], [queries per size])
    qlogs, clients = [], []
    for app, ids, _info in setups:
        with app.app_context():
            qlogs.append(QueryLog(db.engine))
        clients.append({role: sign_in(app.test_client(), ids[role])
                        for role in ("volunteer", "manager", "staff")})
    pages = pages_for(setups[0][2])
    sized_pages = [pages_for(info) for _app, _ids, info in setups]
    print(f"\n{engine_name}, median of {args.runs} requests after one warm-up (test client, "
          f"no network); sizes timed in turns, request by request\n")
    sizes = " ".join(f"{n:>10,}" for n in args.sizes)
    header = f"{'user':<10} {'page':<32} {sizes} {'ratio':>6} {'queries':>8}"
    print(header)
    print("-" * len(header))
    slow, steep = [], []
    worst = (0.0, None, None)
    for p, (role, label, _url) in enumerate(pages):
        targets = []
        for k in range(len(setups)):
            url = sized_pages[k][p][2]
            if url.startswith("cursor:"):
                url = cursor_url(clients[k][role], url)
            targets.append((clients[k][role], url, qlogs[k]))
        timed = time_pages(targets, args.runs)
        medians = [t[0] for t in timed]
        queries = [t[3] for t in timed]
        if medians[-1] > worst[0]:
            worst = (medians[-1], role, targets[-1][1])
        ratio = medians[-1] / medians[0] if len(medians) > 1 else 1.0
        flag = ""
        if medians[-1] > args.budget_ms:
            flag += "  <-- slow"
            slow.append(label)
        if ratio > args.ratio_max:
            flag += "  <-- grows"
            steep.append(label)
        print(f"{role:<10} {label:<32} " + " ".join(f"{m:10.1f}" for m in medians)
              + f" {ratio:6.2f} {'/'.join(map(str, queries)):>8}{flag}")
        rows.append((role, label, medians, queries))

    big = setups[-1]
    weights = first_load_weight(clients[-1]["volunteer"], f"/compounds/{big[2]['big']}/report")
    print(f"\nReport page first load, gzip level {GZIP_LEVEL}: {sum(weights.values()):,} B "
          f"(budget {PAGE_WEIGHT_BUDGET:,d} B)")
    print(f"\nSlowest page at {args.sizes[-1]:,} items: {worst[2]} ({worst[0]:.1f} ms)")
    if args.explain:
        explain(big[0], clients[-1][worst[1]], worst[2], qlogs[-1])
        for wanted in args.explain_page:
            for p, (role, label, _url) in enumerate(pages):
                if wanted in label:
                    url = sized_pages[-1][p][2]
                    if url.startswith("cursor:"):
                        url = cursor_url(clients[-1][role], url)
                    if url != worst[2]:
                        explain(big[0], clients[-1][role], url, qlogs[-1])
    ok = True
    if slow:
        print(f"\n{len(slow)} page(s) over {args.budget_ms:.0f} ms: {', '.join(slow)}")
        ok = False
    if steep:
        print(f"{len(steep)} page(s) with a ratio over {args.ratio_max}: {', '.join(steep)}")
        ok = False
    if ok:
        print(f"\nEvery list page under {args.budget_ms:.0f} ms"
              + (f", ratio ≤ {args.ratio_max}" if len(args.sizes) > 1 else "") + ".")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
