"""Ledger export benchmark: 100,000 items with their history, as XLSX and CSV, on SQLite.

    .venv/bin/python bench/export.py                 # 100,000 items
    .venv/bin/python bench/export.py --items 20000

Seeds a file-based SQLite database with bench/lists.py's generator (every status, a third
with a photo) plus each item's history (acknowledged, fixed, verified, … as its status
says: about 3.4 events per item). Then, in a fresh process so that seeding's memory does
not count, downloads the community's whole ledger as a signed-in staff member through
the Flask test client, reading the streamed body to the end: the XLSX (items and history
sheets), then the CSV. Prints each one's time, size and row count, and the export
process's peak memory (VmHWM).

Targets (issue 13): the XLSX ≤ 20 s and peak memory ≤ 300 MB. Exits 1 if either is missed.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import insert  # noqa: E402

from bench_machine import peak_rss_mb  # noqa: E402
from lists import machine, make_app, seed_items, seed_places, sign_in  # noqa: E402
from patrol.extensions import db  # noqa: E402
from patrol.models import Item, ItemEvent, utcnow  # noqa: E402

# The history each final status implies after the report (bench/lists.py writes that).
HISTORY = {
    "acknowledged": ("acknowledge",),
    "fixed": ("acknowledge", "fix"),
    "verified": ("acknowledge", "fix", "verify"),
    "reopened": ("acknowledge", "fix", "reopen"),
    "rejected": ("reject",),
    "merged": ("merge",),
}
STEPS = {"acknowledge": ("reported", "acknowledged"), "fix": ("acknowledged", "fixed"),
         "verify": ("fixed", "verified"), "reopen": ("fixed", "reopened"),
         "reject": ("reported", "rejected"), "merge": ("reported", "merged")}


def seed_history(users) -> int:
    actors = {"acknowledge": users["manager"].id, "fix": users["manager"].id,
              "verify": users["volunteer"].id, "reopen": users["volunteer"].id,
              "reject": users["staff"].id, "merge": users["staff"].id}
    rows = []
    for item_id, status, created in db.session.execute(
            db.select(Item.id, Item.status, Item.created_at)):
        for n, action in enumerate(HISTORY.get(status, ()), 1):
            source, target = STEPS[action]
            rows.append({"item_id": item_id, "actor_id": actors[action],
                         "at": created + timedelta(hours=10 * n), "action": action,
                         "from_status": source, "to_status": target,
                         "note": "已处理" if action == "fix" else None,
                         "reason": "not_fixed" if action == "reopen" else None, "data": {},
                         "presence_id": None})
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(insert(ItemEvent.__table__), rows[start:start + 20_000])
    return len(rows)


def seed(instance: Path, n: int, seed_value: int) -> dict:
    rng = random.Random(seed_value)
    app = make_app(instance)
    with app.app_context():
        now = utcnow()
        community, companies, compounds, elsewhere, users = seed_places()
        categories = list(app.extensions["patrol.forms"]["hazard"].categories)
        counts = seed_items(n, compounds, elsewhere, users, categories, now, rng)
        counts["history"] = counts["events"] + seed_history(users)
        counts["staff_id"] = users["staff"].id
        counts["community_items"] = db.session.scalar(
            db.select(db.func.count()).select_from(Item).where(Item.community_id == community.id))
        # Fold the bulk load's write-ahead log into the database and close, as a server
        # that has run a while would have: else the export process maps a WAL of hundreds
        # of MB, which counts in its memory.
        db.session.execute(db.text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()
        db.engine.dispose()
    return counts


def export(instance: Path, staff_id: int) -> dict:
    """In its own process: both downloads, timed, with the body read to the end."""
    app = make_app(instance)
    client = sign_in(app.test_client(), staff_id)
    out = {}
    for fmt in ("xlsx", "csv"):
        start = time.perf_counter()
        response = client.get(f"/exports/items.{fmt}")
        size = sum(len(chunk) for chunk in response.response)
        out[fmt] = {"seconds": round(time.perf_counter() - start, 2), "bytes": size,
                    "status": response.status_code}
        response.close()
    out["peak_mb"] = round(peak_rss_mb(), 1)
    return out



def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--budget-s", type=float, default=20.0)
    parser.add_argument("--budget-mb", type=float, default=300.0)
    parser.add_argument("--export-only", help=argparse.SUPPRESS)
    parser.add_argument("--staff", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_only:
        print(json.dumps(export(Path(args.export_only), args.staff)))
        return 0

    print(f"Machine: {machine()}")
    instance = Path(tempfile.mkdtemp(prefix="patrol-bench-export-"))
    try:
        start = time.perf_counter()
        counts = seed(instance, args.items, args.seed)
        print(f"Seeded {counts['items']:,} items ({counts['community_items']:,} in the "
              f"community exported), {counts['history']:,} history entries, "
              f"{counts['photos']:,} photos in {time.perf_counter() - start:.1f} s")
        result = subprocess.run(
            [sys.executable, __file__, "--export-only", str(instance),
             "--staff", str(counts["staff_id"])],
            check=True, capture_output=True, text=True)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    for fmt in ("xlsx", "csv"):
        f = figures[fmt]
        print(f"{fmt.upper():5} {f['seconds']:7.2f} s  {f['bytes'] / 1e6:7.1f} MB  "
              f"(HTTP {f['status']})")
    print(f"Peak memory of the export process: {figures['peak_mb']:.0f} MB")
    ok = (figures["xlsx"]["seconds"] <= args.budget_s and figures["peak_mb"] <= args.budget_mb
          and figures["xlsx"]["status"] == figures["csv"]["status"] == 200)
    print(f"Targets: XLSX ≤ {args.budget_s:g} s, peak ≤ {args.budget_mb:g} MB: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
