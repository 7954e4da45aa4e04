"""One error shape for the phone (docs/offline.md, "Error answers"; patrol/web/sync.py).

Every refusal the outbox can meet, 4xx and 5xx, from /sync/…, /photos and any form sent
with `X-Patrol-Sync: 1`, answers JSON with `error` (words for the queue bar, in the user's
language), a stable `code`, `fields` (field → words), and `retry` / `login` only when
true. The keys static/js/offline.js and photos.js read (`error`, `retry`) stay as they were.
"""
from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import Compound, User, utcnow
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from patrol.web.sync import CODES
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes

SYNC = {"X-Patrol-Sync": "1"}
CJK = re.compile(r"[\u4e00-\u9fff]")


def check_shape(resp, status, code, fields=()):
    """The one shape; returns the body."""
    assert resp.status_code == status, (resp.status_code, resp.data[:300])
    assert resp.is_json, resp.data[:200]
    body = resp.get_json()
    assert {"error", "code", "fields"} <= body.keys(), body
    assert body["code"] == code and code in CODES, body
    assert isinstance(body["error"], str) and CJK.search(body["error"]), body  # in Chinese
    assert isinstance(body["fields"], dict) and set(fields) <= body["fields"].keys(), body
    assert all(isinstance(v, str) and v for v in body["fields"].values()), body
    for flag in ("retry", "login"):
        assert body.get(flag, True) is True, body   # present only when true
    return body


def _app(tmp_path, **config):
    return make_app(tmp_path, TESTING=False, PROPAGATE_EXCEPTIONS=False, **config)


@pytest.fixture
def app(tmp_path):
    return _app(tmp_path)


@pytest.fixture
def w(app):
    with app.app_context():
        return build_world()


def photo():
    return (io.BytesIO(jpeg_bytes()), "p.jpg")


def report(client, w, **data):
    form = {"category": "flyers", "client_uuid": str(uuid.uuid4()), "photos": photo()}
    form.update(data)
    return client.post(f"/compounds/{w.a1}/report", headers=SYNC, data=form,
                       content_type="multipart/form-data")


def new_item(app, w, *, acknowledged=False):
    with app.app_context():
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        now = utcnow() - timedelta(hours=2)
        item = svc.report(form=hazard_form(), compound=db.session.get(Compound, w.a1),
                          reporter=vol, now=now, clean={"category": "flyers", "extra": {}},
                          photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
        if acknowledged:
            svc.act(item, Action.ACKNOWLEDGE, mgr, now, svc.ActionInput(), form=hazard_form(),
                    window=timedelta(hours=2))
        db.session.commit()
        return item.id, item.version


def act(client, item_id, **data):
    return client.post(f"/items/{item_id}/act", headers=SYNC, data=data,
                       content_type="multipart/form-data")


# --- reports ---------------------------------------------------------------------------

def test_a_refused_report(app, w):
    phone = sign_in(app.test_client(), w.vol_a)
    body = check_shape(report(phone, w, category="", photos=(io.BytesIO(b"not a jpeg"), "x.jpg"),
                              floor="x" * 21),
                       422, "invalid", fields=("category", "photos", "floor"))
    # What the page and older phones read, as before.
    assert set(body["errors"]) == {"category", "photos", "floor"}
    assert len(body["photo_errors"]) == 1 and "x.jpg" in body["photo_errors"][0]
    assert "x.jpg" in body["fields"]["photos"]


def test_a_fix_on_the_spot_without_a_scan(app, w):
    phone = sign_in(app.test_client(), w.vol_a)
    check_shape(report(phone, w, fixed_on_spot="1"), 422, "invalid",
                fields=("fixed_on_spot", "after_photos"))


def test_a_key_reused_for_a_different_report(app, w):
    phone = sign_in(app.test_client(), w.vol_a)
    key = str(uuid.uuid4())
    assert report(phone, w, client_uuid=key).status_code == 201
    check_shape(report(phone, w, client_uuid=key, note="另一条"), 409, "resent_different")


# --- actions ---------------------------------------------------------------------------

def test_refused_actions(app, w):
    item_id, version = new_item(app, w)
    mgr = sign_in(app.test_client(), w.mgr_x)
    check_shape(act(mgr, item_id, action="fix", note="done", version=version), 409, "bad_state")
    check_shape(act(mgr, item_id, action="acknowledge", version=version - 1), 409, "stale")
    check_shape(act(mgr, item_id, action="nonsense"), 400, "bad_request")
    check_shape(act(mgr, item_id, action="acknowledge", device_at="yesterday"), 422,
                "device_time")
    check_shape(act(mgr, item_id, action="acknowledge",
                    photos=(io.BytesIO(b"not a jpeg"), "x.jpg")),
                422, "photo_rejected", fields=("photos",))
    ack_id, ack_version = new_item(app, w, acknowledged=True)
    body = check_shape(act(mgr, ack_id, action="fix", version=ack_version), 422,
                       "missing_evidence")
    assert "照片" in body["error"] or "说明" in body["error"]
    # An action's note holds what the form's textarea holds (a longer one broke the ledgers).
    body = check_shape(act(mgr, ack_id, action="fix", note="修" * 1001, version=ack_version),
                       422, "note_too_long")
    assert "1000" in body["error"] or "1,000" in body["error"]
    assert act(mgr, ack_id, action="comment", note="修" * 1000).status_code == 200
    check_shape(act(mgr, 999999, action="fix"), 404, "not_found")
    other = sign_in(app.test_client(), w.mgr_y)       # not their company's item
    resp = act(other, item_id, action="acknowledge")
    check_shape(resp, resp.status_code, "forbidden" if resp.status_code == 403 else "not_found")


# --- photos ----------------------------------------------------------------------------

def test_photo_uploads(app, w):
    phone = sign_in(app.test_client(), w.vol_a)
    check_shape(phone.post("/photos", data={}, content_type="multipart/form-data"),
                400, "no_photo")
    body = check_shape(phone.post("/photos", data={"photo": (io.BytesIO(b"nope"), "x.jpg")},
                                  content_type="multipart/form-data"),
                       422, "photo_rejected", fields=("photo",))
    assert body["reason"]            # which check failed (empty, too large, not an image…)
    committee = sign_in(app.test_client(), w.com_a1)  # photos.js sends no header: still JSON
    resp = committee.post("/photos", data={"photo": photo()}, content_type="multipart/form-data")
    check_shape(resp, 403, "forbidden")
    check_shape(app.test_client().post("/photos", data={"photo": photo()},
                                       content_type="multipart/form-data"),
                401, "login_required")


# --- /sync/ ----------------------------------------------------------------------------

def _scan(client, token, device_at=None, **headers):
    device_at = device_at or (utcnow() - timedelta(minutes=1)).isoformat(timespec="seconds") + "Z"
    return client.post("/sync/presence", data={"token": token, "device_at": device_at},
                       headers=headers)


def test_sync_presence(app, w):
    with app.app_context():
        token = db.session.get(Compound, w.a1).qr_token
    phone = sign_in(app.test_client(), w.vol_a)
    check_shape(_scan(phone, "no-such-token"), 404, "unknown_compound")
    check_shape(_scan(phone, token, device_at="not a time"), 422, "device_time",
                fields=("device_at",))
    check_shape(_scan(sign_in(app.test_client(), w.mgr_x), token), 403, "scan_not_allowed")
    check_shape(phone.get("/sync/presence"), 405, "method_not_allowed")
    assert check_shape(app.test_client().get("/sync/token"), 401, "login_required")["login"]


def test_csrf_refused_at_send_time_is_retried(tmp_path):
    app = _app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
    phone = sign_in(app.test_client(), w.vol_a)
    resp = phone.post(f"/compounds/{w.a1}/report", data={"category": "flyers"},
                      headers={**SYNC, "X-CSRFToken": "stale"})
    assert check_shape(resp, 400, "csrf")["retry"] is True


def test_too_large_and_too_many(tmp_path):
    app = _app(tmp_path, MAX_CONTENT_LENGTH=1000, RATELIMIT_ENABLED=True)
    with app.app_context():
        w = build_world()
        token = db.session.get(Compound, w.a1).qr_token
    phone = sign_in(app.test_client(), w.vol_a)
    check_shape(report(phone, w, note="x" * 5000), 413, "too_large")
    answers = [_scan(phone, token, (utcnow() - timedelta(seconds=i)).isoformat() + "Z")
               for i in range(61)]
    check_shape(answers[-1], 429, "rate_limited")


def test_a_server_error_is_retried(app, w, monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("INSERT INTO item", {}, Exception("database is locked"))
    monkeypatch.setattr(svc, "report", locked)
    phone = sign_in(app.test_client(), w.vol_a)
    assert check_shape(report(phone, w), 500, "server_error")["retry"] is True
