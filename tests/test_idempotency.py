"""The outbox's client UUID is an idempotency key: 20 concurrent sends, one item."""
import io
import threading
import uuid
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.models import Item, Photo, utcnow
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes


def test_same_report_sent_20_times_at_once_makes_one_item(db_app):
    with db_app.app_context():
        w = build_world()
    key = str(uuid.uuid4())
    made_at = (utcnow() - timedelta(minutes=10)).isoformat(timespec="seconds") + "Z"
    start = threading.Barrier(20)
    answers = []

    def send():
        client = sign_in(db_app.test_client(), w.vol_a)
        start.wait()
        resp = client.post(f"/compounds/{w.a1}/report", headers={"X-Patrol-Sync": "1"},
                           content_type="multipart/form-data",
                           data={"category": "flying_wire", "note": "同一条", "client_uuid": key,
                                 "device_at": made_at,
                                 "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
        answers.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = sorted(s for s, _ in answers)
    assert len(answers) == 20 and set(statuses) <= {200, 201}, statuses
    assert statuses.count(201) == 1
    assert len({body["id"] for _, body in answers}) == 1
    with db_app.app_context():
        items = db.session.execute(db.select(Item)).scalars().all()
        assert len(items) == 1 and items[0].client_uuid == key
        assert items[0].device_created_at is not None   # the phone's time was plausible
        assert len(items[0].photos) == 1
        attached = db.session.scalar(db.select(db.func.count()).select_from(Photo)
                                     .where(Photo.item_id.is_not(None)))
        assert attached == 1


def test_same_key_different_content_is_a_conflict(db_app):
    with db_app.app_context():
        w = build_world()
    client = sign_in(db_app.test_client(), w.vol_a)
    key = str(uuid.uuid4())
    send = lambda **kw: client.post(  # noqa: E731
        f"/compounds/{w.a1}/report", headers={"X-Patrol-Sync": "1"},
        content_type="multipart/form-data",
        data=dict({"category": "flyers", "client_uuid": key,
                   "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")}, **kw))
    first = send()
    assert first.status_code == 201
    again = send()
    assert again.status_code == 200 and again.get_json() == dict(first.get_json(), duplicate=True)
    other = send(category="lighting")
    assert other.status_code == 409 and other.get_json()["error"]
    assert send(floor="5楼").status_code == 409       # same category, another place
    assert send(note="另一件事").status_code == 409
    # Another number of photos is another report (an item exists only if all were accepted).
    two = [(io.BytesIO(jpeg_bytes()), "p.jpg"), (io.BytesIO(jpeg_bytes()), "q.jpg")]
    assert send(photos=two).status_code == 409
    assert send(photos=[]).status_code == 409
    # Another volunteer cannot claim the key either.
    stranger = sign_in(db_app.test_client(), w.staff_a)
    resp = stranger.post(f"/compounds/{w.a1}/report", headers={"X-Patrol-Sync": "1"},
                         content_type="multipart/form-data",
                         data={"category": "flyers", "client_uuid": key,
                               "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 409
    with db_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 1


def test_a_check_sent_again_after_a_lost_answer_is_not_refused(db_app):
    """The outbox resends a verification whose answer was lost: same result, one event."""
    from patrol.lifecycle import Action
    from patrol.models import Compound, ItemEvent, User, utcnow
    from patrol.services import items as svc
    from patrol.services.photo_store import save_upload
    from patrol.web.helpers import hazard_form
    from datetime import timedelta
    with db_app.app_context():
        w = build_world()
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        now, form, window = utcnow(), hazard_form(), timedelta(hours=2)
        compound = db.session.get(Compound, w.a1)
        item = svc.report(form=form, compound=compound, reporter=vol, now=now,
                          clean={"category": "flyers", "extra": {}},
                          photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
        svc.act(item, Action.ACKNOWLEDGE, mgr, now, svc.ActionInput(), form=form, window=window)
        svc.act(item, Action.FIX, mgr, now, svc.ActionInput(
            note="ok", photos=[save_upload(jpeg_bytes(), uploader=mgr, kind="after")]),
            form=form, window=window)
        svc.record_presence(vol, compound, now)
        db.session.commit()
        item_id, version = item.id, item.version
    client = sign_in(db_app.test_client(), w.vol_a)
    key = str(uuid.uuid4())
    send = lambda **kw: client.post(  # noqa: E731
        f"/items/{item_id}/act", headers={"X-Patrol-Sync": "1"},
        content_type="multipart/form-data",
        data=dict({"action": "verify", "version": str(version), "client_uuid": key,
                   "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")}, **kw))
    assert send().status_code == 200
    again = send()
    assert again.status_code == 200 and again.get_json()["status"] == "verified"
    other = send(action="reopen", reason="not_fixed")
    assert other.status_code == 409
    with db_app.app_context():
        events = db.session.execute(db.select(ItemEvent).where(
            ItemEvent.item_id == item_id, ItemEvent.action == "verify")).scalars().all()
        assert len(events) == 1 and events[0].client_uuid == key


def test_same_key_with_other_extra_answers_is_a_conflict(db_app):
    """Forms are data: a field added by staff (here a number of e-bikes) is part of what
    makes two sends the same report."""
    from patrol.models import Compound, User, utcnow
    from patrol.services import items as svc
    from patrol.web.helpers import hazard_form
    with db_app.app_context():
        w = build_world()
        vol, compound = db.session.get(User, w.vol_a), db.session.get(Compound, w.a1)
        key = str(uuid.uuid4())
        svc.report(form=hazard_form(), compound=compound, reporter=vol, now=utcnow(),
                   clean={"category": "flying_wire", "extra": {"bikes": 3, "colour": ""}},
                   photos=[], client_uuid=key)
        db.session.commit()
        same = lambda extra, **kw: svc.find_resent(  # noqa: E731
            key, reporter=vol, compound=compound,
            clean={"category": "flying_wire", "extra": extra}, **kw)
        assert same({"bikes": "3"}).client_uuid == key      # the form's raw text, same value
        assert same({"bikes": 3}, photo_count=0).client_uuid == key
        for other in ({"bikes": 4}, {}, {"bikes": 3, "colour": "红"}):
            with pytest.raises(svc.ConflictError):
                same(other)
        with pytest.raises(svc.ConflictError):
            same({"bikes": 3}, photo_count=1)


def test_a_duplicate_send_that_loses_the_race_gets_the_duplicate_answer(db_app, monkeypatch):
    """Two sends of one report with the same kept photo. The loser looks for an earlier
    send, finds none, and only then does the winner arrive and claim the photo: the loser
    must answer "already received" (200), never "please take a photo" (422)."""
    from patrol.services import items as item_service
    with db_app.app_context():
        w = build_world()
    client = sign_in(db_app.test_client(), w.vol_a)
    photo_id = client.post("/photos", data={"photo": (io.BytesIO(jpeg_bytes()), "p.jpg")},
                           content_type="multipart/form-data").get_json()["id"]
    form = {"category": "flying_wire", "note": "同一条", "client_uuid": str(uuid.uuid4()),
            "kept_photos": str(photo_id)}
    answers = {}

    def send(name):
        resp = sign_in(db_app.test_client(), w.vol_a).post(
            f"/compounds/{w.a1}/report", headers={"X-Patrol-Sync": "1"},
            content_type="multipart/form-data", data=dict(form))
        answers[name] = (resp.status_code, resp.get_json())

    original = item_service.find_resent
    barrier = threading.Barrier(2, timeout=30)
    winner_done = threading.Event()

    def find_resent(*args, **kwargs):
        found = original(*args, **kwargs)
        if threading.current_thread().name == "loser" and not barrier.broken \
                and not winner_done.is_set():
            barrier.wait()           # the winner starts only now...
            winner_done.wait(30)     # ...and has committed before the loser goes on
        return found

    monkeypatch.setattr(item_service, "find_resent", find_resent)

    def winner():
        barrier.wait()
        send("winner")
        winner_done.set()

    threads = [threading.Thread(target=send, args=("loser",), name="loser"),
               threading.Thread(target=winner, name="winner")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers["winner"][0] == 201, answers
    assert answers["loser"][0] == 200, answers
    assert answers["loser"][1]["duplicate"] is True
    assert answers["loser"][1]["id"] == answers["winner"][1]["id"]
    with db_app.app_context():
        items = db.session.execute(db.select(Item)).scalars().all()
        assert len(items) == 1 and [p.id for p in items[0].photos] == [photo_id]
