"""The JSON API (/api/v1): personal tokens (create, use, expire, revoke, read-only), the
web's permissions exactly, reads with cursors, writes through the same services, one
error shape."""
from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta

import pytest
import time_machine

from patrol import permissions
from patrol.clock import utcnow
from patrol.display import hazard_form
from patrol.extensions import db
from patrol.models import ApiToken, Compound, Item, User
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

ERROR_KEYS = {"code", "status", "reason", "message"}


@pytest.fixture
def w(db_app):
    with db_app.app_context():
        w = build_world()
        vol = db.session.get(User, w.vol_a)
        vol_b = db.session.get(User, w.vol_b)
        now = utcnow() - timedelta(hours=3)
        ids = []
        for user, compound_id in ((vol, w.a1), (vol, w.a1), (vol, w.a2), (vol_b, w.b1)):
            item = svc.report(form=hazard_form(), compound=db.session.get(Compound, compound_id),
                              reporter=user, now=now, clean={"category": "flyers", "extra": {}},
                              photos=[save_upload(jpeg_bytes(), uploader=user, kind="before")])
            ids.append(item.id)
        db.session.commit()
        w.items = ids
    return db_app, w


def make_token(app, user_id, scope="read", days=30):
    """Through the page, as a person would: the secret is on the page once."""
    client = sign_in(app.test_client(), user_id)
    page = client.post("/tokens/", data={"name": "台账系统", "scope": scope, "days": days})
    assert page.status_code == 201
    secret = re.search(r"(pt_[A-Za-z0-9_-]+)", page.get_data(as_text=True)).group(1)
    assert page.headers["Cache-Control"] == "no-store"
    return secret, client


def api(app, secret):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


def test_token_lifecycle(w):
    app, w = w
    secret, page_client = make_token(app, w.staff_a)
    with app.app_context():
        token = db.session.execute(db.select(ApiToken)).scalar_one()
        assert secret not in (token.token_hash, token.hint) and token.last_used_at is None
        token_id = token.id
    client = api(app, secret)
    assert client.get("/api/v1/items").status_code == 200
    with app.app_context():
        assert db.session.get(ApiToken, token_id).last_used_at is not None
    # The list shows only the hint, never the secret again; every page's footer links it.
    assert secret not in page_client.get("/tokens/").get_data(as_text=True)
    assert 'id="footer-api-tokens"' in page_client.get("/overview").get_data(as_text=True)
    volunteer = sign_in(app.test_client(), w.vol_a).get(f"/compounds/{w.a1}")
    assert 'id="footer-api-tokens"' not in volunteer.get_data(as_text=True)
    # Another person cannot revoke it (404), its owner can.
    other = sign_in(app.test_client(), w.staff_b)
    assert other.post(f"/tokens/{token_id}/revoke").status_code == 404
    assert page_client.post(f"/tokens/{token_id}/revoke").status_code == 302
    refused = client.get("/api/v1/items")
    assert refused.status_code == 401 and refused.json["reason"] == "token_invalid"
    assert ERROR_KEYS <= set(refused.json)


def test_tokens_expire(w):
    app, w = w
    secret, _ = make_token(app, w.staff_a, days=30)
    client = api(app, secret)
    assert client.get("/api/v1/items").status_code == 200
    with time_machine.travel(utcnow() + timedelta(days=31), tick=False):
        assert client.get("/api/v1/items").status_code == 401


def test_no_token_and_bad_tokens(w):
    app, w = w
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer pt_" + "x" * 40}, {"Authorization": "Bearer " + "y" * 500}):
        r = client.get("/api/v1/items", headers=headers)
        assert r.status_code == 401 and ERROR_KEYS <= set(r.json), headers
    # A signed-in browser session is not an API credential.
    assert sign_in(app.test_client(), w.staff_a).get("/api/v1/items").status_code == 401


def test_read_only_token_is_refused_a_write(w):
    app, w = w
    secret, _ = make_token(app, w.mgr_x, scope="read")
    r = api(app, secret).post(f"/api/v1/items/{w.items[0]}/actions",
                              data={"action": "acknowledge", "client_key": str(uuid.uuid4())})
    assert r.status_code == 403 and r.json["reason"] == "read_only_token"
    with app.app_context():
        assert db.session.get(Item, w.items[0]).status == "reported"


def test_acting_token_acts_through_the_transition_table(w):
    app, w = w
    secret, _ = make_token(app, w.mgr_x, scope="act")
    client = api(app, secret)
    key = str(uuid.uuid4())
    r = client.post(f"/api/v1/items/{w.items[0]}/actions", data={"action": "acknowledge",
                                                                  "client_key": key})
    assert r.status_code == 200 and r.json["status"] == "acknowledged"
    assert [e["action"] for e in r.json["history"]] == ["report", "acknowledge"]
    # The same key again: the same change, not a second one.
    again = client.post(f"/api/v1/items/{w.items[0]}/actions", data={"action": "acknowledge",
                                                                      "client_key": key})
    assert again.status_code == 200 and len(again.json["history"]) == 2
    # The table still rules: a manager cannot verify; a fix needs its evidence.
    r = client.post(f"/api/v1/items/{w.items[0]}/actions",
                    data={"action": "verify", "client_key": str(uuid.uuid4())})
    assert r.status_code == 403 and r.json["reason"] == "forbidden_role"
    r = client.post(f"/api/v1/items/{w.items[0]}/actions",
                    data={"action": "fix", "client_key": str(uuid.uuid4())})
    assert r.status_code == 422 and r.json["reason"] == "missing_evidence"
    r = client.post(f"/api/v1/items/{w.items[0]}/actions", content_type="multipart/form-data",
                    data={"action": "fix", "note": "已清理", "client_key": str(uuid.uuid4()),
                          "photos": (io.BytesIO(jpeg_bytes()), "after.jpg")})
    assert r.status_code == 200 and r.json["status"] == "fixed"
    # Company Y's item is not company X's to touch (403, the web's answer for items).
    r = client.post(f"/api/v1/items/{w.items[2]}/actions", data={"action": "acknowledge",
                                                                  "client_key": str(uuid.uuid4())})
    assert r.status_code == 403


def test_report_through_the_api_is_idempotent(w):
    app, w = w
    secret, _ = make_token(app, w.staff_a, scope="act")
    client = api(app, secret)
    key = str(uuid.uuid4())

    def send():
        return client.post("/api/v1/items", content_type="multipart/form-data", data={
            "compound_id": w.a1, "category": "flyers", "note": "单元门口小广告",
            "client_key": key, "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    first, second = send(), send()
    assert first.status_code == 201 and second.status_code == 200
    assert first.json["id"] == second.json["id"] and len(first.json["photos"]) == 1
    photo = client.get(first.json["photos"][0]["url"].replace("http://localhost", ""))
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    bad = client.post("/api/v1/items", data={"compound_id": w.a1, "category": "nope",
                                              "client_key": str(uuid.uuid4())})
    assert bad.status_code == 422 and "category" in bad.json["errors"]
    missing = client.post("/api/v1/items", data={"category": "flyers"})
    assert missing.status_code == 422 and {"compound_id", "client_key"} <= set(missing.json["errors"])
    elsewhere = client.post("/api/v1/items", data={"compound_id": w.b1, "category": "flyers",
                                                   "client_key": str(uuid.uuid4())})
    assert elsewhere.status_code == 403


def test_lists_page_with_a_cursor_and_filter(w):
    app, w = w
    secret, _ = make_token(app, w.staff_a)
    client = api(app, secret)
    first = client.get("/api/v1/items?limit=2").json
    assert [i["id"] for i in first["items"]] == [w.items[2], w.items[1]]
    rest = client.get(f"/api/v1/items?limit=2&cursor={first['next_cursor']}").json
    assert [i["id"] for i in rest["items"]] == [w.items[0]] and rest["next_cursor"] is None
    assert [i["id"] for i in client.get(f"/api/v1/items?compound_id={w.a2}").json["items"]] \
        == [w.items[2]]
    for bad in ("limit=0", "limit=100000", "status=teleported", "cursor=abc",
                "compound_id=99999999999999999999"):
        r = client.get(f"/api/v1/items?{bad}")
        assert r.status_code == 422 and ERROR_KEYS <= set(r.json), bad
    changes = client.get("/api/v1/changes").json
    assert {c["item_id"] for c in changes["changes"]} == set(w.items[:3])
    assert client.get(f"/api/v1/changes?since={changes['next_cursor']}").json["changes"] == []


ROLES = ("vol_a", "vol_b", "staff_a", "staff_b", "mgr_x", "mgr_y", "com_a1", "admin")


def test_the_api_sees_exactly_what_the_web_does(w):
    """The permission matrix: every role's token lists exactly permissions.item_filter's
    items, and each detail answers as can_see_item says (0 leaks)."""
    app, w = w
    for name in ROLES:
        uid = getattr(w, name)
        with app.app_context():
            user = db.session.get(User, uid)
            expected = set(db.session.scalars(db.select(Item.id).where(
                permissions.item_filter(user, Item))))
            token, secret = ApiToken.new(user, "m", "read", None, utcnow())
            db.session.add(token)
            db.session.commit()
        client = api(app, secret)
        listed = {i["id"] for i in client.get("/api/v1/items?limit=200").json["items"]}
        assert listed == expected, name
        for item_id in w.items:
            status = client.get(f"/api/v1/items/{item_id}").status_code
            assert status == (200 if item_id in expected else 403), (name, item_id)
        assert client.get("/api/v1/items/999999").status_code == 404


def test_openapi_document_and_docs_page(w):
    app, w = w
    client = app.test_client()
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.") and "/api/v1/items" in spec["paths"]
    assert "Error" in spec["components"]["schemas"]
    from openapi_spec_validator import validate
    validate(spec)
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "GET /api/v1/items" in page and "cdn" not in page.lower()


def test_unknown_api_paths_and_methods_answer_in_the_error_shape(w):
    app, w = w
    secret, _ = make_token(app, w.staff_a)
    client = api(app, secret)
    for r in (client.get("/api/v1/nope"), client.delete("/api/v1/items"),
              client.post("/api/v1/items", data=b"\x00" * 10, content_type="application/json")):
        assert r.status_code in (403, 404, 405, 415, 422) and ERROR_KEYS <= set(r.json)


def test_ratings_name_their_period_as_it_was_asked(w):
    """`period` is the code the request takes (it printed the dataclass's repr)."""
    app, w = w
    secret, _page = make_token(app, w.staff_a)
    for asked in ("2026-Q3", "2026-10"):
        response = api(app, secret).get(f"/api/v1/ratings?period={asked}")
        assert response.status_code == 200, response.data[:300]
        assert response.get_json()["period"] == asked
