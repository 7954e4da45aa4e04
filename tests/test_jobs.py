"""Jobs on the queue (patrol/jobs/, docs/jobs.md): a real Huey consumer runs them, on the
embedded SQLite queue and on a Redis server this module starts on loopback.

PostgreSQL runs use a database of their own (patrol_test_jobs), made and dropped here.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from patrol import jobs
from patrol.extensions import db
from patrol.jobs import runner
from patrol.models import Compound, Delivery, Job, NotifyEndpoint
from tests.conftest import PG_URL, make_app, sign_in
from tests.factories import build_world, jpeg_bytes
from tests.pdftools import run, write_pdf

JOBS_DB = "patrol_test_jobs"


@pytest.fixture(scope="module")
def pg_jobs_url():
    if not PG_URL:
        pytest.skip("no PostgreSQL server (run `make test`)")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                            {"n": JOBS_DB}).first():
            conn.execute(text(f"CREATE DATABASE {JOBS_DB}"))
    yield make_url(PG_URL).set(database=JOBS_DB).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": JOBS_DB})
        conn.execute(text(f"DROP DATABASE IF EXISTS {JOBS_DB}"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def japp(request, tmp_path):
    url = request.getfixturevalue("pg_jobs_url") if request.param == "postgresql" else None
    app = make_app(tmp_path, url, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_TIMEOUT=2,
                   JOB_BACKOFF=__import__("datetime").timedelta(seconds=1))
    with app.app_context():
        app.w = build_world()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def worker(app, workers=2):
    """The real Huey consumer of this app (threads), as `patrol worker` runs it."""
    consumer = jobs.consumer(app, workers, periodic=False)
    consumer.start()
    try:
        yield consumer
    finally:
        consumer.stop(graceful=True)


def wait_for(predicate, timeout=60.0, every=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def job_row(app, job_id) -> Job:
    with app.app_context():
        job = db.session.get(Job, job_id)
        db.session.expunge(job)
        return job


def more_compounds(app, n):
    with app.app_context():
        a1 = db.session.get(Compound, app.w.a1)
        for i in range(n):
            db.session.add(Compound(name=f"小区A-{i:03d}", community_id=a1.community_id,
                                    company_id=a1.company_id))
        db.session.commit()


# --- a poster batch: progress, the file, who may have it -----------------------------

def test_a_poster_batch_runs_on_the_embedded_queue_with_progress(japp, monkeypatch, tmp_path):
    from patrol.services import posters
    monkeypatch.setattr(posters, "CHUNK", 2)
    monkeypatch.setattr(runner, "PROGRESS_EVERY", 0)
    more_compounds(japp, 10)
    w = japp.w
    staff = sign_in(japp.test_client(), w.staff_a)
    resp = staff.post("/admin/compounds/posters-job", data={"size": "A5"})
    assert resp.status_code == 302 and "/jobs/" in resp.location
    job_id = int(resp.location.rsplit("/", 1)[1])
    page = staff.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert '<progress id="job-progress"' in page and "js/jobs.js" in page
    assert job_row(japp, job_id).state == "queued"      # nothing runs in the web worker

    seen = []

    def poll():
        status = staff.get(f"/jobs/{job_id}.json").get_json()
        seen.append((status["done"], status["total"]))
        return status if status["state"] in ("done", "failed") else None

    with worker(japp):
        status = wait_for(poll, every=0.02)
    assert status["state"] == "done", status
    total = 12                                       # the community's 2 compounds + 10
    assert status["total"] == total and status["done"] == total and status["percent"] == 100
    assert any(0 < done < total for done, _ in seen), seen    # progress while running
    job = job_row(japp, job_id)
    assert job.attempts == 1 and job.result_key.startswith(f"jobs/{job_id}/")

    pdf = staff.get(status["result"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    info = run("pdfinfo", str(write_pdf(pdf.data, tmp_path, "posters")))
    assert re.search(rf"^Pages:\s+{total}$", info, re.M), info        # one poster a page

    # Only its owner and admins: other staff get nothing, not even its status.
    other = sign_in(japp.test_client(), w.staff_b)
    for url in (f"/jobs/{job_id}", f"/jobs/{job_id}.json", status["result"]):
        assert other.get(url).status_code == 404
    assert other.post(f"/jobs/{job_id}/retry").status_code == 404
    assert f"job-{job_id}" not in other.get("/jobs").get_data(as_text=True)
    admin = sign_in(japp.test_client(), w.admin)
    assert f"job-{job_id}" in admin.get("/jobs").get_data(as_text=True)
    assert admin.get(status["result"]).status_code == 200
    assert sign_in(japp.test_client(), w.vol_a).get("/jobs").status_code in (302, 403)


# --- retries with back-off, then a person's retry -----------------------------------

def test_a_failing_job_is_retried_with_back_off_and_can_be_retried(japp, monkeypatch):
    tries = []
    behaviour = {"fail_until": 3}

    def flaky(job, progress):
        tries.append(time.monotonic())
        if len(tries) < behaviour["fail_until"]:
            raise RuntimeError(f"receiver down (try {len(tries)})")
        return runner.Result(b"ok", "ok.txt", "text/plain")

    monkeypatch.setitem(runner.KINDS, "flaky", flaky)
    japp.config["JOB_MAX_ATTEMPTS"] = 3
    with japp.test_request_context():
        from patrol.models import User
        owner = db.session.get(User, japp.w.staff_a)
        job_id = runner.submit("flaky", user=owner, title="flaky", params={}).id

    with worker(japp):
        wait_for(lambda: job_row(japp, job_id).state in ("done", "failed"), timeout=30)
    job = job_row(japp, job_id)
    assert (job.state, job.attempts, job.error) == ("done", 3, None)
    # Back-off 1 s, then 2 s (JOB_BACKOFF doubling), never at once.
    assert tries[1] - tries[0] >= 0.9 and tries[2] - tries[1] >= 1.9, tries

    # Every try fails: the job fails with its error, and its owner may queue it again.
    tries.clear()
    behaviour["fail_until"] = 99
    with japp.test_request_context():
        owner = db.session.get(User, japp.w.staff_a)
        job_id = runner.submit("flaky", user=owner, title="flaky", params={}).id
    with worker(japp):
        wait_for(lambda: job_row(japp, job_id).state == "failed", timeout=30)
    job = job_row(japp, job_id)
    assert job.attempts == 3 and "receiver down (try 3)" in job.error
    staff = sign_in(japp.test_client(), japp.w.staff_a)
    page = staff.get("/jobs").get_data(as_text=True)
    assert "receiver down (try 3)" in page and f'/jobs/{job_id}/retry' in page
    behaviour["fail_until"] = 0
    assert staff.post(f"/jobs/{job_id}/retry").status_code == 302
    assert job_row(japp, job_id).state == "queued"
    with worker(japp):
        wait_for(lambda: job_row(japp, job_id).state == "done", timeout=30)
    assert staff.post(f"/jobs/{job_id}/retry").status_code == 302   # not failed: refused
    assert job_row(japp, job_id).state == "done"


def test_the_same_job_queued_twice_runs_once(japp, monkeypatch):
    runs = []
    monkeypatch.setitem(runner.KINDS, "count", lambda job, p: runs.append(job.id) or None)
    with japp.test_request_context():
        job_id = runner.submit("count", user=None, title="count", params={}).id
        jobs.enqueue_job(job_id)            # a second message for the same job
        jobs.enqueue_job(job_id)
    with worker(japp, workers=3):
        wait_for(lambda: job_row(japp, job_id).state == "done")
        time.sleep(0.5)
    assert runs == [job_id] and job_row(japp, job_id).attempts == 1


# --- notifications --------------------------------------------------------------------

class Receiver:
    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def report(app):
    client = sign_in(app.test_client(), app.w.vol_a)
    resp = client.post(f"/compounds/{app.w.a1}/report", content_type="multipart/form-data",
                       data={"category": "flying_wire", "note": "楼道飞线",
                             "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 302


def test_a_notification_is_sent_by_the_worker_once_even_if_queued_twice(japp):
    receiver = Receiver()
    try:
        with japp.app_context():
            ca = db.session.get(Compound, japp.w.a1).community_id
            db.session.add(NotifyEndpoint(name="hook", kind="json", target=receiver.url,
                                          community_id=ca, events=["new_item"]))
            db.session.commit()
        report(japp)
        with japp.app_context():
            [delivery_id] = db.session.execute(db.select(Delivery.id)).scalars().all()
        jobs.enqueue_deliveries(japp, [delivery_id])      # the same message again
        with worker(japp, workers=2):
            wait_for(lambda: receiver.requests)
            time.sleep(1.0)                                # time for a second send, if any
        assert [r["event"] for r in receiver.requests] == ["new_item"]
        with japp.app_context():
            d = db.session.get(Delivery, delivery_id)
            assert (d.status, d.attempts) == ("sent", 1)
    finally:
        receiver.close()


def test_no_thread_in_the_web_worker_sends(japp):
    before = {t.ident for t in threading.enumerate()}
    with japp.app_context():
        ca = db.session.get(Compound, japp.w.a1).community_id
        db.session.add(NotifyEndpoint(name="hook", kind="json", target="http://127.0.0.1:9/",
                                      community_id=ca, events=["new_item"]))
        db.session.commit()
    report(japp)
    assert {t.ident for t in threading.enumerate()} <= before
    assert jobs.queue(japp).pending_count() == 1       # a message waits for the worker
    with japp.app_context():
        assert db.session.execute(db.select(Delivery.attempts)).scalars().all() == [0]


def test_readyz_checks_the_queue(japp):
    body = japp.test_client().get("/readyz").get_json()
    assert body["checks"]["queue"] == "ok" and body["ok"] is True


# --- Redis ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; "
                    "`make test` installs it)")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_for(up, timeout=10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_job_runs_through_redis(tmp_path, redis_url, monkeypatch):
    app = make_app(tmp_path, QUEUE="redis", REDIS_URL=redis_url, QUEUE_NAME="patrol-test")
    with app.app_context():
        app.w = build_world()
    jobs.queue(app).flush()
    assert app.test_client().get("/readyz").get_json()["checks"]["queue"] == "ok"
    staff = sign_in(app.test_client(), app.w.staff_a)
    job_id = int(staff.post("/admin/compounds/posters-job").location.rsplit("/", 1)[1])
    assert jobs.queue(app).pending_count() == 1          # the message is in Redis
    with worker(app):
        wait_for(lambda: job_row(app, job_id).state in ("done", "failed"))
    job = job_row(app, job_id)
    assert job.state == "done", job.error
    assert staff.get(f"/jobs/{job_id}/result").data.startswith(b"%PDF")
    with app.app_context():
        db.engine.dispose()


def test_readyz_says_when_redis_is_down(tmp_path):
    app = make_app(tmp_path, QUEUE="redis", REDIS_URL=f"redis://127.0.0.1:{_free_port()}/0")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503 and resp.get_json()["checks"]["queue"].startswith("failed")
