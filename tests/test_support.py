"""Supporting reports (同一个问题, "N 人反映"): POST /items/<id>/support from the report
form's duplicate suggestion. Who may, exactly once per form, counts, and merges."""
from __future__ import annotations

import io
import uuid
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import Compound, Item, ItemEvent, Photo, User, utcnow
from patrol.services import items as svc
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import jpeg_bytes

SYNC = {"X-Patrol-Sync": "1"}


def new_item(world, compound="a1", category="flying_wire", building=None):
    vol = db.session.get(User, world.vol_a)
    compound_row = db.session.get(Compound, getattr(world, compound))
    item = svc.report(form=hazard_form(), compound=compound_row, reporter=vol,
                      clean={"category": category, "extra": {},
                             "building": building}, photos=[], now=utcnow())
    db.session.commit()
    return item.id


@pytest.fixture
def item_id(app, world):
    with app.app_context():
        return new_item(world)


def support(client, item_id, key=None, note="又看到了", photo=True, headers=SYNC):
    data = {"client_uuid": key or str(uuid.uuid4()), "note": note}
    if photo:
        data["photos"] = (io.BytesIO(jpeg_bytes()), "p.jpg")
    return client.post(f"/items/{item_id}/support", data=data, headers=headers,
                       content_type="multipart/form-data")


def test_a_volunteer_supports_an_open_item_with_photo_and_note(app, world, client, item_id):
    sign_in(client, world.vol_a)
    resp = support(client, item_id)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.json == {"id": item_id, "support_count": 1, "reports": 2,
                         "url": f"/compounds/{world.a1}"}
    with app.app_context():
        item = db.session.get(Item, item_id)
        assert item.support_count == 1 and item.status == "reported"
        ev = item.events[-1]
        assert ev.action == "support" and ev.note == "又看到了" and ev.actor_id == world.vol_a
        assert [p.kind for p in ev.photos] == ["before"]
        assert all(p.item_id == item_id for p in ev.photos)
    # The lists say it: "2 人反映".
    page = client.get(f"/compounds/{world.a1}").get_data(as_text=True)
    assert "2 人反映" in page


def test_staff_support_and_the_page_form_redirects(app, world, client, item_id):
    sign_in(client, world.staff_a)
    resp = support(client, item_id, headers={}, photo=False)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/compounds/{world.a1}")
    with app.app_context():
        assert db.session.get(Item, item_id).support_count == 1


def test_the_same_form_twice_counts_once(app, world, client, item_id):
    sign_in(client, world.vol_a)
    key = str(uuid.uuid4())
    first = support(client, item_id, key=key)
    again = support(client, item_id, key=key)          # a lost answer: the outbox resends
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["support_count"] == 1
    with app.app_context():
        assert db.session.get(Item, item_id).support_count == 1
        assert db.session.execute(db.select(db.func.count()).select_from(ItemEvent).where(
            ItemEvent.action == "support")).scalar_one() == 1
    # Two different forms are two reports.
    assert support(client, item_id).status_code == 201
    with app.app_context():
        assert db.session.get(Item, item_id).support_count == 2


def test_one_key_on_another_item_is_a_conflict(app, world, client, item_id):
    with app.app_context():
        other = new_item(world, category="fire_exit")
    sign_in(client, world.vol_a)
    key = str(uuid.uuid4())
    assert support(client, item_id, key=key).status_code == 201
    resp = support(client, other, key=key)
    assert resp.status_code == 409 and resp.json["code"] == "resent_different"
    with app.app_context():
        assert db.session.get(Item, other).support_count == 0


@pytest.mark.parametrize("who", ["vol_b", "staff_b"])
def test_another_community_is_refused(app, world, client, item_id, who):
    sign_in(client, getattr(world, who))
    assert support(client, item_id).status_code == 403
    with app.app_context():
        assert db.session.get(Item, item_id).support_count == 0


@pytest.mark.parametrize("who", ["mgr_x", "com_a1", "admin"])
def test_who_does_not_patrol_cannot_support(app, world, client, item_id, who):
    """The item's own company sees it, and still may not add reports to it."""
    sign_in(client, getattr(world, who))
    assert support(client, item_id).status_code == 403
    with app.app_context():
        assert db.session.get(Item, item_id).support_count == 0
        assert db.session.execute(db.select(db.func.count()).select_from(Photo).where(
            Photo.item_id == item_id)).scalar_one() == 0


def test_signed_out_is_sent_to_sign_in(client, world, item_id):
    assert support(client, item_id, headers={}).status_code == 302
    assert support(client, item_id).status_code == 401


def test_a_closed_item_is_refused_with_a_reason(app, world, client, item_id):
    with app.app_context():
        item = db.session.get(Item, item_id)
        svc.act(item, Action.REJECT, db.session.get(User, world.staff_a), utcnow(),
                svc.ActionInput(reason="not_a_hazard"), form=hazard_form(),
                window=timedelta(hours=2))
        db.session.commit()
    sign_in(client, world.vol_a)
    resp = support(client, item_id)
    assert resp.status_code == 409 and resp.json["code"] == "bad_state"
    assert "新问题" in resp.json["error"]


def test_merge_moves_the_supporting_reports(app, world, client, item_id):
    with app.app_context():
        dup = new_item(world)
    sign_in(client, world.vol_a)
    assert support(client, dup).status_code == 201
    assert support(client, dup).status_code == 201
    assert support(client, item_id).status_code == 201
    with app.app_context():
        staff = db.session.get(User, world.staff_a)
        svc.act(db.session.get(Item, dup), Action.MERGE, staff, utcnow(),
                svc.ActionInput(target_id=item_id), form=hazard_form(),
                window=timedelta(hours=2))
        db.session.commit()
        kept = db.session.get(Item, item_id)
        # its own 1 + the merged item's report and its 2 supporting reports
        assert kept.support_count == 1 + 3
    page = client.get(f"/compounds/{world.a1}").get_data(as_text=True)
    assert "5 人反映" in page


def test_the_report_page_embeds_the_open_items_for_the_suggestion(app, world, client):
    import json
    import re
    with app.app_context():
        wire = new_item(world, building=None)
        other = new_item(world, compound="a2")
        closed = new_item(world, category="fire_exit")
        svc.act(db.session.get(Item, closed), Action.REJECT, db.session.get(User, world.staff_a),
                utcnow(), svc.ActionInput(reason="not_a_hazard"), form=hazard_form(),
                window=timedelta(hours=2))
        db.session.commit()
    sign_in(client, world.vol_a)
    page = client.get(f"/compounds/{world.a1}/report").get_data(as_text=True)
    data = json.loads(re.search(r'<script type="application/json" id="open-items">(.*?)</script>',
                                page, re.S).group(1))
    assert [d["id"] for d in data] == [wire]          # open, this compound's only
    assert data[0]["category"] == "flying_wire" and data[0]["reports"] == 1
    assert other not in [d["id"] for d in data]
    assert "是同一个问题吗？" in page
