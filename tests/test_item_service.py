"""Item operations through the services, on SQLite and PostgreSQL."""
import threading
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action, TransitionError
from patrol.models import Compound, Item, ItemEvent, User, utcnow
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.factories import build_world, jpeg_bytes

WINDOW = timedelta(hours=2)


def _u(i):
    return db.session.get(User, i)


def _report(w, now):
    vol = _u(w.vol_a)
    item = svc.report(form=hazard_form(), compound=db.session.get(Compound, w.a1), reporter=vol,
                      clean={"category": "flying_wire", "extra": {}},
                      photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")], now=now)
    db.session.commit()
    return item


def _act(item, action, user, now, **given):
    photos = given.pop("photos", 0)
    given["photos"] = [save_upload(jpeg_bytes(color=(i * 40, 10, 10)), uploader=user,
                                   kind="after") for i in range(photos)]
    ev = svc.act(item, action, user, now, svc.ActionInput(**given), form=hazard_form(),
                 window=WINDOW)
    db.session.commit()
    return ev


def _fixed_item(w, now):
    item = _report(w, now - timedelta(hours=5))
    _act(item, Action.ACKNOWLEDGE, _u(w.mgr_x), now - timedelta(hours=4))
    _act(item, Action.FIX, _u(w.mgr_x), now - timedelta(hours=3), note="清理完毕", photos=1)
    return item


def test_full_loop_and_history(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        item = _fixed_item(w, now)
        assert item.status == "fixed" and item.acknowledged_at and item.fixed_at
        vol = _u(w.vol_a)
        with pytest.raises(TransitionError) as err:  # not on the spot
            _act(item, Action.VERIFY, vol, now, photos=1)
        assert err.value.code == "missing_evidence" and "presence" in err.value.detail
        db.session.rollback()
        svc.record_presence(vol, item.compound, now - timedelta(minutes=30))
        _act(item, Action.VERIFY, vol, now, photos=1, rating=5)
        assert item.status == "verified" and item.closed_at == now
        events = item.events
        assert [e.action for e in events] == ["report", "acknowledge", "fix", "verify"]
        assert [(e.from_status, e.to_status) for e in events] == [
            (None, "reported"), ("reported", "acknowledged"), ("acknowledged", "fixed"),
            ("fixed", "verified")]
        assert events[-1].presence_id is not None and events[-1].data["rating"] == 5
        assert all(len(e.photos) == 1 for e in events if e.action != "acknowledge")
        assert events[2].note == "清理完毕"


def test_presence_outside_window_is_refused(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        item = _fixed_item(w, now)
        vol = _u(w.vol_a)
        svc.record_presence(vol, item.compound, now - WINDOW - timedelta(minutes=1))
        other = db.session.get(Compound, w.a2)
        svc.record_presence(vol, other, now)  # a scan of another compound does not count
        with pytest.raises(TransitionError) as err:
            _act(item, Action.VERIFY, vol, now, photos=1)
        assert (err.value.code, err.value.detail) == ("missing_evidence", "presence")


def test_failed_check_reopens_then_fix_again(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        item = _fixed_item(w, now)
        vol = _u(w.vol_a)
        svc.record_presence(vol, item.compound, now)
        db.session.commit()
        with pytest.raises(TransitionError) as err:  # a reason is required
            _act(item, Action.REOPEN, vol, now, photos=1)
        assert (err.value.code, err.value.detail) == ("missing_evidence", "reason")
        db.session.rollback()
        _act(item, Action.REOPEN, vol, now, photos=1, reason="badly_fixed", note="没修好")
        assert item.status == "reopened" and item.deadline > now
        assert item.events[-1].reason == "badly_fixed"
        assert [p.kind for p in item.events[-1].photos] == ["check"]
        _act(item, Action.FIX, _u(w.mgr_x), now + timedelta(hours=1), note="重新整改", photos=1)
        assert item.status == "fixed"


def test_reject_merge_and_fix_on_spot(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        a, b, c = _report(w, now), _report(w, now), _report(w, now)
        staff = _u(w.staff_a)
        _act(a, Action.REJECT, staff, now, reason="not_a_hazard")
        assert a.status == "rejected" and a.closed_at
        _act(b, Action.MERGE, staff, now, target_id=c.id)
        assert b.status == "merged" and b.merged_into_id == c.id
        with pytest.raises(TransitionError) as err:  # cannot merge into itself
            _act(c, Action.MERGE, staff, now, target_id=c.id)
        assert (err.value.code, err.value.detail) == ("missing_evidence", "target")
        db.session.rollback()
        vol = _u(w.vol_a)
        svc.record_presence(vol, c.compound, now)
        _act(c, Action.FIX_ON_SPOT, vol, now, photos=1)
        assert c.status == "verified" and c.fixed_on_spot


def test_manager_cannot_extend_deadline(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        item = _report(w, now)
        with pytest.raises(TransitionError) as err:
            _act(item, Action.ACKNOWLEDGE, _u(w.mgr_x), now, deadline=now + timedelta(days=3))
        assert err.value.code == "deadline_extension"
        db.session.rollback()
        _act(item, Action.ACKNOWLEDGE, _u(w.mgr_x), now, deadline=now + timedelta(hours=3))
        assert item.deadline == now + timedelta(hours=3)


def test_history_is_append_only(db_app):
    with db_app.app_context():
        w = build_world()
        item = _report(w, utcnow())
        event = db.session.execute(db.select(ItemEvent).where(ItemEvent.item_id == item.id)).scalar_one()
        event.note = "rewritten"
        with pytest.raises(RuntimeError, match="append-only"):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.get(ItemEvent, event.id))
        with pytest.raises(RuntimeError, match="append-only"):
            db.session.commit()


def test_two_people_acting_at_once_only_one_wins(db_app):
    """Two managers of the same company acknowledge the same item at the same moment."""
    with db_app.app_context():
        w = build_world()
        item_id = _report(w, utcnow()).id
        second = User(username="mgr_x2", display_name="mgr_x2", role="manager", company_id=w.x)
        db.session.add(second)
        db.session.commit()
        managers = [w.mgr_x, second.id]
    loaded = threading.Barrier(2)
    results = {}

    def attempt(user_id):
        with db_app.app_context():
            item = db.session.get(Item, item_id)
            user = db.session.get(User, user_id)
            version = item.version
            loaded.wait()  # both have read the item before either writes
            try:
                svc.act(item, Action.ACKNOWLEDGE, user, utcnow(),
                        svc.ActionInput(version=version), form=hazard_form(), window=WINDOW)
                db.session.commit()
                results[user_id] = "won"
            except svc.ConflictError:
                db.session.rollback()
                results[user_id] = "conflict"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(m,)) for m in managers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == ["conflict", "won"]
    with db_app.app_context():
        item = db.session.get(Item, item_id)
        assert item.status == "acknowledged" and item.version == 2
        acks = [e for e in item.events if e.action == "acknowledge"]
        assert len(acks) == 1


def test_stale_version_from_the_form_is_a_conflict(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        item = _report(w, now)
        _act(item, Action.ACKNOWLEDGE, _u(w.mgr_x), now)
        with pytest.raises(svc.ConflictError):
            _act(item, Action.FIX, _u(w.mgr_x), now, note="x", photos=1, version=1)
