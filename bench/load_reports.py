"""Reports with photos under concurrent load, as `make run` serves them (issue 9, D1).

300 reports, each a photo upload then the report (as the phone's outbox sends them),
from 28 threads ("phones", each its own sign-in and its own address), against gunicorn
with the Makefile's settings (2 workers x 4 threads), on SQLite and on PostgreSQL, with
three notification receivers that always fail (names under .invalid: nothing leaves this
machine) and with none. It prints, per run: 5xx count, items stored, duplicates, and
throughput and latency. Targets: 0 5xx, exactly N items, 0 duplicates.

    .venv/bin/python bench/load_reports.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/load_reports.py --db sqlite --reports 100 --threads 12
    .venv/bin/python bench/load_reports.py --db sqlite --threads 12 --receivers 0 --against <commit>

--against serves an older commit and HEAD (each checked out clean with git worktree)
in turns, run after run, and prints the ratio of reports/s (issue 15 §3).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The checkout that is served and set up (--against switches it run by run).
TREE = ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SCENE = None


def photo_bytes(seed: int) -> bytes:
    """A unique 1600x1200 photo with sensor-like grain, about 300 KB as the phone sends it
    (bench/photo_cpu.py's scene; grain alone, as before, made 870 KB)."""
    global _SCENE
    sys.path.insert(0, str(ROOT / "bench"))
    from photo_cpu import grain, scene
    if _SCENE is None:
        _SCENE = scene(1600, 1200, 15)
    rnd = random.Random(seed)
    im = grain(_SCENE, 0.12)
    im.paste((rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)), (0, 0, 400, 300))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=80)
    return out.getvalue()


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                  f"{value}\r\n".encode())
    for name, (filename, data) in files.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                  f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


class Phone:
    """One volunteer's phone: its own cookies and its own address (X-Forwarded-For)."""

    def __init__(self, base, address):
        self.base, self.address = base, address
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf = None

    def call(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"X-Forwarded-For": self.address, **(headers or {})})
        try:
            with self.opener.open(req, timeout=120) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def sign_in(self, token):
        status, page = self.call("GET", f"/invite/{token}")
        csrf = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
        status, _ = self.call("POST", f"/invite/{token}", f"csrf_token={csrf}".encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"})
        assert status in (200, 302), f"sign-in failed: {status}"

    def report(self, compound_id, photo, seed):
        """The outbox's way: the photo, then the form, with the token the page gave (fetched
        once here, as the page's own). [(status, seconds, path)]."""
        calls = []

        def timed(method, path, body=None, headers=None):
            t = time.perf_counter()
            status, data = self.call(method, path, body, headers)
            calls.append((status, time.perf_counter() - t, path, data[:300]))
            return status, data

        if self.csrf is None:
            status, data = timed("GET", "/sync/token")
            if status != 200:
                return calls, None
            self.csrf = json.loads(data)["csrf"]
        sync = {"X-CSRFToken": self.csrf, "X-Patrol-Sync": "1"}
        body, ctype = multipart({"kind": "before"}, {"photo": ("p.jpg", photo)})
        status, data = timed("POST", "/photos", body, {**sync, "Content-Type": ctype})
        if status != 201:
            return calls, None
        key = str(uuid.uuid4())
        # The form as the outbox sends it since issue 15 §3: urlencoded (only strings are
        # left once the photo is up); multipart before.
        body = urlencode({"category": "flyers", "note": f"负载测试 {seed}", "client_uuid": key,
                          "kept_photos": json.loads(data)["id"]}).encode()
        ctype = "application/x-www-form-urlencoded;charset=UTF-8"
        status, data = timed("POST", f"/compounds/{compound_id}/report", body,
                             {**sync, "Content-Type": ctype})
        return calls, key if status in (200, 201) else None


def drive(phones, count, one) -> float:
    """Each phone, in its own thread, takes the next of `count` reports and calls
    `one(phone, n)`, until none are left; the seconds taken."""
    work = list(range(count))
    lock = threading.Lock()

    def walk(phone):
        while True:
            with lock:
                if not work:
                    return
                n = work.pop()
            one(phone, n)

    start = time.perf_counter()
    workers = [threading.Thread(target=walk, args=(p,)) for p in phones]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


def start_gunicorn(target, env, cwd, port, log_path):
    """gunicorn as `make run` serves (2 workers x 4 threads) on loopback, once it answers
    /healthz. Returns (process, its open log)."""
    log = open(log_path, "w")
    server = subprocess.Popen(
        [VENV_BIN / "gunicorn", "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}",
         target], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):   # gunicorn on a loaded 2-core machine: up to a minute
        if server.poll() is not None:
            sys.exit("the server did not start:\n" + Path(log_path).read_text()[-3000:])
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            return server, log
        except OSError:
            time.sleep(0.2)
    sys.exit("the server did not answer /healthz")


def python(script, env):
    """Run `script` with the app's settings in `env`; its last line is JSON."""
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=TREE,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench setup failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(env, volunteers, receivers):
    """Migrate, seed the demo, add volunteers with invites and failing receivers."""
    cli = [sys.executable, "-c", "from patrol.cli import main; main()"]   # TREE's patrol
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=TREE, check=True, capture_output=True)
    subprocess.run([*cli, "seed-demo"], env=env, cwd=TREE, check=True, capture_output=True)
    script = f"""
import json
from datetime import timedelta
from patrol import create_app
from patrol.extensions import db
from patrol.models import Compound, NotifyEndpoint, Team, User
from patrol.services import accounts
app = create_app()
with app.app_context():
    team = db.session.execute(db.select(Team)).scalars().first()
    compound = db.session.execute(db.select(Compound).order_by(Compound.id)).scalars().first()
    admin = db.session.execute(db.select(User).where(User.username == "admin")).scalar_one()
    tokens = []
    for n in range({volunteers}):
        user = User(username=f"load{{n}}", display_name=f"志愿者{{n}}", role="volunteer",
                    title="志愿者", community_id=team.community_id, team=team)
        db.session.add(user)
        db.session.flush()
        tokens.append(accounts.create_invite(user, admin, timedelta(hours=2)))
    for n in range({receivers}):
        db.session.add(NotifyEndpoint(name=f"坏接收端{{n}}", kind="json",
                                      target=f"https://receiver-{{n}}.invalid/hook",
                                      community_id=compound.community_id))
    db.session.commit()
    print(json.dumps({{"compound": compound.id, "tokens": tokens}}))
"""
    return python(script, env)


def count_items(env):
    script = """
import json
from patrol import create_app
from patrol.extensions import db
from patrol.models import Delivery, Item
app = create_app()
with app.app_context():
    rows = db.session.execute(db.select(Item.client_uuid).where(Item.note.like("负载测试%"))).all()
    keys = [r[0] for r in rows]
    deliveries = db.session.execute(db.select(Delivery.status, db.func.count())
                                    .group_by(Delivery.status)).all()
    print(json.dumps({"items": len(keys), "distinct": len(set(keys)),
                      "deliveries": {s: n for s, n in deliveries}}))
"""
    return python(script, env)


def reset_pg(url):
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def run(db_url, reports, threads, receivers, photos):
    tmp = Path(tempfile.mkdtemp(prefix="patrol-load-"))
    port = free_port()
    env = dict(os.environ,
               PATROL_DATABASE_URL=db_url or f"sqlite:///{tmp / 'patrol.db'}",
               PATROL_PHOTO_DIR=str(tmp / "photos"), PATROL_SECRET_KEY="bench",
               PATROL_BASE_URL=f"http://127.0.0.1:{port}", PATROL_SECURE_COOKIES="0",
               PATROL_PROXY_HOPS="1", PATROL_INSTANCE_DIR=str(tmp))
    if db_url:
        reset_pg(db_url)
    setup = prepare(env, threads, receivers)
    server, log = start_gunicorn("patrol:create_app()", env, TREE, port, tmp / "gunicorn.log")
    base = f"http://127.0.0.1:{port}"
    phones = [Phone(base, f"10.9.{n // 250}.{n % 250 + 1}") for n in range(threads)]
    for phone, token in zip(phones, setup["tokens"], strict=False):   # more tokens than threads
        phone.sign_in(token)
    lock = threading.Lock()
    calls, keys, submissions = [], [], []

    def one(phone, n):
        got, key = phone.report(setup["compound"], photos[n % len(photos)], n)
        with lock:
            calls.extend(got)
            keys.append(key)
            submissions.append(sum(c[1] for c in got))

    elapsed = drive(phones, reports, one)
    time.sleep(2)  # let any background work of the server finish before counting
    server.terminate()
    server.wait(30)
    log.close()
    counted = count_items(env)
    server_log = (tmp / "gunicorn.log").read_text(errors="replace")
    errors5 = [c for c in calls if c[0] >= 500]
    reports_lat = sorted(c[1] for c in calls if "/report" in c[2])
    return {
        "engine": "postgresql" if db_url else "sqlite", "receivers": receivers,
        "reports": reports, "threads": threads, "seconds": round(elapsed, 1),
        "reports_per_s": round(reports / elapsed, 2),
        "acknowledged": sum(1 for k in keys if k), "stored": counted["items"],
        "duplicates": counted["items"] - counted["distinct"],
        "5xx": len(errors5), "other_errors": sum(1 for c in calls if 400 <= c[0] < 500),
        "report_p50_s": round(statistics.median(reports_lat), 3) if reports_lat else None,
        "report_p95_s": round(percentile95(reports_lat), 3) if reports_lat else None,
        "submission_p50_s": round(statistics.median(submissions), 3),
        "submission_p95_s": round(percentile95(submissions), 3),
        "locked_in_log": server_log.count("database is locked"),
        "deliveries": counted["deliveries"],
        "first_5xx": errors5[0][3].decode(errors="replace")[:200] if errors5 else None,
    }


def percentile95(values):
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * 0.95) - 1, 0)]


def pg_url():
    sys.path.insert(0, str(ROOT))
    from bench.pgdb import bench_url
    return bench_url("patrol_bench")


def against(commit, args, photos):
    """Serve `commit` and HEAD, each from a clean worktree, in turns (old, new, old, new):
    the machine's load falls on both alike. Prints each run and the ratio of medians."""
    global TREE
    tmp = Path(tempfile.mkdtemp(prefix="patrol-load-trees-"))
    trees = {"old": tmp / "old", "new": tmp / "new"}
    for name, rev in (("old", commit), ("new", "HEAD")):
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(trees[name]), rev],
                       cwd=ROOT, check=True)
    rates: dict[str, list[float]] = {"old": [], "new": []}
    failed = False
    try:
        for turn in range(args.turns):
            for name in (("old", "new") if turn % 2 == 0 else ("new", "old")):
                TREE = trees[name]
                result = run(None, args.reports, args.threads, args.receivers[0], photos)
                rates[name].append(result["reports_per_s"])
                print(json.dumps({"code": name, **result}, ensure_ascii=False), flush=True)
                failed |= (result["5xx"] > 0 or result["stored"] != args.reports
                           or result["duplicates"] > 0)
    finally:
        TREE = ROOT
        for tree in trees.values():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                           check=False)
    old, new = statistics.median(rates["old"]), statistics.median(rates["new"])
    print(f"reports/s, median of {args.turns}: old ({commit}) {old:.2f}, new (HEAD) {new:.2f}, "
          f"ratio {new / old:.2f}")
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--reports", type=int, default=300)
    ap.add_argument("--threads", type=int, default=28)
    ap.add_argument("--receivers", type=int, nargs="+", default=[3, 0])
    ap.add_argument("--against", metavar="COMMIT",
                    help="serve COMMIT and HEAD in turns on SQLite and print the ratio")
    ap.add_argument("--turns", type=int, default=2, help="runs per side with --against")
    args = ap.parse_args()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}  machine: {os.uname().machine}, "
          f"{os.cpu_count()} cores  load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    photos = [photo_bytes(n) for n in range(args.reports)]  # unique: no content-address reuse
    print(f"photos: {len(photos)}, median {statistics.median(map(len, photos)):,.0f} bytes")
    if args.against:
        failed = against(args.against, args, photos)
        print("RESULT:", "FAIL" if failed else "OK (0 5xx, every report stored once)")
        sys.exit(1 if failed else 0)
    engines = {"sqlite": [None], "postgresql": ["pg"], "both": [None, "pg"]}[args.db]
    failed = False
    for engine in engines:
        url = pg_url() if engine == "pg" else None
        if engine == "pg" and not url:
            print("postgresql: no server, skipped")
            continue
        for receivers in args.receivers:
            result = run(url, args.reports, args.threads, receivers, photos)
            print(json.dumps(result, ensure_ascii=False), flush=True)
            failed |= (result["5xx"] > 0 or result["stored"] != args.reports
                       or result["duplicates"] > 0 or result["acknowledged"] != args.reports)
    print("RESULT:", "FAIL" if failed else "OK (0 5xx, every report stored once)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
