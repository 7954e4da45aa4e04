"""Patrols in the field, through the views: start, join, checkpoints, end with the summary,
resends, who may see and change what, the 位置不符 list, stickers, CSRF."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.models import (AuditEntry, Checkpoint, CheckpointScan, Compound, Item, ItemEvent,
                           Patrol, PatrolMember, Presence, User, utcnow)
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes

GATE = (30.2741, 120.1551)
SYNC = {"X-Patrol-Sync": "1"}
START_KEY = "aaaaaaaa-1111-4111-8111-111111111111"
CP_KEY = "bbbbbbbb-2222-4222-8222-222222222222"


@pytest.fixture
def w(db_app):
    with db_app.app_context():
        ids = build_world()
        c = db.session.get(Compound, ids.a1)
        c.lat, c.lon, c.radius_m = GATE[0], GATE[1], 200
        mate = User(username="vol_a2", display_name="王阿姨", role="volunteer",
                    community_id=ids.ca, team_id=ids.team, title="组长")
        cps = [Checkpoint(compound_id=ids.a1, name=n, kind=k)
               for n, k in (("1栋", "building"), ("2栋", "building"), ("车库消防通道", "fire_exit"))]
        db.session.add_all([mate, *cps])
        db.session.commit()
        ids.mate = mate.id
        ids.cps = [cp.id for cp in cps]
        ids.tokens = [cp.qr_token for cp in cps]
        ids.gate = c.qr_token
    ids.app = db_app
    return ids


def client_of(w, user_id):
    return sign_in(w.app.test_client(), user_id)


def iso(dt):
    return dt.isoformat() + "Z"


def report(client, compound_id, **fields):
    data = {"category": "flyers", "photos": (io.BytesIO(jpeg_bytes()), "p.jpg"), **fields}
    return client.post(f"/compounds/{compound_id}/report", data=data,
                       content_type="multipart/form-data")


def patrols():
    return db.session.execute(db.select(Patrol)).scalars().all()


def test_start_join_checkpoints_report_and_end_with_summary(w):
    a, b = client_of(w, w.vol_a), client_of(w, w.mate)
    resp = a.post("/patrols/start", data={"compound": w.a1, "client_uuid": START_KEY})
    assert resp.status_code == 302 and resp.location.endswith(f"/compounds/{w.a1}")
    page = a.get(f"/compounds/{w.a1}").get_data(as_text=True)
    assert 'id="patrol-end-form"' in page and 'id="patrol-start"' not in page
    assert "vol_a" in page
    # The teammate sees the patrol under way and joins it.
    page = b.get(f"/compounds/{w.a1}").get_data(as_text=True)
    assert 'id="team-patrol"' in page
    assert b.post("/patrols/start", data={"compound": w.a1}).status_code == 302
    # Checkpoints: two of three, by their stickers.
    for token in w.tokens[:2]:
        resp = b.get(f"/k/{token}")
        assert resp.status_code == 302 and f"/compounds/{w.a1}?checkpoint_scan=" in resp.location
    page = a.get(f"/compounds/{w.a1}").get_data(as_text=True)
    assert '<b class="n">2</b>/3' in page
    # A report on the way is linked to the patrol.
    resp = report(b, w.a1, note="小广告")
    assert resp.status_code == 302
    with w.app.app_context():
        (patrol,) = patrols()
        item = db.session.execute(db.select(Item)).scalar_one()
        assert item.events[0].patrol_id == patrol.id
        pid = patrol.id
    page = a.get(f"/compounds/{w.a1}").get_data(as_text=True)
    assert 'id="found-count" value="1"' in page
    # The end: one tap with N.
    resp = a.post(f"/patrols/{pid}/end", data={"summary": "found", "found_count": "1"})
    assert resp.status_code == 302 and resp.location.endswith(f"/patrols/{pid}")
    with w.app.app_context():
        patrol = db.session.get(Patrol, pid)
        assert (patrol.summary, patrol.found_count, patrol.ended_by) == ("found", 1, "tapped")
        members = {m.user_id for m in patrol.members}
        assert members == {w.vol_a, w.mate}
        assert all(m.minutes is not None for m in patrol.members)
        assert db.session.scalar(db.select(db.func.count()).select_from(CheckpointScan)) == 2
    page = a.get(f"/patrols/{pid}").get_data(as_text=True)
    assert "王阿姨" in page and f"/items/{item.id}" in page and "2/3" in page
    # The item page links back to its patrol.
    assert f'href="/patrols/{pid}" id="item-patrol"' in a.get(f"/items/{item.id}").get_data(as_text=True)
    # The compound page offers a new start.
    assert 'id="patrol-start"' in a.get(f"/compounds/{w.a1}").get_data(as_text=True)


def test_outbox_resends_are_idempotent(w):
    a = client_of(w, w.vol_a)
    t0 = utcnow() - timedelta(minutes=50)
    start = {"compound": w.a1, "client_uuid": START_KEY, "device_at": iso(t0)}
    first = a.post("/patrols/start", data=start, headers=SYNC)
    assert first.status_code == 201
    again = a.post("/patrols/start", data=start, headers=SYNC)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    scan = {"token": w.tokens[0], "client_uuid": CP_KEY, "device_at": iso(t0 + timedelta(minutes=10))}
    r1 = a.post("/sync/checkpoint", data=scan)
    r2 = a.post("/sync/checkpoint", data=scan)
    assert (r1.status_code, r2.status_code) == (201, 200) and r1.json["id"] == r2.json["id"]
    assert r1.json["patrol"] == first.json["id"]
    # The same key for another checkpoint: refused, not an overwrite.
    other = a.post("/sync/checkpoint", data={**scan, "token": w.tokens[1]})
    assert other.status_code == 409 and other.json["code"] == "resent_different"
    end = {"compound": w.a1, "summary": "none", "device_at": iso(t0 + timedelta(minutes=45)),
           "client_uuid": "cccccccc-3333-4333-8333-333333333333"}
    e1 = a.post(f"/compounds/{w.a1}/patrol/end", data=end, headers=SYNC)
    e2 = a.post(f"/compounds/{w.a1}/patrol/end", data=end, headers=SYNC)
    assert e1.status_code == e2.status_code == 200 and e1.json["id"] == e2.json["id"]
    with w.app.app_context():
        (patrol,) = patrols()
        assert patrol.started_at == t0.replace(microsecond=t0.microsecond // 1000 * 1000) \
            or abs((patrol.started_at - t0).total_seconds()) < 1
        assert patrol.summary == "none" and patrol.ended_by == "tapped"
        assert abs((patrol.ended_at - (t0 + timedelta(minutes=45))).total_seconds()) < 1
        assert db.session.get(PatrolMember, (patrol.id, w.vol_a)).minutes == 45
        assert db.session.scalar(db.select(db.func.count()).select_from(CheckpointScan)) == 1


def test_offline_checkpoint_needs_a_plausible_phone_time_and_a_known_sticker(w):
    a = client_of(w, w.vol_a)
    resp = a.post("/sync/checkpoint", data={"token": w.tokens[0]})
    assert resp.status_code == 422 and resp.json["code"] == "device_time"
    resp = a.post("/sync/checkpoint", data={"token": "nope", "device_at": iso(utcnow())})
    assert resp.status_code == 404 and resp.json["code"] == "not_found"
    with w.app.app_context():
        db.session.get(Checkpoint, w.cps[2]).archived_at = utcnow()
        db.session.commit()
    resp = a.post("/sync/checkpoint", data={"token": w.tokens[2], "device_at": iso(utcnow())})
    assert resp.status_code == 409
    assert a.get(f"/k/{w.tokens[2]}").status_code == 410
    with w.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(CheckpointScan)) == 0


def test_who_may_start_see_and_end(w):
    a = client_of(w, w.vol_a)
    a.post("/patrols/start", data={"compound": w.a1})
    with w.app.app_context():
        (patrol,) = patrols()
        pid = patrol.id
    # Another community's volunteer and staff: not their compound, not their patrol.
    for other in (w.vol_b, w.staff_b):
        c = client_of(w, other)
        assert c.post("/patrols/start", data={"compound": w.a1}).status_code == 403
        assert c.get(f"/patrols/{pid}").status_code == 404
        assert c.post(f"/patrols/{pid}/end", data={"summary": "none"}).status_code == 404
        assert c.post("/sync/checkpoint", data={"token": w.tokens[0],
                                                "device_at": iso(utcnow())}).status_code == 403
        assert c.get(f"/k/{w.tokens[0]}").status_code == 403
    # A manager sees the compound but does not patrol: no start, no scan recorded.
    mgr = client_of(w, w.mgr_x)
    assert mgr.post("/patrols/start", data={"compound": w.a1}).status_code == 403
    resp = mgr.post("/patrols/start", data={"compound": w.a1}, headers=SYNC)
    assert resp.status_code == 403 and resp.json["code"] == "forbidden_role"
    assert mgr.get(f"/k/{w.tokens[0]}").status_code == 302
    assert 'id="patrol-start"' not in mgr.get(f"/compounds/{w.a1}").get_data(as_text=True)
    # Staff of the community see the patrol but, not being on it, cannot end it.
    staff = client_of(w, w.staff_a)
    assert staff.get(f"/patrols/{pid}").status_code == 200
    resp = staff.post(f"/patrols/{pid}/end", data={"summary": "none"}, headers=SYNC)
    assert resp.status_code == 403 and resp.json["code"] == "forbidden_object"
    # A bad summary is refused, with the field named.
    resp = a.post(f"/patrols/{pid}/end", data={"summary": "maybe"}, headers=SYNC)
    assert resp.status_code == 422 and "summary" in resp.json["fields"]
    with w.app.app_context():
        assert db.session.get(Patrol, pid).ended_at is None
        assert db.session.scalar(db.select(db.func.count()).select_from(CheckpointScan)) == 0
    # The end by compound without a patrol under way.
    resp = client_of(w, w.mate).post(f"/compounds/{w.a1}/patrol/end", data={"summary": "none"},
                                     headers=SYNC)
    assert resp.status_code == 409


def test_a_cross_site_link_asks_before_recording_a_checkpoint(w):
    a = client_of(w, w.vol_a)
    resp = a.get(f"/k/{w.tokens[0]}", headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status_code == 200 and 'id="confirm-checkpoint"' in resp.get_data(as_text=True)
    with w.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(CheckpointScan)) == 0
    assert a.post(f"/k/{w.tokens[0]}").status_code == 302
    with w.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(CheckpointScan)) == 1


def test_flagged_lists_far_scans_only(w):
    a = client_of(w, w.vol_a)
    far, near = (GATE[0] + 0.018, GATE[1]), (GATE[0] + 0.00045, GATE[1])     # ~2 km, ~50 m
    a.post("/patrols/start", data={"compound": w.a1})
    # A gate scan 2 km away, one 50 m away, one without a location.
    for where in (far, near, None):
        a.get(f"/c/{w.gate}")
        if where:
            with w.app.app_context():
                pid = db.session.execute(db.select(Presence.id).order_by(Presence.id.desc())
                                         ).scalars().first()
            assert a.post(f"/presence/{pid}/location",
                          data={"lat": where[0], "lon": where[1], "accuracy": 10}).status_code == 200
    # Checkpoints: one online with a far location added by the page, one offline near.
    resp = a.get(f"/k/{w.tokens[0]}")
    scan_id = int(resp.location.rsplit("=", 1)[1])
    assert a.post(f"/patrols/checkpoint-scans/{scan_id}/location",
                  data={"lat": far[0], "lon": far[1], "accuracy": 20}).status_code == 200
    assert a.post(f"/patrols/checkpoint-scans/{scan_id}/location",
                  data={"lat": far[0], "lon": far[1]}).status_code == 403   # only once
    a.post("/sync/checkpoint", data={"token": w.tokens[1], "device_at": iso(utcnow()),
                                     "lat": near[0], "lon": near[1]})
    with w.app.app_context():
        (patrol,) = patrols()
        assert patrol.far_scans == 2
        presences = db.session.execute(db.select(Presence).order_by(Presence.id)).scalars().all()
        assert [p.far for p in presences] == [True, False, False]
        assert presences[2].distance_m is None
        pid = patrol.id
    page = client_of(w, w.staff_a).get("/patrols/flagged").get_data(as_text=True)
    assert page.count('class="item stacked"') == 2
    assert "1栋" in page and "2栋" not in page
    assert "50 " not in page.split('id="flagged"')[1].split("</ul>")[0].replace("150", "")
    # Another community's staff see none of it; volunteers are not offered the page.
    other = client_of(w, w.staff_b).get("/patrols/flagged").get_data(as_text=True)
    assert 'class="item stacked"' not in other
    assert client_of(w, w.vol_a).get("/patrols/flagged").status_code == 403
    # The patrol page shows 位置不符.
    assert 'id="patrol-far"' in a.get(f"/patrols/{pid}").get_data(as_text=True)


def test_item_page_shows_location_mismatch(w):
    a = client_of(w, w.vol_a)
    assert report(a, w.a1, lat=GATE[0] + 0.018, lon=GATE[1]).status_code == 302
    assert report(a, w.a1, lat=GATE[0], lon=GATE[1]).status_code == 302
    with w.app.app_context():
        far, near = db.session.execute(db.select(Item).order_by(Item.id)).scalars().all()
        assert far.location_mismatch and not near.location_mismatch
        ids = far.id, near.id
    assert 'id="location-mismatch"' in a.get(f"/items/{ids[0]}").get_data(as_text=True)
    assert 'id="location-mismatch"' not in a.get(f"/items/{ids[1]}").get_data(as_text=True)
    # No patrol: no link.
    assert 'id="item-patrol"' not in a.get(f"/items/{ids[0]}").get_data(as_text=True)


def test_staff_create_archive_and_print_checkpoints(w):
    staff = client_of(w, w.staff_a)
    with w.app.app_context():
        b1 = db.session.get(Compound, w.a1).buildings[0].id
        other_building = db.session.get(Compound, w.a2).buildings[0].id
    resp = staff.post(f"/admin/compounds/{w.a1}/checkpoints",
                      data={"name": "<b>3栋</b>", "kind": "building", "building_id": b1})
    assert resp.status_code == 302
    resp = staff.post(f"/admin/compounds/{w.a1}/checkpoints",
                      data={"name": "x", "kind": "building", "building_id": other_building})
    assert resp.status_code == 422
    resp = staff.post(f"/admin/compounds/{w.a1}/checkpoints", data={"name": "", "kind": "?"})
    assert resp.status_code == 422
    page = staff.get(f"/admin/compounds/{w.a1}/checkpoints").get_data(as_text=True)
    assert "&lt;b&gt;3栋&lt;/b&gt;" in page and "<b>3栋</b>" not in page
    with w.app.app_context():
        cp = db.session.execute(db.select(Checkpoint).where(
            Checkpoint.name == "<b>3栋</b>")).scalar_one()
        cp_id = cp.id
    pdf = staff.get(f"/admin/compounds/{w.a1}/checkpoints.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert staff.post(f"/admin/checkpoints/{cp_id}/archive").status_code == 302
    with w.app.app_context():
        assert db.session.get(Checkpoint, cp_id).archived_at is not None
        actions = db.session.execute(db.select(AuditEntry.action, AuditEntry.community_id)
                                     ).all()
        assert ("checkpoint.create", w.ca) in actions and ("checkpoint.archive", w.ca) in actions
    # Another community's staff and a volunteer: not theirs.
    other = client_of(w, w.staff_b)
    assert other.get(f"/admin/compounds/{w.a1}/checkpoints").status_code == 404
    assert other.post(f"/admin/checkpoints/{w.cps[0]}/archive").status_code == 404
    assert other.get(f"/admin/compounds/{w.a1}/checkpoints.pdf").status_code == 404
    assert client_of(w, w.vol_a).get(f"/admin/compounds/{w.a1}/checkpoints").status_code == 403
    with w.app.app_context():
        assert db.session.get(Checkpoint, w.cps[0]).archived_at is None


def test_sync_pages_maps_checkpoint_stickers_by_hash_only(w):
    from patrol.web.offline import token_digest
    body = client_of(w, w.vol_a).get("/sync/pages").json
    assert body["checkpoints"][token_digest(w.tokens[0])] == f"/compounds/{w.a1}"
    text = str(body)
    assert not any(t in text for t in w.tokens)


def test_csrf_is_enforced(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        ids = build_world()
        token = Checkpoint(compound_id=ids.a1, name="1栋")
        db.session.add(token)
        db.session.commit()
        cp_token = token.qr_token
    c = sign_in(app.test_client(), ids.vol_a)
    assert c.post("/patrols/start", data={"compound": ids.a1}).status_code == 400
    assert c.post("/sync/checkpoint", data={"token": cp_token,
                                            "device_at": iso(utcnow())}).status_code == 400
    assert c.post(f"/k/{cp_token}").status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Patrol)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(ItemEvent)) == 0


def test_an_unknown_gate_or_sticker_code_says_so_in_words(w):
    """A poster replaced since, or a mistyped link: a worded page (404), signed in or not,
    and nothing recorded."""
    with w.app.app_context():
        before = db.session.scalar(db.select(db.func.count()).select_from(Presence))
    for client in (w.app.test_client(), sign_in(w.app.test_client(), w.vol_a)):
        for path in ("/c/no-such-code", "/k/no-such-code"):
            resp = client.get(path)
            page = resp.get_data(as_text=True)
            assert resp.status_code == 404 and "无法识别的二维码" in page and "最新" in page, path
    with w.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Presence)) == before
