"""District import: the dry run and the import of a whole district, time and peak memory.

Two districts, generated with tests/district_workbook.py (every kind of mess real
sheets carry): the seed's 565 compounds (6 streets, 40 communities, ~6,000 buildings,
30 companies, 800 volunteers) and a city of 10,000 compounds (100,000 buildings, 20,000
volunteers). Each runs in a fresh process (so peak memory is its own) on SQLite and on
PostgreSQL. Targets: 565 compounds ≤ 10 s; 10,000 ≤ 120 s with peak memory ≤ 500 MB.

    .venv/bin/python bench/import.py                 # both sizes, both engines
    .venv/bin/python bench/import.py --size 565 --db sqlite
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {
    "565": dict(compounds=565, streets=6, communities=40, companies=30, volunteers=800,
                buildings_per=(6, 16)),
    "10000": dict(compounds=10_000, streets=60, communities=700, companies=300,
                  volunteers=20_000, buildings_per=(10, 10)),
}


def one(size: str, db_url: str | None, workbook: Path) -> dict:
    """In this process: dry run, import, re-import; times and peak memory."""
    from sqlalchemy import text

    from patrol.extensions import db
    from patrol.importer.read import read
    from patrol.services import district_import
    from tests.conftest import make_app
    tmp = Path(tempfile.mkdtemp(prefix="patrol-import-"))
    app = make_app(tmp, db_url)
    data = workbook.read_bytes()
    out = {"size": size, "engine": "postgresql" if db_url else "sqlite",
           "workbook_mb": round(len(data) / 1e6, 1)}
    with app.app_context():
        t = time.perf_counter()
        tables = read(data, workbook.name)
        out["read_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        plan = district_import.plan(tables)
        db.session.rollback()
        out["dry_run_s"] = round(time.perf_counter() - t + out["read_s"], 1)
        assert plan.ok, plan.problems[:3]
        del tables, plan   # each phase on its own, as separate CLI runs would be
        db.session.expunge_all()
        t = time.perf_counter()
        plan = district_import.plan(read(data, workbook.name))
        district_import.apply(plan)
        db.session.commit()
        out["import_s"] = round(time.perf_counter() - t, 1)
        out["compounds"] = db.session.scalar(text("SELECT count(*) FROM compound"))
        out["buildings"] = db.session.scalar(text("SELECT count(*) FROM building"))
        del plan
        db.session.expunge_all()
        t = time.perf_counter()
        again = district_import.plan(read(data, workbook.name))
        db.session.rollback()
        out["reimport_s"] = round(time.perf_counter() - t, 1)
        out["reimport"] = again.summary()
        db.session.remove()
        db.engine.dispose()
    out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=[*SIZES, "both"], default="both")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--one", nargs=3, metavar=("SIZE", "DB_URL", "WORKBOOK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        size, url, book = args.one
        print(json.dumps(one(size, None if url == "-" else url, Path(book)), ensure_ascii=False))
        return
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.uname().machine}, "
          f"{os.cpu_count()} cores  load: {os.getloadavg()[0]:.2f}", flush=True)
    from tests.district_workbook import district
    pg = None
    if args.db in ("postgresql", "both"):
        from bench.pgdb import bench_url
        pg = bench_url("patrol_bench_import")
        if pg is None:
            print("postgresql: no server, skipped")
    engines = {"sqlite": ["-"], "postgresql": [pg] if pg else [],
               "both": ["-"] + ([pg] if pg else [])}[args.db]
    failed = False
    for size in (SIZES if args.size == "both" else [args.size]):
        book = Path(tempfile.mkdtemp()) / f"district-{size}.xlsx"
        t = time.perf_counter()
        book.write_bytes(district(**SIZES[size]).data)
        print(f"workbook {size}: generated in {time.perf_counter() - t:.1f} s", flush=True)
        for url in engines:
            done = subprocess.run([sys.executable, __file__, "--one", size, url, str(book)],
                                  capture_output=True, text=True, cwd=ROOT)
            if done.returncode:
                print(done.stderr[-2000:])
                failed = True
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            limit_s, limit_mb = (10, None) if size == "565" else (120, 500)
            result["target"] = (f"import ≤ {limit_s} s" + (f", peak ≤ {limit_mb} MB" if limit_mb else ""))
            result["met"] = (result["dry_run_s"] <= limit_s and result["import_s"] <= limit_s
                             and (limit_mb is None or result["peak_mb"] <= limit_mb))
            failed |= not result["met"]
            print(json.dumps(result, ensure_ascii=False), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
