"""A server error answers the phone's outbox in its JSON shape and undoes the request's
writes; web workers never send notifications (a sender in a web worker held SQLite's
write lock while reports waited: bench/load_reports.py)."""
from __future__ import annotations

import io
import threading
import uuid
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from patrol.extensions import db
from patrol.models import Compound, Delivery, Item, NotifyEndpoint, Photo, utcnow
from patrol.services import items as item_service
from patrol.services import notify as notify_service
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes


def _app(tmp_path, **config):
    # As in production: exceptions become 500 answers instead of reaching the test.
    return make_app(tmp_path, TESTING=False, PROPAGATE_EXCEPTIONS=False, **config)


def _report(client, compound_id, **headers):
    return client.post(f"/compounds/{compound_id}/report", headers=headers,
                       content_type="multipart/form-data",
                       data={"category": "flyers", "client_uuid": str(uuid.uuid4()),
                             "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})


def _locked(*args, **kwargs):
    raise OperationalError("INSERT INTO item", {}, Exception("database is locked"))


def test_a_500_answers_the_outbox_in_json_and_rolls_back(tmp_path, monkeypatch):
    app = _app(tmp_path)
    with app.app_context():
        w = build_world()
    monkeypatch.setattr(item_service, "report", _locked)
    client = sign_in(app.test_client(), w.vol_a)
    resp = _report(client, w.a1, **{"X-Patrol-Sync": "1"})
    assert resp.status_code == 500
    assert resp.is_json, resp.data[:200]
    body = resp.get_json()
    assert body["retry"] is True and body["error"]
    # The photo stored before the failure was never committed.
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Photo)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 0
    # The next request on the same worker works (the session was rolled back).
    monkeypatch.undo()
    assert _report(client, w.a1, **{"X-Patrol-Sync": "1"}).status_code == 201


def test_a_500_on_a_page_is_the_error_page_in_chinese(tmp_path, monkeypatch):
    app = _app(tmp_path)
    with app.app_context():
        w = build_world()
    monkeypatch.setattr(item_service, "report", _locked)
    client = sign_in(app.test_client(), w.vol_a)
    client.set_cookie("lang", "zh")
    resp = _report(client, w.a1, **{"Accept-Language": "zh-CN"})
    assert resp.status_code == 500
    assert resp.mimetype == "text/html"
    assert "服务器" in resp.get_data(as_text=True)


def test_sync_paths_answer_500_in_json_without_the_header(tmp_path, monkeypatch):
    app = _app(tmp_path)
    with app.app_context():
        w = build_world()
    import patrol.web.offline as offline_views
    monkeypatch.setattr(offline_views.item_service, "record_presence", _locked)
    with app.app_context():
        token = db.session.get(Compound, w.a1).qr_token
    client = sign_in(app.test_client(), w.vol_a)
    scanned = (utcnow() - timedelta(minutes=1)).isoformat(timespec="seconds") + "Z"
    resp = client.post("/sync/presence", data={"token": token, "device_at": scanned})
    assert resp.status_code == 500 and resp.is_json and resp.get_json()["retry"] is True


def _app_with_failing_receiver(tmp_path):
    """A receiver whose name never resolves (.invalid): every try fails, on this machine."""
    app = _app(tmp_path)
    with app.app_context():
        w = build_world()
        db.session.add(NotifyEndpoint(name="坏接收端", kind="json", target="https://receiver.invalid/h",
                                      community_id=db.session.get(Compound, w.a1).community_id))
        db.session.commit()
    return app, w


def test_web_workers_start_no_sender_by_default(tmp_path):
    app, w = _app_with_failing_receiver(tmp_path)
    before = {t.ident for t in threading.enumerate()}
    client = sign_in(app.test_client(), w.vol_a)
    assert _report(client, w.a1, **{"X-Patrol-Sync": "1"}).status_code == 201
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert "patrol-notify" not in started
    assert not app.extensions.get("patrol.notify_threads")
    with app.app_context():  # queued in the report's transaction, waiting for the sender
        statuses = db.session.execute(db.select(Delivery.status)).scalars().all()
        assert statuses == ["pending"]


def test_the_watcher_sends_what_is_due(tmp_path):
    app, w = _app_with_failing_receiver(tmp_path)
    client = sign_in(app.test_client(), w.vol_a)
    assert _report(client, w.a1, **{"X-Patrol-Sync": "1"}).status_code == 201
    with app.app_context():
        notify_service.watch(0, rounds=1)
        delivery = db.session.execute(db.select(Delivery)).scalar_one()
        # .invalid never resolves: tried once, kept for a retry with backoff.
        assert delivery.attempts == 1 and delivery.status == "pending"
        assert delivery.last_error
