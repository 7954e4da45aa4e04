"""Server CPU per submitted report (issue 15 §3, "submissions per core"), old code against
new, in one run.

    .venv/bin/python bench/report_cpu.py                        # against OLD_DEFAULT, SQLite
    .venv/bin/python bench/report_cpu.py --old <commit> --db both --rounds 150
    .venv/bin/python bench/report_cpu.py --profile report        # cProfile of the new code
    .venv/bin/python bench/report_cpu.py --sql                   # the statements of one report

A report leaves the phone's outbox (static/js/offline.js) as two requests, and both are
timed here exactly as it sends them: `POST /photos` (the photo, multipart, with the page's
CSRF token, X-Patrol-Sync and X-Patrol-User) and `POST /compounds/<id>/report` (the form
and the kept photo's id, with the same headers; the body as that tree's outbox encodes
it: multipart before issue 15 §3's change, urlencoded after; --old-body/--new-body set
them).

Each side (the old commit, checked out with `git worktree` under /tmp and removed
afterwards, and the working tree) runs in its own process, importing `patrol` from its own
tree, on its own database (SQLite in /tmp, or PostgreSQL: the databases
patrol_helper_cpu and patrol_helper_cpu_old, reset here) migrated and seeded with the
demo district. 12 volunteers ("phones", each its own sign-in, address and cookies) are
signed in through invite links; the phones take turns. The two sides are driven in turns,
one report at a time (old, new, new, old, ...), so the machine's load falls on both alike.

Each request is timed inside the process around the WSGI call (the response body
included), with `time.process_time()`: CPU time of this process only, waiting (fsync,
PostgreSQL's own work) not counted, the test client's encoding not counted. Every report
brings a unique 1600x1200 photo (bench/load_reports.py's, ~280 KB), as the content-
addressed store would skip a repeated one; the photo request's time is split into
`photos.process` (the pipeline, not this bench's subject) and the rest. The statements
each request sends to the database are counted (an engine event; an executemany counts
once).

Prints, per side: median and mean CPU ms of the report request, of the photo request
without the pipeline, and of the pipeline, statements per request, and the ratio old/new.
--profile report|photo runs the new tree alone under cProfile and prints where that
request's time goes; --sql prints the statements one report sends (new tree).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_machine import describe  # noqa: E402  (bench/bench_machine.py)

# The tree before issue 15 §3's report-path work.
OLD_DEFAULT = "23dbe39"
PHONES = 12

WORKER = r"""
import cProfile, io, json, os, pstats, re, sys, time, uuid
from datetime import timedelta
root, fmt, mode = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, root)
import patrol
assert patrol.__file__.startswith(root), (patrol.__file__, root)
sys.path.append(%(bench)r)    # after the tree under test: only the bench's own helpers
from load_reports import multipart   # stdlib only at import
from sqlalchemy import event
from patrol import create_app
from patrol.extensions import db
from patrol.models import Compound, Team, User
from patrol.services import accounts, photos

app = create_app()
counter = {"n": 0, "sql": []}
pipeline = {"s": 0.0}
real_process = photos.process

def timed_process(*a, **kw):
    t = time.process_time()
    try:
        return real_process(*a, **kw)
    finally:
        pipeline["s"] += time.process_time() - t

photos.process = timed_process
with app.app_context():
    @event.listens_for(db.engine, "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):
        counter["n"] += 1
        if mode == "sql":
            counter["sql"].append(" ".join(statement.split())[:160])
    team = db.session.execute(db.select(Team)).scalars().first()
    compound = db.session.execute(db.select(Compound).order_by(Compound.id)).scalars().first()
    compound_id = compound.id
    admin = db.session.execute(db.select(User).where(User.username == "admin")).scalar_one()
    tokens = []
    for n in range(%(phones)d):
        user = User(username=f"cpu{n}", display_name=f"志愿者{n}", role="volunteer",
                    title="志愿者", community_id=team.community_id, team=team)
        db.session.add(user)
        db.session.flush()
        tokens.append(accounts.create_invite(user, admin, timedelta(hours=4)))
    db.session.commit()

clock = {"s": 0.0, "prof": None}
inner = app.wsgi_app

def wsgi(environ, start_response):
    prof = clock["prof"]
    t = time.process_time()
    if prof:
        prof.enable()
    body = inner(environ, start_response)
    try:
        out = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    if prof:
        prof.disable()
    clock["s"] = time.process_time() - t
    return [out]

app.wsgi_app = wsgi

phones = []
for n, token in enumerate(tokens):
    c = app.test_client()
    addr = {"X-Forwarded-For": f"10.7.0.{n + 1}"}
    page = c.get(f"/invite/{token}", headers=addr).data
    csrf = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    r = c.post(f"/invite/{token}", data={"csrf_token": csrf}, headers=addr)
    assert r.status_code in (200, 302), r.status_code
    got = c.get("/sync/token", headers=addr).get_json()
    phones.append((c, {**addr, "X-CSRFToken": got["csrf"], "X-Patrol-Sync": "1",
                       "X-Patrol-User": str(got["user"])}))

from urllib.parse import urlencode

print(json.dumps({"ready": patrol.__file__}), flush=True)
profile = cProfile.Profile() if mode.startswith("profile") else None
for line in sys.stdin:
    n, path = line.split()
    n = int(n)
    c, headers = phones[n %% len(phones)]
    photo = open(path, "rb").read()
    body, ctype = multipart({"kind": "before"}, {"photo": ("photo.jpg", photo)})
    pipeline["s"] = 0.0
    counter["n"] = 0
    counter["sql"] = []
    clock["prof"] = profile if mode == "profile-photo" else None
    r = c.post("/photos", data=body, headers={**headers, "Content-Type": ctype})
    clock["prof"] = None
    assert r.status_code == 201, (r.status_code, r.data[:300])
    photo_s, photo_sql, pipe_s = clock["s"], counter["n"], pipeline["s"]
    photo_statements = counter["sql"]
    # The outbox's fields, in its order: the form's own string fields as offline.js reads
    # them (no csrf_token: the header carries it), device_at, the kept photo's id, sent_at.
    stamp = time.strftime("%%Y-%%m-%%dT%%H:%%M:%%S.000Z", time.gmtime())
    fields = [("client_uuid", str(uuid.uuid4())), ("lat", ""), ("lon", ""),
              ("category", "flyers"), ("building", ""), ("unit", ""), ("floor", ""),
              ("note", f"CPU测试 {n}"), ("device_at", stamp),
              ("kept_photos", str(r.get_json()["id"])), ("sent_at", stamp)]
    if fmt == "multipart":
        body, ctype = multipart(dict(fields), {})
    else:
        body, ctype = urlencode(fields).encode(), "application/x-www-form-urlencoded;charset=UTF-8"
    counter["n"] = 0
    counter["sql"] = []
    clock["prof"] = profile if mode == "profile-report" else None
    r = c.post(f"/compounds/{compound_id}/report", data=body,
               headers={**headers, "Content-Type": ctype})
    clock["prof"] = None
    assert r.status_code == 201, (r.status_code, r.data[:300])
    print(json.dumps({"report_ms": clock["s"] * 1000, "report_sql": counter["n"],
                      "photo_ms": (photo_s - pipe_s) * 1000, "pipeline_ms": pipe_s * 1000,
                      "photo_sql": photo_sql, "sql": counter["sql"],
                      "photo_statements": photo_statements}), flush=True)
if profile:
    s = io.StringIO()
    pstats.Stats(profile, stream=s).sort_stats("cumulative").print_stats(70)
    pstats.Stats(profile, stream=s).sort_stats("tottime").print_stats(40)
    sys.stderr.write(s.getvalue())
"""


def setup_env(root: Path, tmp: Path, db_url: str | None) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ,
               PATROL_DATABASE_URL=db_url or f"sqlite:///{tmp / 'patrol.db'}",
               PATROL_PHOTO_DIR=str(tmp / "photos"), PATROL_SECRET_KEY="bench",
               PATROL_BASE_URL="http://127.0.0.1:5000", PATROL_SECURE_COOKIES="0",
               PATROL_PROXY_HOPS="1", PATROL_INSTANCE_DIR=str(tmp))
    if db_url:
        from sqlalchemy import create_engine, text
        engine = create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    cli = [sys.executable, "-c", "from patrol.cli import main; main()"]
    for step in (["db", "upgrade"], ["seed-demo"]):
        subprocess.run([*cli, *step], env=env, cwd=root, check=True, capture_output=True)
    return env


class Side:
    def __init__(self, name: str, root: Path, env: dict, fmt: str, mode: str = "time"):
        self.name, self.fmt = name, fmt
        script = WORKER % {"phones": PHONES, "bench": str(Path(__file__).resolve().parent)}
        # The request log lines go to a file (the profile, on stderr, is shown).
        self.log = open(Path(env["PATROL_INSTANCE_DIR"]) / "worker.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-c", script, str(root), fmt, mode],
                                     cwd=root, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     stderr=None if mode.startswith("profile") else self.log)
        assert self.proc.stdout and self.proc.stdin
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"{name}: the worker did not start; see {self.log.name}")
        json.loads(line)
        self.got: list[dict] = []

    def run(self, n: int, path: Path) -> dict:
        assert self.proc.stdout and self.proc.stdin
        self.proc.stdin.write(f"{n} {path}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"{self.name}: the worker failed; see {self.log.name}")
        got = json.loads(line)
        self.got.append(got)
        return got

    def close(self):
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(60)
        self.log.close()


def pg(name: str) -> str | None:
    from pgdb import bench_url
    return bench_url(name)


def summary(got: list[dict], key: str) -> tuple[float, float]:
    values = [g[key] for g in got]
    return statistics.median(values), statistics.fmean(values)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", default=OLD_DEFAULT, help="commit to compare against")
    ap.add_argument("--rounds", type=int, default=100, help="reports per side and engine")
    ap.add_argument("--warmup", type=int, default=12, help="reports per side not counted")
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    ap.add_argument("--old-body", choices=["multipart", "urlencoded"], default="multipart")
    ap.add_argument("--new-body", choices=["multipart", "urlencoded"], default="urlencoded")
    ap.add_argument("--profile", choices=["report", "photo"],
                    help="cProfile the new tree alone, the report or the photo request")
    ap.add_argument("--sql", action="store_true", help="print one report's statements")
    args = ap.parse_args()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')} UTC  machine: {describe()}  "
          f"load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    tmp = Path(tempfile.mkdtemp(prefix="patrol-report-cpu-"))
    import load_reports as lr
    count = args.rounds + args.warmup
    paths = []
    for n in range(count):
        paths.append(tmp / f"p{n}.jpg")
        paths[-1].write_bytes(lr.photo_bytes(10_000 + n))
    engines = {"sqlite": ["sqlite"], "postgresql": ["postgresql"],
               "both": ["sqlite", "postgresql"]}[args.db]
    alone = args.profile or args.sql
    old_tree = tmp / "old"
    if not alone:
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old_tree), args.old],
                       cwd=ROOT, check=True)
    try:
        for engine in engines:
            urls = {"old": None, "new": None}
            if engine == "postgresql":
                urls = {"old": pg("patrol_helper_cpu_old"), "new": pg("patrol_helper_cpu")}
                if not urls["new"]:
                    print("postgresql: no server, skipped")
                    continue
            if alone:
                env = setup_env(ROOT, tmp / f"{engine}-new", urls["new"])
                side = Side("new", ROOT, env, args.new_body,
                            f"profile-{args.profile}" if args.profile else "sql")
                for n, path in enumerate(paths if args.profile else paths[:2]):
                    got = side.run(n, path)
                if args.sql:
                    print(f"{engine}: {got['photo_sql']} statements in one photo request:")
                    print("\n".join("  " + s for s in got["photo_statements"]))
                    print(f"{engine}: {got['report_sql']} statements in one report request:")
                    print("\n".join("  " + s for s in got["sql"]))
                side.close()
                ms = summary(side.got[args.warmup:] or side.got, "report_ms")
                print(f"{engine}: report request {ms[0]:.2f} ms median (under cProfile if "
                      "it was profiled)")
                continue
            sides = [Side("old", old_tree, setup_env(old_tree, tmp / f"{engine}-old",
                                                       urls["old"]), args.old_body),
                     Side("new", ROOT, setup_env(ROOT, tmp / f"{engine}-new", urls["new"]),
                          args.new_body)]
            try:
                for n, path in enumerate(paths):
                    for side in (sides if n % 2 == 0 else sides[::-1]):
                        side.run(n, path)
            finally:
                for side in sides:
                    side.close()
            print(f"\n{engine}: old {args.old} ({args.old_body} report), new working tree "
                  f"({args.new_body} report); {args.rounds} reports each after "
                  f"{args.warmup} not counted, interleaved, {PHONES} phones")
            print(f"{'CPU ms (median / mean)':<28}{'old':>16}{'new':>16}{'old / new':>12}")
            out = {}
            for key, label in (("report_ms", "report request"),
                               ("photo_ms", "photo request w/o pipeline"),
                               ("pipeline_ms", "photos.process")):
                old = summary(sides[0].got[args.warmup:], key)
                new = summary(sides[1].got[args.warmup:], key)
                out[key] = {"old": old, "new": new}
                print(f"{label:<28}{old[0]:>8.2f}/{old[1]:<7.2f}{new[0]:>8.2f}/{new[1]:<7.2f}"
                      f"{old[0] / new[0]:>6.2f}/{old[1] / new[1]:.2f}")
            both = [[g["report_ms"] + g["photo_ms"] for g in s.got[args.warmup:]]
                    for s in sides]
            o, n_ = statistics.median(both[0]), statistics.median(both[1])
            print(f"{'both requests w/o pipeline':<28}{o:>8.2f}{'':8}{n_:>8.2f}{'':8}"
                  f"{o / n_:>6.2f}")
            for key in ("report_sql", "photo_sql"):
                print(f"{key.replace('_sql', ' request statements'):<28}"
                      f"{statistics.median(g[key] for g in sides[0].got):>8.0f}{'':8}"
                      f"{statistics.median(g[key] for g in sides[1].got):>8.0f}")
            print(json.dumps({"engine": engine, **out}))
    finally:
        if not alone:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT,
                           check=False)


if __name__ == "__main__":
    main()
