"""Scale-out on one machine (issue 16): everything on loopback, the deploy/ files as they are.

Starts PostgreSQL (its own database, `patrol_scale`), Redis (Debian's redis-server on a
free loopback port), moto's S3-compatible server, three app instances and two job workers
run from the ExecStart lines of deploy/systemd/patrol@.service and patrol-worker@.service,
nginx (as this user, its own prefix in a temporary folder) with deploy/nginx/patrol.conf,
and the settings of deploy/patrol.env.example with the hosts and secrets replaced by the
loopback ones. A webhook receiver on 127.0.0.1 counts every notification it is sent.

Then volunteers walk the loop, each phone from its own loopback address (127.0.1.N):
scan the gate, open the compound's list, report with a unique 1600x1200 photo (the
outbox's way: token, photo, form with a client_uuid); a manager opens the inbox,
acknowledges and fixes with an after-photo; another volunteer scans the gate and verifies
with a photo. A phone that gets no answer or a 502/503/504 sends again with the same
client_uuid (and the photo id it already has), as the outbox does.

Phases: 1 instance, then 3 instances, then 3 instances with `kill -9` of one instance's
process group and of one worker in the middle, both started again. Afterwards: reports
acknowledged against stored, duplicates, orphans in the bucket (`patrol photos-orphans`
and a strict key-by-key comparison), deliveries against sends at the receiver, p50/p95,
reports/s per phase, and CPU seconds per component. Last, each timer's service
(daily, patrols-remind, weekly, backup) runs once from its ExecStart line.

    .venv/bin/python bench/scale_out.py            # or: make bench-scale
    .venv/bin/python bench/scale_out.py --phase-seconds 30 --phones 8

Only loopback traffic. Needs nginx (nginx-light), redis-server and PostgreSQL (Makefile
APT_TEST). Exit 1 when a report is lost or duplicated, or a notification is sent twice.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import queue
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
INSTANCE_PORTS = (8001, 8002, 8003)     # as written in deploy/nginx/patrol.conf
RETRY_STATUS = {0, 502, 503, 504}       # no answer, or nginx found no instance
NOTE = "扩容测试"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, seconds=90, proc=None, log=None):
    end = time.time() + seconds
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            tail = Path(log).read_text(errors="replace")[-3000:] if log else ""
            sys.exit(f"{what} stopped at start:\n{tail}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} did not come up in {seconds} s")


def port_open(port) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- the deploy/ files, made to run here -------------------------------------------------

def read_env_example(overrides: dict) -> dict:
    """deploy/patrol.env.example (systemd EnvironmentFile syntax) with `overrides` put in;
    every override must name a variable the file sets, so the file cannot drift."""
    values = {}
    for line in (DEPLOY / "patrol.env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    hosts = [v for v in values.values() if re.search(r"://[^/]*\.invalid", v)]
    for key, value in overrides.items():
        if key not in values and not key.startswith("PATROL_WEBHOOK"):
            sys.exit(f"deploy/patrol.env.example does not set {key}")
        values[key] = value
    left = [v for v in values.values() if ".invalid" in v or "CHANGE-ME" in v]
    if left:
        sys.exit(f"placeholders left after the overrides: {left}")
    assert hosts, "the example should name its hosts under .invalid"
    return values


def exec_start(unit: str, paths: dict, instance: str = "") -> list[str]:
    """A unit's ExecStart as a command here: /srv/patrol → this checkout, %i → instance,
    systemd's %% and $$ unescaped."""
    text = (DEPLOY / "systemd" / unit).read_text()
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))[len("ExecStart="):]
    line = line.replace("%i", instance).replace("%%", "%").replace("$$", "$")
    for old, new in paths.items():
        line = line.replace(old, new)
    return shlex.split(line)


def render_nginx(tmp: Path, listen: int, ports: dict) -> Path:
    """deploy/nginx/patrol.conf with its ports and paths replaced (each must be found),
    inside a minimal main configuration for an nginx run as this user."""
    site = (DEPLOY / "nginx" / "patrol.conf").read_text()
    swaps = [("listen 80;", f"listen 127.0.0.1:{listen};"), ("/srv/patrol/", f"{ROOT}/")]
    swaps += [(f"127.0.0.1:{p}", f"127.0.0.1:{q}") for p, q in ports.items()]
    for old, new in swaps:
        if old not in site:
            sys.exit(f"deploy/nginx/patrol.conf no longer contains {old!r}: update the bench")
        site = site.replace(old, new)
    (tmp / "nginx").mkdir(exist_ok=True)
    (tmp / "nginx" / "patrol.conf").write_text(site)
    main = f"""
worker_processes 1;
pid {tmp}/nginx/nginx.pid;
error_log {tmp}/nginx/error.log warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {tmp}/nginx/access.log;
    client_body_temp_path {tmp}/nginx/body;
    proxy_temp_path {tmp}/nginx/proxy;
    fastcgi_temp_path {tmp}/nginx/fastcgi;
    uwsgi_temp_path {tmp}/nginx/uwsgi;
    scgi_temp_path {tmp}/nginx/scgi;
    include {tmp}/nginx/patrol.conf;
}}
"""
    (tmp / "nginx" / "nginx.conf").write_text(main)
    return tmp / "nginx" / "nginx.conf"


def check_front(base) -> list[str]:
    """What deploy/nginx/patrol.conf promises, asked of the running nginx."""
    problems = []
    gz = {"Accept-Encoding": "gzip, br"}
    css = requests.get(base + "/static/css/app.css", headers=gz, timeout=10)
    if css.headers.get("Content-Encoding") != "gzip" or \
            css.headers.get("Cache-Control") != "no-cache":
        problems.append(f"static css: {css.headers}")
    versioned = requests.get(base + "/static/css/app.css?v=0123456789ab", headers=gz, timeout=10)
    if versioned.headers.get("Cache-Control") != "public, max-age=31536000, immutable":
        problems.append(f"versioned static css: {versioned.headers}")
    icon = requests.get(base + "/static/icons/icon-192.png", timeout=10)
    if icon.raw.headers.getlist("Cache-Control") != ["public, max-age=31536000, immutable"]:
        problems.append(f"static icon: {icon.headers}")
    page = requests.get(base + "/login", headers=gz, timeout=10)
    if page.headers.get("Content-Encoding") != "br":      # the app's own, passed through
        problems.append(f"page: {page.headers}")
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), 10) as s:
        s.sendall(b"POST /photos HTTP/1.1\r\nHost: x\r\nContent-Length: 44040193\r\n"
                  b"Content-Type: application/octet-stream\r\n\r\n")
        if b" 413 " not in s.recv(200):                     # over client_max_body_size
            problems.append("42 MB upload not refused with 413")
    return problems


# --- services ------------------------------------------------------------------------------

class Services:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name, cmd, env=None, cwd=None):
        log = open(self.tmp / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(cmd, env=env, cwd=cwd or ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self.procs[name]

    def kill9(self, name):
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)     # the master and its workers, no goodbye
        proc.wait()

    def stop_all(self):
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


LAST_CPU: dict[int, tuple[str, float]] = {}
DB_NAME = "patrol_scale"


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) per component: our process groups by id, PostgreSQL's
    backends serving our database (other sessions' databases on the same server, and the
    server's shared background processes, are left out). A process that has died
    (kill -9) keeps the time last seen, so sample just before a kill."""
    tick = os.sysconf("SC_CLK_TCK")
    by_pgid = {pgid: name for name, pgid in groups.items()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        pgid, cpu = int(fields[2]), (int(fields[11]) + int(fields[12])) / tick
        if pgid in by_pgid:
            LAST_CPU[int(entry)] = (by_pgid[pgid].rstrip("0123456789"), cpu)
        elif comm.startswith("postgres") and DB_NAME.encode() in _cmdline(entry):
            LAST_CPU[int(entry)] = ("postgres", cpu)   # this database's backends only
    out: dict[str, float] = defaultdict(float)
    for label, cpu in LAST_CPU.values():
        out[label] += cpu
    own = os.times()
    out["load client"] = own.user + own.system
    return dict(out)


# --- the webhook receiver --------------------------------------------------------------------

class Receiver:
    def __init__(self):
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.seen[self.headers.get("X-Patrol-Delivery")] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- photos ------------------------------------------------------------------------------------

class Photos:
    """A grainy 1600x1200 scene as the phone's canvas sends it (bench/photo_cpu.py), made
    unique per photo by a coloured block and the photo's number in its top row (26 ms each,
    made by the phone's thread as a phone encodes its own)."""

    def __init__(self):
        sys.path.insert(0, str(ROOT / "bench"))
        from photo_cpu import grain, scene
        self.base = grain(scene(1600, 1200, 15), 0.12)
        self.small = self.base.resize((800, 600))
        self.count = 0
        self.lock = threading.Lock()

    def next(self, small=False) -> bytes:
        with self.lock:
            self.count += 1
            n = self.count
        im = (self.small if small else self.base).copy()
        rnd = random.Random(n)
        im.paste((rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)), (0, 0, 200, 150))
        for bit in range(32):
            im.putpixel((300 + bit, 0), (255, 255, 255) if n >> bit & 1 else (0, 0, 0))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=80)
        return out.getvalue()


# --- phones ------------------------------------------------------------------------------------

class SourceAdapter(HTTPAdapter):
    def __init__(self, source, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


class Phone:
    def __init__(self, run, name, address):
        self.run, self.name = run, name
        self.http = requests.Session()
        adapter = SourceAdapter(address)
        self.http.mount("http://", adapter)
        self.csrf = None

    def call(self, kind, method, path, **kw):
        t = time.perf_counter()
        try:
            resp = self.http.request(method, self.run.base + path, timeout=120, **kw)
            status, body = resp.status_code, resp.content
        except requests.RequestException:
            status, body = 0, b""
        self.run.record(kind, status, time.perf_counter() - t)
        return status, body

    def sign_in(self, token):
        status, page = self.call("sign-in", "GET", f"/invite/{token}")
        csrf = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
        status, _ = self.call("sign-in", "POST", f"/invite/{token}", data={"csrf_token": csrf})
        assert status == 200, f"{self.name}: sign-in {status}"

    def token(self):
        while True:
            status, body = self.call("token", "GET", "/sync/token")
            if status == 200:
                self.csrf = json.loads(body)["csrf"]
                return
            self.run.pause()

    def send(self, kind, path, fields, files=None, ok=(200, 201)):
        """POST as the outbox: JSON, CSRF; again on no answer or 5xx from nginx, and
        with a fresh token when it was refused. Returns (status, json or None)."""
        for _ in range(40):
            if self.csrf is None:
                self.token()
            status, body = self.call(kind, "POST", path, data=fields, files=files,
                                     headers={"X-CSRFToken": self.csrf, "X-Patrol-Sync": "1"})
            if status in ok:
                return status, json.loads(body)
            if status in RETRY_STATUS:
                self.run.retries[kind] += 1
                self.run.pause()
                continue
            if status == 400 and b"csrf" in body.lower():
                self.csrf = None
                continue
            return status, body
        return -1, None

    def scan(self, qr):
        """The gate QR; the redirect is the compound's page with its list."""
        for _ in range(40):
            status, _ = self.call("scan + compound list", "GET", f"/c/{qr}")
            if status == 200:
                return True
            self.run.pause()
        return False

    def report(self, compound):
        self.scan(compound["qr"])
        status, photo = self.send("photo upload", "/photos", {"kind": "before"},
                                  {"photo": ("p.jpg", self.run.photos.next(), "image/jpeg")},
                                  ok=(201,))
        if status != 201:
            self.run.failures.append(("photo", status))
            return
        key = str(uuid.uuid4())
        self.run.sent_keys.add(key)
        status, body = self.send("report", f"/compounds/{compound['id']}/report",
                                 {"category": "flyers", "note": f"{NOTE} {key[:8]}",
                                  "client_uuid": key, "kept_photos": str(photo["id"])})
        if status in (200, 201):
            self.run.acknowledged(key, body["id"], compound, self.name)
        else:
            self.run.failures.append(("report", status, str(body)[:200]))

    def act(self, item_id, action, fields, photo=False):
        fields = {"action": action, "client_uuid": str(uuid.uuid4()), **fields}
        files = None
        if photo:
            files = {"photos": ("a.jpg", self.run.photos.next(small=True), "image/jpeg")}
        status, body = self.send(action, f"/items/{item_id}/act", fields, files)
        if status not in (200, 201):
            self.run.failures.append((action, status, str(body)[:200]))
        return status in (200, 201)


# --- the run -----------------------------------------------------------------------------------

class Run:
    def __init__(self, base, photos):
        self.base, self.photos = base, photos
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int, float, float]] = []
        self.retries: Counter = Counter()
        self.failures: list = []
        self.sent_keys: set[str] = set()
        self.acked: dict[str, int] = {}
        self.ack_times: list[float] = []
        self.to_ack: queue.Queue = queue.Queue()
        self.to_verify: queue.Queue = queue.Queue()
        self.verified = 0
        self.stop = threading.Event()

    def record(self, kind, status, seconds):
        with self.lock:
            self.calls.append((kind, status, seconds, time.time()))

    def pause(self):
        time.sleep(0.3)

    def acknowledged(self, key, item_id, compound, reporter):
        with self.lock:
            self.acked[key] = item_id
            self.ack_times.append(time.time())
        self.to_ack.put((item_id, compound, reporter))


def volunteer(run, phone, compounds, n):
    rnd = random.Random(n)
    while not run.stop.is_set():
        try:
            item_id, compound, reporter = run.to_verify.get_nowait()
        except queue.Empty:
            item_id = None
        if item_id is not None and reporter != phone.name:
            # Back at the gate: scan, then check the fix with a photo.
            phone.scan(compound["qr"])
            if phone.act(item_id, "verify", {"rating": "5"}, photo=True):
                with run.lock:
                    run.verified += 1
        elif item_id is not None:
            run.to_verify.put((item_id, compound, reporter))
        phone.report(compounds[rnd.randrange(len(compounds))])
        if rnd.random() < 0.3:
            phone.call("home list", "GET", "/")


def manager(run, phone, tz):
    while not run.stop.is_set():
        try:
            item_id, compound, reporter = run.to_ack.get(timeout=0.5)
        except queue.Empty:
            continue
        phone.call("inbox", "GET", "/inbox")
        deadline = (datetime.now(timezone.utc) + timedelta(days=2)).astimezone(tz)
        if phone.act(item_id, "acknowledge", {"deadline": deadline.strftime("%Y-%m-%dT%H:%M")}):
            if phone.act(item_id, "fix", {"note": "已清理"}, photo=True):
                run.to_verify.put((item_id, compound, reporter))


def python(env, script):
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench step failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


PREPARE = """
import json
from datetime import timedelta
from patrol import create_app
from patrol.extensions import db
from patrol.models import Compound, NotifyEndpoint, Team, User
from patrol.services import accounts
app = create_app()
with app.app_context():
    mgr = db.session.execute(db.select(User).where(User.username == "manager1")).scalar_one()
    admin = db.session.execute(db.select(User).where(User.username == "admin")).scalar_one()
    compounds = db.session.execute(db.select(Compound).where(
        Compound.company_id == mgr.company_id, Compound.archived_at.is_(None))
        .order_by(Compound.id)).scalars().all()
    community = compounds[0].community_id
    compounds = [c for c in compounds if c.community_id == community]
    team = db.session.execute(db.select(Team).where(Team.community_id == community)).scalars().first()
    tokens = []
    for n in range(PHONES):
        user = User(username=f"scale{n}", display_name=f"志愿者{n}", role="volunteer",
                    title="志愿者", community_id=community, team=team)
        db.session.add(user)
        db.session.flush()
        tokens.append(accounts.create_invite(user, admin, timedelta(hours=2)))
    manager_tokens = [accounts.create_invite(mgr, admin, timedelta(hours=2))
                      for _ in range(MANAGERS)]
    # Only this receiver: the seed's own receivers are switched off, so every delivery
    # counted below is one the receiver should see.
    for e in db.session.execute(db.select(NotifyEndpoint)).scalars():
        e.active = False
    db.session.add(NotifyEndpoint(name="扩容测试接收端", kind="json", target="RECEIVER",
                                  community_id=community))
    db.session.commit()
    print(json.dumps({"compounds": [{"id": c.id, "qr": c.qr_token} for c in compounds],
                      "tokens": tokens, "managers": manager_tokens}))
"""

COUNT = """
import json
from patrol import create_app
from patrol.extensions import db
from patrol.models import Delivery, Item, NotifyEndpoint, Photo
app = create_app()
with app.app_context():
    rows = db.session.execute(db.select(Item.client_uuid, Item.id, Item.status)
                              .where(Item.note.like("NOTE%"))).all()
    ep = db.session.execute(db.select(NotifyEndpoint.id).where(
        NotifyEndpoint.target == "RECEIVER")).scalar_one()
    deliveries = db.session.execute(db.select(Delivery.id, Delivery.status, Delivery.attempts,
                                              Delivery.event)
                                    .where(Delivery.endpoint_id == ep)).all()
    keys = set()
    for k, t in db.session.execute(db.select(Photo.key, Photo.thumb_key)).all():
        keys.update([k, t])
    pending = db.session.execute(db.select(db.func.count()).select_from(Photo)
                                 .where(Photo.item_id.is_(None),
                                        Photo.resident_report_id.is_(None))).scalar()
    print(json.dumps({"items": [[str(r[0]), r[1], r[2]] for r in rows],
                      "deliveries": [list(d) for d in deliveries],
                      "photo_keys": sorted(keys), "pending_photos": pending}))
"""


def db_size(url) -> int:
    from sqlalchemy import create_engine, text
    engine = create_engine(url)
    with engine.connect() as conn:
        size = conn.execute(text("select pg_database_size(current_database())")).scalar()
    engine.dispose()
    return int(size)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def main():  # noqa: C901 (one run, told step by step)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase-seconds", type=int, default=40,
                    help="seconds of load with 1 and with 3 instances (the kill phase is 1.5x)")
    ap.add_argument("--phones", type=int, default=12)
    ap.add_argument("--managers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    for tool in ("nginx", "redis-server"):
        path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists()
                                      else None)
        if not path:
            sys.exit(f"{tool} is not installed: make test-system-deps (Makefile APT_TEST)")
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
          f"machine: {os.uname().machine}, {os.cpu_count()} cores  "
          f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
          f"commit: {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()}",  # noqa: E501
          flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="patrol-scale-"))
    services = Services(tmp)
    try:
        return run_all(args, tmp, services, nginx_bin)
    finally:
        services.stop_all()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept: {tmp}")


def run_all(args, tmp, services, nginx_bin):  # noqa: C901
    # PostgreSQL: this machine's cluster, a database of our own (never patrol_test).
    sys.path.insert(0, str(ROOT))
    from bench.pgdb import bench_url
    db_url = bench_url(DB_NAME)
    if not db_url:
        sys.exit("no PostgreSQL server (bash scripts/pg-test-db.sh)")
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()

    redis_port, s3_port, listen = free_port(), free_port(), free_port()
    app_ports = {p: free_port() for p in INSTANCE_PORTS}
    redis = services.start("redis", ["redis-server", "--port", str(redis_port), "--bind",
                                     "127.0.0.1", "--save", "", "--appendonly", "no",
                                     "--dir", str(tmp)])
    moto = services.start("moto", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1",
                                   "-p", str(s3_port)])
    wait_for("redis", lambda: port_open(redis_port), proc=redis, log=tmp / "redis.log")
    wait_for("moto", lambda: port_open(s3_port), proc=moto, log=tmp / "moto.log")
    import boto3
    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                 aws_access_key_id="bench", aws_secret_access_key="bench"
                 ).create_bucket(Bucket="patrol-photos")
    receiver = Receiver()
    state = tmp / "state"
    state.mkdir()
    (tmp / "backups").mkdir()
    base = f"http://127.0.0.1:{listen}"
    settings = read_env_example({
        "PATROL_SECRET_KEY": uuid.uuid4().hex, "PATROL_BASE_URL": base,
        "PATROL_INSTANCE_DIR": str(state), "PATROL_DATABASE_URL": db_url,
        "PATROL_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "PATROL_S3_ACCESS_KEY_ID": "bench", "PATROL_S3_SECRET_ACCESS_KEY": "bench",
        "PATROL_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        # Plain http on loopback: no TLS here, so cookies without the Secure flag.
        "PATROL_SECURE_COOKIES": "0", "PATROL_WEBHOOK_ALLOW_PRIVATE": "1",
        "PATROL_LOG_LEVEL": "WARNING"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATROL_")}
    env.update(settings)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    paths = {"/srv/patrol/.venv/bin/": f"{VENV_BIN}/", "/srv/patrol": str(ROOT),
             "/var/lib/patrol": str(state), "/var/backups/patrol": str(tmp / "backups")}

    subprocess.run(exec_start("patrol-migrate.service", paths), env=env, cwd=ROOT, check=True,
                   capture_output=True)
    subprocess.run([str(VENV_BIN / "patrol"), "seed-demo"], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    setup = python(env, PREPARE.replace("PHONES", str(args.phones))
                   .replace("MANAGERS", str(args.managers))
                   .replace("RECEIVER", f"http://127.0.0.1:{receiver.port}/hook"))
    db_bytes0 = db_size(db_url)
    print(f"set up: PostgreSQL {db_url.rsplit('@', 1)[1]}, Redis :{redis_port}, "
          f"S3 (moto) :{s3_port}, nginx :{listen}, receiver :{receiver.port}, "
          f"{len(setup['compounds'])} compounds", flush=True)

    def start_app(n):
        port = INSTANCE_PORTS[n]
        cmd = exec_start("patrol@.service", paths, str(app_ports[port]))
        proc = services.start(f"app{n + 1}", cmd, env)
        wait_for(f"app{n + 1}", lambda: requests.get(
            f"http://127.0.0.1:{app_ports[port]}/readyz", timeout=5).status_code == 200,
            proc=proc, log=tmp / f"app{n + 1}.log")

    def start_worker(n):
        services.start(f"worker{n + 1}", exec_start("patrol-worker@.service", paths, str(n + 1)),
                       env)

    start_app(0)
    for n in range(2):
        start_worker(n)
    conf = render_nginx(tmp, listen, app_ports)
    nginx = services.start("nginx", [nginx_bin, "-c", str(conf), "-p", str(tmp / "nginx"),
                                     "-g", "daemon off;"])
    wait_for("nginx", lambda: port_open(listen), proc=nginx, log=tmp / "nginx.log")

    front = check_front(base)
    print(f"nginx: {'gzip static, no-cache or (?v=) immutable scripts, immutable icons, the app brotli, 413 over 41 MB' if not front else front}",  # noqa: E501
          flush=True)
    from zoneinfo import ZoneInfo
    tz = ZoneInfo(settings["PATROL_TIMEZONE"])
    photos = Photos()
    run = Run(base, photos)
    phones = [Phone(run, f"v{n}", f"127.0.1.{n + 1}") for n in range(args.phones)]
    managers = [Phone(run, f"m{n}", f"127.0.2.{n + 1}") for n in range(args.managers)]
    for phone, token in zip(phones + managers, setup["tokens"] + setup["managers"],
                            strict=True):
        phone.sign_in(token)
    groups = {name: proc.pid for name, proc in services.procs.items()}

    # The load runs through all phases; only the servers change under it.
    threads = [threading.Thread(target=volunteer, args=(run, p, setup["compounds"], n))
               for n, p in enumerate(phones)]
    threads += [threading.Thread(target=manager, args=(run, m, tz)) for m in managers]
    phases = []

    def phase(name, seconds, during=None):
        cpu0, t0, n0 = cpu_seconds(groups), time.time(), len(run.ack_times)
        if during:
            during(t0)
        left = t0 + seconds - time.time()
        if left > 0:
            time.sleep(left)
        t1 = time.time()
        cpu1 = cpu_seconds(groups)
        phases.append({"phase": name, "t0": t0, "t1": t1, "seconds": round(t1 - t0, 1),
                       "reports": len(run.ack_times) - n0,
                       "reports_per_s": round((len(run.ack_times) - n0) / (t1 - t0), 2),
                       "cpu": {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 1)
                               for k in sorted(set(cpu1) | set(cpu0))},
                       "load": round(os.getloadavg()[0], 2)})
        print(json.dumps({k: v for k, v in phases[-1].items() if k not in ("t0", "t1")},
                         ensure_ascii=False), flush=True)

    for t in threads:
        t.start()
    time.sleep(5)   # warm-up, not counted
    phase("1 instance", args.phase_seconds)
    for n in (1, 2):
        start_app(n)
    groups.update({name: proc.pid for name, proc in services.procs.items()})
    time.sleep(3)
    phase("3 instances", args.phase_seconds)
    kills = {}

    def crash(t0):
        time.sleep(args.phase_seconds * 0.3)
        cpu_seconds(groups)     # the CPU the victims used so far
        kills["app"] = time.time()
        services.kill9("app2")
        services.kill9("worker1")
        print("kill -9: app2 (gunicorn master and workers), worker1", flush=True)
        time.sleep(args.phase_seconds * 0.3)
        start_app(1)
        start_worker(0)
        groups.update({name: proc.pid for name, proc in services.procs.items()})
        kills["back"] = time.time()
        print(f"app2 and worker1 started again after {kills['back'] - kills['app']:.1f} s",
              flush=True)

    phase("3 instances, kill -9 and restart", int(args.phase_seconds * 1.5), crash)
    run.stop.set()
    for t in threads:
        t.join(180)

    # Every delivery due should reach the receiver; the worker's sweep runs each minute.
    deadline = time.time() + 90
    counted = None
    while time.time() < deadline:
        counted = python(env, COUNT.replace("NOTE", NOTE).replace(
            "RECEIVER", f"http://127.0.0.1:{receiver.port}/hook"))
        if all(d[1] != "pending" for d in counted["deliveries"]):
            break
        time.sleep(5)
    received = Counter(receiver.seen)   # before the timers queue a daily digest
    orphan_cmd = subprocess.run([str(VENV_BIN / "patrol"), "photos-orphans"], env=env,
                                cwd=ROOT, capture_output=True, text=True)
    bucket_keys, bucket_bytes = set(), 0
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="patrol-photos"):
        for o in page.get("Contents", []):
            bucket_keys.add(o["Key"])
            bucket_bytes += o["Size"]
    bucket_photos = {k for k in bucket_keys if not k.startswith("jobs/")}
    row_keys = set(counted["photo_keys"])

    # The scheduler: each timer's service once, from its unit's ExecStart.
    timers = {}
    for unit in ("patrol-daily.service", "patrol-patrols-remind.service",
                 "patrol-weekly.service", "patrol-backup.service"):
        t = time.perf_counter()
        done = subprocess.run(exec_start(unit, paths), env=env, cwd=ROOT, capture_output=True,
                              text=True)
        timers[unit] = {"rc": done.returncode, "seconds": round(time.perf_counter() - t, 1)}
        if done.returncode:
            timers[unit]["stderr"] = done.stderr[-300:]
    backups = [p.name for p in (tmp / "backups").iterdir()]

    # The figures.
    stored = counted["items"]
    stored_keys = [k for k, _, _ in stored]
    acked = run.acked
    lost = [k for k in acked if k not in stored_keys]
    dup = sum(n - 1 for n in Counter(stored_keys).values() if n > 1)
    unacked_stored = [k for k in set(stored_keys) if k not in acked]
    deliveries = counted["deliveries"]
    by_status = Counter(d[1] for d in deliveries)
    sent_ids = {str(d[0]) for d in deliveries if d[1] == "sent"}
    twice = {k: n for k, n in received.items() if n > 1}
    not_received = sent_ids - set(received)
    unknown = set(received) - {str(d[0]) for d in deliveries}
    kinds = defaultdict(list)
    for kind, status, seconds, _ in run.calls:
        if 200 <= status < 400:
            kinds[kind].append(seconds)
    errors = Counter((kind, status) for kind, status, _, _ in run.calls
                     if status == 0 or status >= 400)
    t_kill = kills.get("app", 0)
    print()
    print("== latency (answered requests, all phases) ==")
    for kind, values in sorted(kinds.items()):
        print(f"{kind:24} n={len(values):5}  p50 {statistics.median(values) * 1000:7.0f} ms"
              f"  p95 {pct(values, 0.95) * 1000:7.0f} ms")
    for ph in phases:
        rep = [s for k, st, s, at in run.calls
               if k == "report" and 200 <= st < 300 and ph["t0"] <= at < ph["t1"]]
        ph["report_p50"] = round(statistics.median(rep), 3) if rep else None
        ph["report_p95"] = round(pct(rep, 0.95), 3) if rep else None
    print("== phases ==")
    for ph in phases:
        cpu = ", ".join(f"{k} {v}" for k, v in sorted(ph["cpu"].items(), key=lambda x: -x[1]))
        print(f"{ph['phase']:34} {ph['reports']:4} reports in {ph['seconds']} s = "
              f"{ph['reports_per_s']}/s  report p50 {ph['report_p50']} s p95 "
              f"{ph['report_p95']} s  load {ph['load']}  CPU s: {cpu}")
        if ph["reports"]:
            stack = sum(v for k, v in ph["cpu"].items() if k != "load client")
            per = ", ".join(f"{k} {v * 1000 / ph['reports']:.0f}" for k, v in
                            sorted(ph["cpu"].items(), key=lambda x: -x[1]))
            print(f"{'':34} CPU ms per report loop: {per}; servers {stack * 1000 / ph['reports']:.0f}"
                  f" = {ph['reports'] / stack:.2f} loops per server CPU-second")
    print("== errors and retries ==")
    print(f"non-2xx/3xx answers: {dict(errors)}")
    print(f"sent again (no answer or 502/503/504): {dict(run.retries)}")
    around_kill = Counter(k for k, st, _, at in run.calls
                          if st in RETRY_STATUS and t_kill - 1 <= at <= t_kill + 10)
    print(f"of which within 10 s of the kill: {dict(around_kill)}")
    print(f"failures kept by the phones: {run.failures[:5]} ({len(run.failures)})")
    print("== exactly once ==")
    result = {
        "reports_acknowledged": len(acked), "reports_stored": len(set(stored_keys)),
        "lost": len(lost), "duplicated": dup, "stored_never_acknowledged": len(unacked_stored),
        "fixed_then_verified": run.verified,
        "deliveries": dict(by_status), "receiver_sends": sum(received.values()),
        "receiver_distinct": len(received), "sent_twice": len(twice),
        "sent_rows_not_received": len(not_received), "received_unknown": len(unknown),
        "photos_orphans_rc": orphan_cmd.returncode,
        "photos_orphans_output": orphan_cmd.stdout.strip()[-500:],
        "bucket_objects": len(bucket_keys), "bucket_photo_files_without_row":
            len(bucket_photos - row_keys), "rows_without_file": len(row_keys - bucket_photos),
        "pending_uploads": counted["pending_photos"], "bucket_bytes": bucket_bytes,
        "db_growth_bytes": db_size(db_url) - db_bytes0,
        "timers": timers, "backup": backups, "nginx_problems": front,
    }
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if twice:
        print(f"sent twice: {list(twice.items())[:10]}")
    failed = (lost or dup or twice or not_received or result["bucket_photo_files_without_row"]
              or result["rows_without_file"] or any(t["rc"] for t in timers.values()) or front)
    print("RESULT:", "FAIL" if failed else
          "OK (0 lost, 0 duplicated, every delivery sent once, 0 orphans)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
