"""A PostgreSQL database of the benchmarks' own on this machine's server (never the
tests' database, which a test run may reset at any moment)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_url(name: str = "patrol_bench") -> str | None:
    url = subprocess.run(["bash", str(ROOT / "scripts/pg-test-db.sh")], capture_output=True,
                         text=True).stdout.strip()
    if not url:
        return None
    as_pg = (["su", "postgres", "-c"] if os.getuid() == 0
             else ["sudo", "-u", "postgres", "bash", "-c"])
    port = url.rsplit(":", 1)[1].split("/")[0]
    exists = subprocess.run(as_pg + [f"psql -p {port} -qtAc \"select 1 from pg_database "
                                     f"where datname='{name}'\""],
                            capture_output=True, text=True).stdout.strip()
    if exists != "1":
        subprocess.run(as_pg + [f"createdb -p {port} -O patrol {name}"], check=True)
    return url.rsplit("/", 1)[0] + "/" + name
