"""List-page benchmark: 100,000 items in a file-based SQLite database.

    .venv/bin/python bench/lists.py            # or: make bench
    .venv/bin/python bench/lists.py --items 20000 --runs 5 --explain

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
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

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

def make_app(instance: Path):
    app = create_app({
        "INSTANCE_DIR": instance,
        "SECRET_KEY": "bench",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'bench.db'}",
        "PHOTO_DIR": str(instance / "photos"),
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "BASE_URL": "http://bench.test",
    })
    with app.app_context():
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


def seed_items(n: int, compounds, elsewhere, users, categories, now, rng):
    """Bulk-insert n items (2% in the other community), one 'report' event each and a
    photo row for PHOTO_SHARE of them. Returns counts per table."""
    reporters = [users["volunteer"].id, users["volunteer2"].id, users["staff"].id]
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    places = [*compounds, elsewhere]
    place_weights = [w * 0.98 for w in COMPOUND_WEIGHTS] + [0.02]
    buildings = {c.id: [b.id for b in c.buildings] for c in places}
    span = timedelta(days=730)
    items, events, photos = [], [], []
    first_id = 1
    for i in range(n):
        item_id = first_id + i
        compound = rng.choices(places, place_weights)[0]
        category = rng.choice(categories)
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
        closed = created + timedelta(hours=rng.uniform(80, 120)) \
            if status in (Status.VERIFIED, Status.REJECTED, Status.MERGED) else None
        updated = min(now, max(t for t in (created, acknowledged, fixed, closed) if t))
        reporter = rng.choice(reporters)
        note = f"{category['label']['zh']}：第{i % 97 + 1}处，请尽快处理"
        items.append({
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
            "closed_at": closed, "updated_at": updated, "version": 1,
        })
        if items[-1]["status"] == "merged" and items[-1]["merged_into_id"] is None:
            items[-1]["status"] = "rejected"
        events.append({
            "id": item_id, "item_id": item_id, "actor_id": reporter, "at": created,
            "action": "report", "from_status": None, "to_status": "reported", "note": note,
            "reason": None, "data": {}, "presence_id": None,
        })
        if rng.random() < PHOTO_SHARE:
            digest = f"{rng.getrandbits(128):032x}"
            photos.append({
                "item_id": item_id, "event_id": item_id, "uploader_id": reporter,
                "kind": "before", "key": f"{digest[:2]}/{digest}.jpg",
                "thumb_key": f"{digest[:2]}/{digest}-t.jpg", "width": 1600, "height": 1200,
                "size": rng.randint(150_000, 600_000), "taken_at": created, "lat": None,
                "lon": None, "created_at": created,
            })
    # Core inserts, in chunks: executemany straight into SQLite.
    with db.engine.begin() as conn:
        for table, rows in ((Item.__table__, items), (ItemEvent.__table__, events),
                            (Photo.__table__, photos)):
            for start in range(0, len(rows), 20_000):
                conn.execute(insert(table), rows[start:start + 20_000])
    return {"items": len(items), "events": len(events), "photos": len(photos)}


# --- timing --------------------------------------------------------------------------------

class QueryLog:
    """Counts (and optionally keeps) the SQL statements a request runs."""

    def __init__(self, engine):
        self.statements: list[tuple[str, object]] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            self.statements.append((statement, parameters))

    def __enter__(self):
        self.statements.clear()
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False


def time_page(client, url, runs, qlog):
    resp = client.get(url)   # warm-up (template compilation, SQLite page cache)
    if resp.status_code != 200:
        raise RuntimeError(f"GET {url}: {resp.status_code}")
    with qlog:
        client.get(url)
    queries = len(qlog.statements)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        resp = client.get(url)
        resp.get_data()
        times.append((time.perf_counter() - start) * 1000)
        assert resp.status_code == 200
    return statistics.median(times), min(times), max(times), queries, len(resp.get_data())


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
        for statement, params in qlog.statements:
            if not statement.lstrip().upper().startswith("SELECT") or statement in seen:
                continue
            seen.add(statement)   # the same lazy load repeated per row: show it once
            print("  " + " ".join(statement.split())[:300])
            for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params or ()).fetchall():
                print("      " + str(row[-1]))


def machine() -> str:
    import sqlite3
    return describe(f"SQLite {sqlite3.sqlite_version}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15, help="timed requests per page")
    parser.add_argument("--budget-ms", type=float, default=150.0)
    parser.add_argument("--explain", action="store_true", help="print query plans")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--analyze", action="store_true",
                        help="run ANALYZE after seeding (the app itself never does)")
    args = parser.parse_args(argv)

    instance = Path(tempfile.mkdtemp(prefix="patrol-bench-"))
    try:
        return run(instance, args)
    finally:
        if args.keep:
            print(f"\nDatabase kept in {instance / 'bench.db'}")
        else:
            shutil.rmtree(instance, ignore_errors=True)


def run(instance: Path, args) -> int:
    rng = random.Random(args.seed)
    app = make_app(instance)
    print(f"Machine: {machine()}")
    with app.app_context():
        now = utcnow()
        community, companies, compounds, elsewhere, users = seed_places()
        form = app.extensions["patrol.forms"]["hazard"]
        categories = list(form.categories)
        start = time.perf_counter()
        counts = seed_items(args.items, compounds, elsewhere, users, categories, now, rng)
        seed_s = time.perf_counter() - start
        if args.analyze:
            with db.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        per_status = dict(db.session.execute(
            db.select(Item.status, db.func.count()).group_by(Item.status)).all())
        per_compound = dict(db.session.execute(
            db.select(Compound.name, db.func.count(Item.id)).join(Item)
            .group_by(Compound.name)).all())
        ids = {k: u.id for k, u in users.items()}
        big = compounds[0].id
        company_ids = [c.id for c in companies]
        compound_ids = [c.id for c in compounds]
    size = (instance / "bench.db").stat().st_size
    print(f"Seeded {counts['items']:,} items, {counts['events']:,} events, "
          f"{counts['photos']:,} photo rows in {seed_s:.1f} s (DB {size / 1e6:.0f} MB)")
    print("  by status:   " + ", ".join(f"{k} {v:,}" for k, v in sorted(per_status.items())))
    print("  by compound: " + ", ".join(f"{k} {v:,}" for k, v in per_compound.items()))

    since = (now - timedelta(days=90)).strftime("%Y-%m-%d")
    until = now.strftime("%Y-%m-%d")
    pages = [
        ("volunteer", "compound page", f"/compounds/{big}"),
        ("volunteer", "compound page, page 100", f"/compounds/{big}?page=100"),
        ("volunteer", "compound page (small)", f"/compounds/{compound_ids[1]}"),
        *[("manager", f"inbox, tab={tab}", f"/inbox?tab={tab}")
          for tab in ("new", "overdue", "due_soon", "reopened", "awaiting_check")],
        ("staff", "overview", "/overview"),
        ("staff", "overview, page 200", "/overview?page=200"),
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
    clients = {}
    for role in ("volunteer", "manager", "staff"):
        clients[role] = sign_in(app.test_client(), ids[role])
    with app.app_context():
        qlog = QueryLog(db.engine)

    print(f"\nMedian of {args.runs} requests after one warm-up (test client, no network):\n")
    header = f"{'user':<10} {'page':<30} {'median ms':>9} {'min':>7} {'max':>7} {'queries':>7} {'HTML kB':>7}"
    print(header)
    print("-" * len(header))
    slow = []
    for role, label, url in pages:
        median, low, high, queries, html = time_page(clients[role], url, args.runs, qlog)
        flag = "  <-- slow" if median > args.budget_ms else ""
        print(f"{role:<10} {label:<30} {median:9.1f} {low:7.1f} {high:7.1f} {queries:7d} "
              f"{html / 1000:7.1f}{flag}")
        if median > args.budget_ms:
            slow.append(url)

    weights = first_load_weight(clients["volunteer"], f"/compounds/{big}/report")
    print(f"\nReport page first load, gzip level {GZIP_LEVEL}:")
    for name, nbytes in weights.items():
        print(f"  {name:<32} {nbytes:7,d} B")
    total = sum(weights.values())
    print(f"  {'total':<32} {total:7,d} B (budget {PAGE_WEIGHT_BUDGET:,d} B)")

    if args.explain:
        for role, _label, url in pages:
            explain(app, clients[role], url, qlog)
    if slow:
        print(f"\n{len(slow)} page(s) over {args.budget_ms:.0f} ms: {', '.join(slow)}")
        return 1
    print(f"\nEvery list page under {args.budget_ms:.0f} ms.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
