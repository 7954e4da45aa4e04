"""Submissions per core (issue 15 §3): Patrol against a bare baseline, side by side.

Both are served by gunicorn as `make run` serves (2 workers x 4 threads) on loopback, and
driven by the same 12 phones, each sending a unique ~300 KB 1600 px photo (a unique one
every time: the content-addressed store skips a repeated photo, which would flatter
Patrol):
- **Patrol**, the way the phone's outbox sends a report: the photo (`POST /photos`), then
  the form (`POST /compounds/<id>/report`) with the page's CSRF token; signed in;
- **bare** (bench/bare_app.py): one request with the same multipart body, the photo
  written with fsync and a row inserted, nothing else;
- **bare + pipeline** (with --pipeline): the bare app running Patrol's photo pipeline.

Runs interleave (Patrol, bare, bare, Patrol, …) so the machine's load falls on both alike,
on SQLite and on PostgreSQL. Prints reports/s and the p95 of a whole submission (every
request of one report) for each, and the ratios. Targets: Patrol ≥ 0.25 of the bare
baseline's rate, and its p95 ≤ 3× the baseline's. Exits 1 if a report was lost or
duplicated, or a 5xx was answered.

    .venv/bin/python bench/submissions.py                      # SQLite and PostgreSQL
    .venv/bin/python bench/submissions.py --db sqlite --reports 120 --turns 2 --pipeline
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

import load_reports as lr  # noqa: E402


def bare_run(db_url: str | None, reports: int, threads: int, photos: list[bytes],
             pipeline: bool) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="patrol-bare-"))
    port = lr.free_port()
    if db_url:
        lr.reset_pg(db_url)
    env = dict(os.environ, BARE_DB=db_url or f"sqlite:///{tmp / 'bare.db'}",
               BARE_DIR=str(tmp / "photos"), BARE_PIPELINE="1" if pipeline else "0",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT.parent)]))
    # The table first, here: two workers booting at once on an empty PostgreSQL schema
    # raced in create_all ("relation report already exists") and one failed to boot.
    from bare_app import METADATA
    from sqlalchemy import create_engine
    setup = create_engine(env["BARE_DB"])
    METADATA.create_all(setup)
    setup.dispose()
    server, log = lr.start_gunicorn("bare_app:create_app()", env, ROOT, port,
                                    tmp / "gunicorn.log")
    phones = [lr.Phone(f"http://127.0.0.1:{port}", f"10.8.0.{n + 1}") for n in range(threads)]
    lock = threading.Lock()
    latencies, statuses = [], []

    def one(phone, n):
        body, ctype = lr.multipart({"category": "flyers", "note": f"负载测试 {n}",
                                    "client_uuid": str(uuid.uuid4())},
                                   {"photo": ("p.jpg", photos[n % len(photos)])})
        t = time.perf_counter()
        status, _ = phone.call("POST", "/report", body, {"Content-Type": ctype})
        with lock:
            latencies.append(time.perf_counter() - t)
            statuses.append(status)

    elapsed = lr.drive(phones, reports, one)
    server.terminate()
    server.wait(30)
    log.close()
    from sqlalchemy import create_engine, text
    engine = create_engine(env["BARE_DB"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*), count(DISTINCT client_uuid) FROM report")).one()
    engine.dispose()
    return {"reports_per_s": round(reports / elapsed, 2), "seconds": round(elapsed, 1),
            "stored": stored[0], "duplicates": stored[0] - stored[1],
            "5xx": sum(1 for s in statuses if s >= 500),
            "submission_p50_s": round(statistics.median(latencies), 3),
            "submission_p95_s": round(lr.percentile95(latencies), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--reports", type=int, default=200)
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--turns", type=int, default=2, help="runs of each, interleaved")
    ap.add_argument("--pipeline", action="store_true",
                    help="also run the bare app with Patrol's photo pipeline")
    args = ap.parse_args()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')} UTC  machine: {os.uname().machine}, "
          f"{os.cpu_count()} cores  load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    photos = [lr.photo_bytes(n) for n in range(args.reports)]
    print(f"photos: {len(photos)} unique, median {statistics.median(map(len, photos)):,.0f} bytes")
    arms = ["patrol", "bare"] + (["bare+pipeline"] if args.pipeline else [])
    failed = False
    for engine in {"sqlite": ["sqlite"], "postgresql": ["postgresql"],
                   "both": ["sqlite", "postgresql"]}[args.db]:
        patrol_url = bare_url = None
        if engine == "postgresql":
            patrol_url = lr.pg_url()
            if not patrol_url:
                print("postgresql: no server, skipped")
                continue
            from bench.pgdb import bench_url
            bare_url = bench_url("patrol_bench_bare")
        results: dict[str, list[dict]] = {arm: [] for arm in arms}
        for turn in range(args.turns):
            order = arms if turn % 2 == 0 else list(reversed(arms))
            for arm in order:
                if arm == "patrol":
                    r = lr.run(patrol_url, args.reports, args.threads, 0, photos)
                    failed |= r["acknowledged"] != args.reports
                else:
                    r = bare_run(bare_url, args.reports, args.threads, photos,
                                 pipeline=arm == "bare+pipeline")
                failed |= r["5xx"] > 0 or r["stored"] != args.reports or r["duplicates"] > 0
                results[arm].append(r)
                print(json.dumps({"engine": engine, "arm": arm, "turn": turn,
                                  **{k: r[k] for k in ("reports_per_s", "stored", "duplicates",
                                                       "5xx", "submission_p50_s",
                                                       "submission_p95_s")}},
                                 ensure_ascii=False), flush=True)
        rate = {arm: statistics.median(r["reports_per_s"] for r in rs)
                for arm, rs in results.items()}
        p95 = {arm: statistics.median(r["submission_p95_s"] for r in rs)
               for arm, rs in results.items()}
        print(f"{engine}: reports/s (median of {args.turns}) "
              + ", ".join(f"{arm} {rate[arm]:.1f}" for arm in arms))
        share, slower = rate["patrol"] / rate["bare"], p95["patrol"] / p95["bare"]
        print(f"{engine}: Patrol / bare = {share:.2f} (target ≥ 0.25: "
              f"{'met' if share >= 0.25 else 'MISSED'}); p95 {p95['patrol']:.2f} s vs "
              f"{p95['bare']:.2f} s = {slower:.1f}× (target ≤ 3×: "
              f"{'met' if slower <= 3 else 'MISSED'})")
        if args.pipeline:
            print(f"{engine}: bare+pipeline / bare = "
                  f"{rate['bare+pipeline'] / rate['bare']:.2f}; Patrol / bare+pipeline = "
                  f"{rate['patrol'] / rate['bare+pipeline']:.2f}")
    print("RESULT:", "FAIL" if failed else "OK (0 5xx, every report stored once)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
