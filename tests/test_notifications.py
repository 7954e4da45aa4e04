"""Notifications against real local receivers: an HTTP server and an SMTP server in
threads. Payloads arrive in the right format; a receiver that is down, slow or
refusing gets retries with backoff, and the user's request succeeds regardless."""
from __future__ import annotations

import email
import hashlib
import hmac
import io
import ipaddress
import json
import socket
import socketserver
import threading
import time
from datetime import timedelta
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from patrol import notify
from patrol.jobs import run_queued
from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import Compound, Delivery, Item, NotifyEndpoint, User, utcnow
from patrol.services import items as svc
from patrol.services import notify as notify_service
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes


# --- receivers -------------------------------------------------------------------

class Receiver:
    """A real HTTP server on 127.0.0.1 that records every POST."""

    def __init__(self):
        self.requests, self.status, self.answer, self.delay = [], 200, b"{}", 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.answer)))
                self.end_headers()
                self.wfile.write(receiver.answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def json(self, i=-1):
        return json.loads(self.requests[i]["body"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SMTPReceiver:
    """Just enough SMTP to accept messages (smtpd is gone from the standard library)."""

    def __init__(self):
        self.messages = []
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write(b"220 test ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line[:4].upper()
                    if verb == b"EHLO":
                        self.wfile.write(b"250-test\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        self.wfile.write(b"354 go ahead\r\n")
                        data = b""
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data += chunk
                        receiver.messages.append(email.message_from_bytes(
                            data, policy=policy.default))
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url():
    """A local address where nothing listens: connections are refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture(autouse=True)
def only_this_machine(monkeypatch):
    """No test here reaches another machine: a connect to anything but loopback, or a
    name lookup for anything but localhost or a `.invalid` name, fails the test (after
    the delivery threads are done: their errors would otherwise end up in a Delivery)."""
    real_connect, real_resolve, reached = socket.socket.connect, socket.getaddrinfo, []

    def local_name(host):
        host = host.decode() if isinstance(host, bytes) else str(host or "")
        if host == "localhost" or host.endswith(".invalid"):
            return True
        try:
            return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
        except ValueError:
            return False

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not local_name(address[0]):
            reached.append(address[0])
            raise ConnectionRefusedError(111, f"a test may not connect to {address[0]}")
        return real_connect(sock, address)

    def resolve(host, *args, **kwargs):
        if not local_name(host):
            reached.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"a test may not look up {host}")
        return real_resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    yield
    assert reached == [], f"tried to reach another machine: {reached}"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def napp(tmp_path):
    """Receivers on 127.0.0.1 are private addresses: allowed here, refused by default.
    After a commit the deliveries go on the job queue (this app's own SQLite queue);
    `run_queued` runs what waits there, as `patrol worker` would."""
    app = make_app(tmp_path, WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_TIMEOUT=1.5)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def w(napp):
    with napp.app_context():
        return build_world()


def add_endpoint(app, url, kind="json", *, community=None, company=None, events=None):
    with app.app_context():
        ep = NotifyEndpoint(name=f"{kind}-test", kind=kind, target=url, community_id=community,
                            company_id=company, events=events or list(notify.EVENTS))
        db.session.add(ep)
        db.session.commit()
        return ep.id, ep.secret


def report_via_page(app, user_id, compound_id, note="3楼窗口飞线充电"):
    client = sign_in(app.test_client(), user_id)
    started = time.monotonic()
    resp = client.post(f"/compounds/{compound_id}/report", content_type="multipart/form-data",
                       data={"category": "flying_wire", "note": note,
                             "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    return resp, time.monotonic() - started


def deliveries(app):
    with app.app_context():
        return [{"id": d.id, "endpoint_id": d.endpoint_id, "event": d.event, "status": d.status,
                 "attempts": d.attempts, "next": d.next_attempt_at, "error": d.last_error,
                 "item_id": d.item_id, "last": d.last_attempt_at}
                for d in db.session.execute(db.select(Delivery).order_by(Delivery.id)).scalars()]


# --- tests -----------------------------------------------------------------------

def test_new_item_reaches_json_and_wecom_receivers(napp, w, receiver):
    json_id, secret = add_endpoint(napp, receiver.url("/json"), "json", community=w.ca)
    add_endpoint(napp, receiver.url("/wecom"), "wecom_markdown", company=w.x)
    add_endpoint(napp, receiver.url("/other-company"), "json", company=w.y)     # not X
    add_endpoint(napp, receiver.url("/other-community"), "json", community=w.cb)  # not A
    add_endpoint(napp, receiver.url("/muted"), "json", community=w.ca, events=["overdue"])

    resp, _ = report_via_page(napp, w.vol_a, w.a1)
    assert resp.status_code == 302
    run_queued(napp)

    assert sorted(r["path"] for r in receiver.requests) == ["/json", "/wecom"]
    with napp.app_context():
        item = db.session.execute(db.select(Item)).scalar_one()
        item_id, deadline = item.id, item.deadline
    by_path = {r["path"]: r for r in receiver.requests}

    generic = by_path["/json"]
    payload = json.loads(generic["body"])
    assert payload["event"] == "new_item"
    assert payload["url"] == f"http://patrol.test/items/{item_id}"
    assert payload["item"]["id"] == item_id and payload["item"]["category"] == "flying_wire"
    assert payload["item"]["category_label"] == "飞线充电"
    assert payload["item"]["compound"] == "小区A1" and payload["item"]["company"] == "物业X"
    assert payload["item"]["deadline"] == deadline.isoformat(timespec="seconds") + "Z"
    assert payload["item"]["note"] == "3楼窗口飞线充电"
    assert generic["headers"]["X-Patrol-Event"] == "new_item"
    assert generic["headers"]["Content-Type"].startswith("application/json")
    expected = "sha256=" + hmac.new(secret.encode(), generic["body"], hashlib.sha256).hexdigest()
    assert generic["headers"]["X-Patrol-Signature"] == expected

    wecom = json.loads(by_path["/wecom"]["body"])
    assert wecom["msgtype"] == "markdown" and set(wecom) == {"msgtype", "markdown"}
    content = wecom["markdown"]["content"]
    assert content.startswith("**") and f"编号{item_id}" in content and "飞线充电" in content
    assert f"(http://patrol.test/items/{item_id})" in content and "小区A1" in content

    assert [(d["status"], d["attempts"]) for d in deliveries(napp)] == [("sent", 1), ("sent", 1)]


def test_wecom_text_format_and_reopened_event(napp, w, receiver):
    add_endpoint(napp, receiver.url("/text"), "wecom_text", community=w.ca,
                 events=["reopened"])
    now = utcnow()
    with napp.app_context():
        form, window = hazard_form(), timedelta(hours=2)
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        photo = lambda u: [save_upload(jpeg_bytes(), uploader=u, kind="after")]  # noqa: E731
        item = svc.report(form=form, compound=db.session.get(Compound, w.a1), reporter=vol,
                          clean={"category": "flyers", "extra": {}}, photos=photo(vol),
                          now=now - timedelta(hours=5))
        svc.act(item, Action.ACKNOWLEDGE, mgr, now - timedelta(hours=4), svc.ActionInput(),
                form=form, window=window)
        svc.act(item, Action.FIX, mgr, now - timedelta(hours=3),
                svc.ActionInput(note="已清除", photos=photo(mgr)), form=form, window=window)
        svc.record_presence(vol, item.compound, now - timedelta(minutes=3))
        svc.act(item, Action.REOPEN, vol, now, svc.ActionInput(
            reason="not_fixed", photos=photo(vol)), form=form, window=window)
        db.session.commit()
        item_id = item.id
    run_queued(napp)
    [request] = receiver.requests
    body = json.loads(request["body"])
    assert body["msgtype"] == "text" and set(body) == {"msgtype", "text"}
    content = body["text"]["content"]
    assert "复查" in content and f"编号{item_id}" in content and "原因：未整改" in content
    assert request["headers"]["X-Patrol-Event"] == "reopened"


def test_a_receiver_that_is_down_gets_retries_with_backoff(napp, w, receiver):
    ep_id, _ = add_endpoint(napp, closed_port_url(), "json", community=w.ca)

    resp, took = report_via_page(napp, w.vol_a, w.a1)
    assert resp.status_code == 302 and took < 5     # the report itself is unaffected
    with napp.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 1
    run_queued(napp)

    [d] = deliveries(napp)
    assert (d["status"], d["attempts"]) == ("pending", 1)
    assert "Connection" in d["error"] or "refused" in d["error"].lower()
    first_try = d["last"]
    assert d["next"] == first_try + timedelta(seconds=60)        # backoff 1: 60 s

    with napp.app_context():
        # Not due yet: nothing happens.
        assert notify_service.deliver_due(first_try + timedelta(seconds=59)) == \
            {"sent": 0, "retry": 0, "failed": 0}
        t2 = first_try + timedelta(seconds=61)
        assert notify_service.deliver_due(t2)["retry"] == 1
    [d] = deliveries(napp)
    assert d["attempts"] == 2 and d["next"] == t2 + timedelta(seconds=120)  # backoff 2: 120 s

    with napp.app_context():
        t3 = t2 + timedelta(seconds=121)
        assert notify_service.deliver_due(t3)["retry"] == 1
    [d] = deliveries(napp)
    assert d["attempts"] == 3 and d["next"] == t3 + timedelta(seconds=240)  # backoff 3: 240 s

    # The receiver comes back (here: staff point the endpoint at a working address).
    with napp.app_context():
        db.session.get(NotifyEndpoint, ep_id).target = receiver.url()
        db.session.commit()
        assert notify_service.deliver_due(t3 + timedelta(seconds=241))["sent"] == 1
    [d] = deliveries(napp)
    assert (d["status"], d["attempts"], d["error"]) == ("sent", 4, None)
    assert receiver.json()["event"] == "new_item"


def test_backoff_is_capped_and_delivery_gives_up(napp, w):
    add_endpoint(napp, closed_port_url(), "json", community=w.ca)
    napp.config.update(DELIVERY_MAX_ATTEMPTS=3,
                       DELIVERY_BACKOFF_MAX=timedelta(seconds=90))
    resp, _ = report_via_page(napp, w.vol_a, w.a1)
    assert resp.status_code == 302
    assert deliveries(napp)[0]["attempts"] == 0   # queued; no worker has run it
    t = utcnow()
    with napp.app_context():
        outcomes = []
        for _ in range(3):
            t += timedelta(hours=1)
            counts = notify_service.deliver_due(t)
            outcomes.append(next(k for k, v in counts.items() if v))
            if outcomes[-1] == "retry":
                d = db.session.execute(db.select(Delivery)).scalar_one()
                assert d.next_attempt_at - t <= timedelta(seconds=90)   # capped
        assert outcomes == ["retry", "retry", "failed"]
        assert notify_service.deliver_due(t + timedelta(days=1)) == {"sent": 0, "retry": 0,
                                                                     "failed": 0}
    assert deliveries(napp)[0]["status"] == "failed"


def test_a_slow_receiver_does_not_delay_the_request(napp, w, receiver):
    receiver.delay = 6  # much longer than WEBHOOK_TIMEOUT (1.5 s)
    add_endpoint(napp, receiver.url(), "json", community=w.ca)
    resp, took = report_via_page(napp, w.vol_a, w.a1)
    assert resp.status_code == 302 and took < 3
    run_queued(napp)
    [d] = deliveries(napp)
    assert d["status"] == "pending" and d["attempts"] == 1 and "timed out" in d["error"].lower()


@pytest.mark.parametrize("status,answer,error", [
    (500, b"oops", "HTTP 500"),
    (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}', "WeCom errcode 93000"),
])
def test_refusals_are_retried(napp, w, receiver, status, answer, error):
    receiver.status, receiver.answer = status, answer
    add_endpoint(napp, receiver.url(), "wecom_markdown", company=w.x)
    report_via_page(napp, w.vol_a, w.a1)
    run_queued(napp)
    [d] = deliveries(napp)
    assert d["status"] == "pending" and d["error"].startswith(error)
    receiver.status, receiver.answer = 200, b'{"errcode":0,"errmsg":"ok"}'
    with napp.app_context():
        assert notify_service.deliver_due(d["next"])["sent"] == 1


def test_redirects_are_not_followed(napp, w, receiver):
    receiver.status = 302
    add_endpoint(napp, receiver.url(), "json", community=w.ca)
    report_via_page(napp, w.vol_a, w.a1)
    run_queued(napp)
    assert deliveries(napp)[0]["error"] == "HTTP 302" and len(receiver.requests) == 1


def test_private_addresses_are_refused_unless_allowed(napp, w, receiver):
    napp.config["WEBHOOK_ALLOW_PRIVATE"] = False
    add_endpoint(napp, receiver.url(), "json", community=w.ca)
    report_via_page(napp, w.vol_a, w.a1)
    run_queued(napp)
    assert receiver.requests == []
    assert "private or local address" in deliveries(napp)[0]["error"]


@pytest.mark.parametrize("target", ["https://localhost:{port}/hook", "http://[::1]:{port}/hook",
                                    "http://localhost:{port}/hook"])
def test_private_names_are_refused_for_https_and_ipv6_too(napp, w, receiver, target):
    napp.config["WEBHOOK_ALLOW_PRIVATE"] = False
    add_endpoint(napp, target.format(port=receiver.server.server_port), "json", community=w.ca)
    report_via_page(napp, w.vol_a, w.a1)
    run_queued(napp)
    assert receiver.requests == []
    assert "private or local address" in deliveries(napp)[0]["error"]


def test_a_host_that_changes_its_dns_answer_cannot_reach_a_private_address(
        napp, w, receiver, monkeypatch):
    """DNS rebinding: the receiver's name answers a public address when checked and
    127.0.0.1 when connected to. There is no internet DNS server here to play that
    part, so the resolver is replaced; and no test may reach the internet, so the
    socket's connect is replaced by a recorder that refuses. Delivery must connect to
    the address it checked (the public one) and never look the name up again."""
    napp.config["WEBHOOK_ALLOW_PRIVATE"] = False
    napp.config["WEBHOOK_TIMEOUT"] = 1.0
    public = "93.184.216.34"   # only ever checked, never connected to
    host, port = "hooks.rebinding.invalid", receiver.server.server_port
    real_resolve, real_connect = socket.getaddrinfo, socket.socket.connect
    asked, connects = [], []

    def rebinding(name, port, *args, **kwargs):
        if name != host:
            return real_resolve(name, port, *args, **kwargs)
        asked.append(name)
        ip = public if len(asked) == 1 else "127.0.0.1"  # public, then local
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, port))]

    def recording(sock, address):
        if isinstance(address, tuple) and (address[0] == public or address[1] == port):
            connects.append(address[:2])
            raise ConnectionRefusedError(111, "refused by the test's recorder")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(socket.socket, "connect", recording)
    add_endpoint(napp, f"http://{host}:{port}/hook", "json", community=w.ca)
    report_via_page(napp, w.vol_a, w.a1)
    run_queued(napp)
    assert asked == [host]                  # one answer, checked and used
    assert connects == [(public, port)]     # the checked address; never 127.0.0.1
    assert receiver.requests == []
    assert "refused" in deliveries(napp)[0]["error"]


def test_report_rolled_back_means_no_notification(napp, w, receiver):
    add_endpoint(napp, receiver.url(), "json", community=w.ca)
    with napp.app_context():
        vol = db.session.get(User, w.vol_a)
        svc.report(form=hazard_form(), compound=db.session.get(Compound, w.a1), reporter=vol,
                   clean={"category": "flyers", "extra": {}}, photos=[], now=utcnow())
        db.session.rollback()
    run_queued(napp)
    assert deliveries(napp) == [] and receiver.requests == []


def test_overdue_is_queued_once_per_deadline_and_daily_digest(napp, w, receiver):
    add_endpoint(napp, receiver.url("/community"), "json", community=w.ca)
    add_endpoint(napp, receiver.url("/company"), "wecom_text", company=w.x,
                 events=["overdue"])
    now = utcnow()
    with napp.app_context():
        vol = db.session.get(User, w.vol_a)
        item = svc.report(form=hazard_form(), compound=db.session.get(Compound, w.a1),
                          reporter=vol, clean={"category": "flying_wire", "extra": {}},
                          photos=[], now=now - timedelta(hours=30))   # 24 h deadline: overdue
        db.session.commit()
        item_id = item.id
    runner = napp.test_cli_runner()
    result = runner.invoke(args=["daily"])
    assert result.exit_code == 0, result.output
    assert "社区A: 1 not acknowledged in time, 1 overdue" in result.output
    assert f"[overdue] No.{item_id} flying_wire 小区A1" in result.output
    assert "queued: overdue 2, daily 1" in result.output
    assert "delivered: sent 4" in result.output   # + the new_item queued at the report
    paths = sorted(r["path"] for r in receiver.requests)
    assert paths == ["/community", "/community", "/community", "/company"]
    events = sorted(json.loads(r["body"]).get("event", "wecom") for r in receiver.requests
                    if r["path"] == "/community")
    assert events == ["daily", "new_item", "overdue"]
    digest = next(json.loads(r["body"]) for r in receiver.requests
                  if json.loads(r["body"]).get("event") == "daily")
    assert digest["counts"] == {"overdue": 1, "ack_late": 1, "due_soon": 0}
    assert {i["id"] for i in digest["items"]} == {item_id}
    overdue = next(json.loads(r["body"]) for r in receiver.requests
                   if r["path"] == "/community" and json.loads(r["body"]).get("event") == "overdue")
    assert overdue["url"] == f"http://patrol.test/items/{item_id}"
    assert overdue["item"]["id"] == item_id and overdue["item"]["category_label"] == "飞线充电"
    assert overdue["item"]["compound"] == "小区A1" and overdue["item"]["status"] == "reported"
    deadline = (now - timedelta(hours=6)).replace(microsecond=0)
    assert overdue["item"]["deadline"] == deadline.isoformat(timespec="seconds") + "Z"
    wecom = next(r for r in receiver.requests if r["path"] == "/company")
    content = json.loads(wecom["body"])["text"]["content"]
    assert "隐患超期未整改" in content and f"编号{item_id} 飞线充电" in content
    assert f"http://patrol.test/items/{item_id}" in content

    # Running again the same day queues nothing new.
    again = runner.invoke(args=["daily"])
    assert "queued: overdue 0, daily 0" in again.output
    assert runner.invoke(args=["deliver"]).output.strip() == \
        "overdue queued 0; sent 0, will retry 0, gave up 0"

    # Staff extend the deadline; when the new one passes, 'overdue' fires again.
    with napp.app_context():
        staff = db.session.get(User, w.staff_a)
        item = db.session.get(Item, item_id)
        svc.act(item, Action.EXTEND_DEADLINE, staff, now, svc.ActionInput(
            deadline=now + timedelta(hours=2), reason="weather"), form=hazard_form(),
            window=timedelta(hours=2))
        db.session.commit()
    later = (now + timedelta(hours=3)).isoformat(timespec="seconds")
    result = runner.invoke(args=["deliver", "--now", later])
    assert result.output.strip() == "overdue queued 2; sent 2, will retry 0, gave up 0"


def test_email_receiver(napp, w):
    smtp = SMTPReceiver()
    try:
        napp.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_STARTTLS=False,
                           SMTP_FROM="patrol@example.invalid")
        add_endpoint(napp, "wuye@example.invalid", "email", company=w.x)
        resp, _ = report_via_page(napp, w.vol_a, w.a1, note="楼道堆物")
        assert resp.status_code == 302
        run_queued(napp)
        [msg] = smtp.messages
        assert msg["To"] == "wuye@example.invalid" and msg["From"] == "patrol@example.invalid"
        assert "新隐患" in msg["Subject"]
        body = msg.get_content()
        assert "楼道堆物" in body and "http://patrol.test/items/" in body
        assert deliveries(napp)[0]["status"] == "sent"
    finally:
        smtp.close()


# --- the receivers page --------------------------------------------------------------

def test_staff_add_list_test_and_remove_receivers(napp, w, receiver):
    staff = sign_in(napp.test_client(), w.staff_a)
    resp = staff.post("/notifications", data={"name": "和平社区督办群", "kind": "wecom_markdown",
                                              "target": receiver.url("/robot?key=secret-key"),
                                              "events": ["new_item", "overdue"]})
    assert resp.status_code == 302
    with napp.app_context():
        ep = db.session.execute(db.select(NotifyEndpoint)).scalar_one()
        assert (ep.community_id, ep.company_id, ep.events) == (w.ca, None, ["new_item", "overdue"])
        ep_id = ep.id
    page = staff.get("/notifications").get_data(as_text=True)
    assert "和平社区督办群" in page and "secret-key" not in page   # the key is masked
    assert staff.post(f"/notifications/{ep_id}/test").status_code == 302
    run_queued(napp)
    assert json.loads(receiver.requests[0]["body"])["msgtype"] == "markdown"
    page = staff.get("/notifications").get_data(as_text=True)
    assert 'class="dl-sent"' in page

    # Another community's staff and the managers cannot touch it.
    for other in (w.staff_b, w.mgr_x):
        client = sign_in(napp.test_client(), other)
        assert "和平社区督办群" not in client.get("/notifications").get_data(as_text=True)
        assert client.post(f"/notifications/{ep_id}/delete").status_code == 404
        assert client.post(f"/notifications/{ep_id}/test").status_code == 404
    assert staff.post(f"/notifications/{ep_id}/delete").status_code == 302
    with napp.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(NotifyEndpoint)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Delivery)) == 0


def test_manager_adds_a_receiver_for_their_company_only(napp, w):
    mgr = sign_in(napp.test_client(), w.mgr_x)
    resp = mgr.post("/notifications", data={"name": "物业群", "kind": "json",
                                            "target": "https://hooks.example.invalid/hook",
                                            "events": ["new_item"], "owner": f"community:{w.ca}"})
    assert resp.status_code == 302
    with napp.app_context():
        ep = db.session.execute(db.select(NotifyEndpoint)).scalar_one()
        assert (ep.community_id, ep.company_id) == (None, w.x)   # "owner" is ignored


@pytest.mark.parametrize("target,message", [
    ("", "此项必填。"),
    ("ftp://example.org/x", "请输入以 https:// 或 http:// 开头的完整网址。"),
    ("https://user:pw@example.org/x", "网址中不能包含用户名或密码。"),
    ("javascript:alert(1)", "请输入以 https:// 或 http:// 开头的完整网址。"),
    ("https://exa mple.org/", "请输入以 https:// 或 http:// 开头的完整网址。"),
])
def test_bad_urls_are_refused_with_a_message(napp, w, target, message):
    staff = sign_in(napp.test_client(), w.staff_a)
    resp = staff.post("/notifications", data={"name": "x", "kind": "json", "target": target,
                                              "events": ["new_item"]})
    assert resp.status_code == 422
    assert message in resp.get_data(as_text=True)


def test_email_needs_smtp_and_others_cannot_open_the_page(napp, w):
    staff = sign_in(napp.test_client(), w.staff_a)
    resp = staff.post("/notifications", data={"name": "x", "kind": "email",
                                              "target": "a@example.invalid", "events": ["daily"]})
    assert resp.status_code == 422 and "本服务器未配置电子邮件。" in resp.get_data(as_text=True)
    # Volunteers have no receivers (committee members have their compound's: issue 12).
    assert sign_in(napp.test_client(), w.vol_a).get("/notifications").status_code == 403


# --- the pure part -------------------------------------------------------------------

def test_url_and_email_validation():
    assert notify.validate_url(" https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k ") == \
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
    for bad, code in [("", "required"), ("x" * 501, "too_long"), ("http://", "bad_url"),
                      ("https://a.org:0/", "bad_url"), ("https://a.org:99999/", "bad_url"),
                      ("https://u@a.org/", "credentials"), ("file:///etc/passwd", "bad_url")]:
        with pytest.raises(notify.InvalidTarget) as err:
            notify.validate_url(bad)
        assert err.value.code == code
    assert notify.validate_email("wuye@example.org") == "wuye@example.org"
    with pytest.raises(notify.InvalidTarget):
        notify.validate_email("a@b")
    assert notify.mask_url("https://h.org/p?key=abc") == "https://h.org/p?…"
    for private in ("127.0.0.1", "10.1.2.3", "192.168.1.1", "169.254.169.254", "::1",
                    "::ffff:127.0.0.1", "0.0.0.0"):
        assert not notify.is_public_address(private)
    assert notify.is_public_address("8.8.8.8")


def test_backoff_sequence():
    base, cap = timedelta(minutes=1), timedelta(hours=6)
    assert [notify.backoff(n, base, cap).total_seconds() / 60 for n in range(1, 11)] == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 360]


def test_wecom_content_is_truncated_to_its_limit():
    payload = {"title": "标题", "lines": ["很长" * 2000], "url": "https://x.org/items/1"}
    body = json.loads(notify.render("wecom_text", payload).body)
    assert len(body["text"]["content"].encode()) <= 2048
    body = json.loads(notify.render("wecom_markdown", payload).body)
    assert len(body["markdown"]["content"].encode()) <= 4096


def test_a_garbled_answer_does_not_stop_the_batch(napp, w, receiver):
    """A receiver that answers with nonsense fails its own delivery; the others still go."""
    garbage = socketserver.ThreadingTCPServer(("127.0.0.1", 0), type(
        "Garbage", (socketserver.StreamRequestHandler,), {
            "handle": lambda self: (self.rfile.readline(), self.wfile.write(b"garbage\r\n"))}))
    garbage.daemon_threads = True
    threading.Thread(target=garbage.serve_forever, daemon=True).start()
    try:
        add_endpoint(napp, f"http://127.0.0.1:{garbage.server_address[1]}/hook",
                     community=w.ca, events=["new_item"])
        add_endpoint(napp, receiver.url("/hook"), community=w.ca, events=["new_item"])
        resp, _ = report_via_page(napp, w.vol_a, w.a1)
        assert resp.status_code == 302
        with napp.app_context():
            counts = notify_service.deliver_due(utcnow() + timedelta(seconds=1))
        assert counts["sent"] == 1 and counts["retry"] == 1, (counts, deliveries(napp))
        bad = [d for d in deliveries(napp) if d["status"] == "pending"]
        assert bad and "BadStatusLine" in (bad[0]["error"] or "")
    finally:
        garbage.shutdown()
        garbage.server_close()


def test_user_text_cannot_break_out_of_wecom_markdown():
    note = "正常\n**假标题**\n[点此登录领取补贴](https://evil.example)<font color=red>x</font>"
    body = notify.markdown({"title": "新隐患 <b>", "lines": [note], "url": "https://patrol.example/items/1"})
    lines = body.split("\n")
    assert len(lines) == 3  # title, one quoted line, the link: the note stayed one line
    assert "](https://evil.example)" not in body and "<font" not in body and "**假标题**" not in body
    assert lines[-1] == "[https://patrol.example/items/1](https://patrol.example/items/1)"


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::127.0.0.1",
                                     "::ffff:10.0.0.1", "169.254.169.254", "127.0.0.1"])
def test_private_addresses_hidden_in_ipv6_are_refused(address):
    assert not notify.is_public_address(address)
