"""Residents' reports (issue 12): the form, the triage queue, the receipt link and the
rating, through the services and the pages. Personal data reaches nobody outside
triage; a receipt shows one report only."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action, TransitionError
from patrol.models import Compound, Item, ItemEvent, Photo, ResidentReport, User, utcnow
from patrol.models import Delivery
from patrol.services import items as item_service
from patrol.services import residents as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

WINDOW = timedelta(hours=2)
PHONE = "138 0013 8000"


def _u(i):
    return db.session.get(User, i)


def _limits(app, device_limit=5):
    return svc.Limits(device_limit=device_limit, max_photos=app.config["MAX_PHOTOS"],
                      secret=app.config["SECRET_KEY"])


def _submit(app, compound, *, device="device-one-0123456789", note="楼道堆满纸箱", phone=PHONE,
            category="fire_exit", client_uuid=None, photos=1, now=None, device_limit=5):
    values = {"category": category, "building": str(compound.buildings[0].id), "note": note,
              "phone": phone}
    if client_uuid:
        values["client_uuid"] = client_uuid
    uploads = [svc.Upload(f"p{i}.jpg", jpeg_bytes(color=(10 * i, 90, 90))) for i in range(photos)]
    return svc.submit(compound, values, uploads, device, "127.0.0.1", now or utcnow(),
                      _limits(app, device_limit), form=hazard_form())


def _leader_less_volunteer(w):
    u = User(username="vol_plain", display_name="vol_plain", role="volunteer",
             community_id=db.session.get(User, w.vol_a).community_id, title="志愿者")
    db.session.add(u)
    db.session.commit()
    return u.id


# --- submit ------------------------------------------------------------------------------

def test_submit_puts_a_report_in_the_queue_and_nowhere_else(db_app):
    with db_app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        outbox_before = db.session.execute(db.select(db.func.count()).select_from(Delivery)).scalar()
        out = _submit(db_app, a1)
        assert out.created and out.token and not out.errors
        report = out.report
        assert (report.status, report.category, report.phone, report.note) == \
            ("pending", "fire_exit", PHONE, "楼道堆满纸箱")
        assert report.receipt_hash != out.token and len(out.token) >= 32
        assert svc.find_by_token(out.token).id == report.id
        [photo] = report.photos
        assert photo.uploader_id is None and photo.item_id is None
        # Nothing reached a company or a receiver: no item, no notification.
        assert db.session.execute(db.select(db.func.count()).select_from(Item)).scalar() == 0
        assert db.session.execute(
            db.select(db.func.count()).select_from(Delivery)).scalar() == outbox_before


def test_submit_validates_with_the_form(app, world):
    with app.app_context():
        a1 = db.session.get(Compound, world.a1)
        assert _submit(app, a1, category="ufo").errors == {"category": "bad_choice"}
        assert _submit(app, a1, note="长" * 201).errors == {"note": "too_long"}
        assert _submit(app, a1, phone="call me").errors == {"phone": "bad_phone"}
        assert _submit(app, a1, phone="1" * 21).errors == {"phone": "too_long"}
        assert _submit(app, a1, photos=0).errors == {"photos": "required_photo"}
        assert _submit(app, a1, photos=5).errors == {"photos": "too_many_photos"}
        out = svc.submit(a1, {"category": "fire_exit"}, [svc.Upload("x.jpg", b"not a photo")],
                         "device-one-0123456789", None, utcnow(), _limits(app), form=hazard_form())
        assert out.photo_errors and out.report is None
        assert _submit(app, a1, phone="").report.phone is None
        assert db.session.execute(db.select(db.func.count()).select_from(ResidentReport)).scalar() == 1


def test_a_resend_of_the_same_form_is_the_same_report_with_the_same_receipt(db_app):
    with db_app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        key = "0b7f7c1e-8a37-4c0e-9d4c-2b1d6f9c7a11"
        first = _submit(db_app, a1, client_uuid=key)
        again = _submit(db_app, a1, client_uuid=key)
        assert again.duplicate and again.report.id == first.report.id and again.token == first.token
        assert _submit(db_app, a1, client_uuid=key, note="别的").conflict
        assert _submit(db_app, a1, client_uuid=key, device="another-device-98765").conflict
        assert db.session.execute(db.select(db.func.count()).select_from(ResidentReport)).scalar() == 1


def test_repeats_from_one_device_collapse_into_its_last_report(app, world):
    with app.app_context():
        a1, a2 = db.session.get(Compound, world.a1), db.session.get(Compound, world.a2)
        now = utcnow()
        outs = [_submit(app, a1, note=f"第{i}次", now=now + timedelta(minutes=i), device_limit=3)
                for i in range(6)]
        assert [o.created for o in outs] == [True] * 3 + [False] * 3
        assert all(o.collapsed and o.report.id == outs[2].report.id for o in outs[3:])
        db.session.expire_all()
        assert db.session.get(ResidentReport, outs[2].report.id).repeats == 3
        # No photo of a collapsed send is kept.
        assert db.session.execute(db.select(db.func.count()).select_from(Photo)).scalar() == 3
        # Another compound, another device, or the next day: new reports again.
        assert _submit(app, a2, device_limit=3, now=now).created
        assert _submit(app, a1, device="another-device-98765", device_limit=3, now=now).created
        assert _submit(app, a1, device_limit=3, now=now + timedelta(days=1, minutes=1)).created


# --- triage ------------------------------------------------------------------------------

def test_accept_makes_an_item_routed_as_usual(db_app):
    with db_app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        report = _submit(db_app, a1).report
        staff = _u(w.staff_a)
        item = svc.accept(report, staff, utcnow(), hazard_form())
        db.session.commit()
        assert (item.source, item.company_id, item.reporter_id, item.category, item.note) == \
            ("resident", w.x, w.staff_a, "fire_exit", "楼道堆满纸箱")
        assert [p.kind for p in item.photos] == ["before"]
        assert (report.status, report.item_id, report.handled_by_id) == ("accepted", item.id, staff.id)
        assert PHONE not in repr(vars(item))   # the phone stays with the report
        with pytest.raises(TransitionError) as err:
            svc.accept(report, staff, utcnow(), hazard_form())
        assert err.value.code == "bad_state"


def test_support_adds_the_report_to_an_open_item(db_app):
    with db_app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        first = svc.accept(_submit(db_app, a1).report, _u(w.staff_a), utcnow(), hazard_form())
        db.session.commit()
        report = _submit(db_app, a1, device="another-device-98765", note="又堆了").report
        leader = _u(w.vol_a)                      # 片长: a volunteer leader
        assert [i.id for i in svc.open_items_like(report)] == [first.id]
        ev = svc.support(report, first, leader, utcnow(), form=hazard_form(), window=WINDOW)
        db.session.commit()
        assert (ev.action, ev.data["resident_report"], first.support_count) == \
            ("support", report.id, 1)
        assert (report.status, report.item_id) == ("supported", first.id)
        assert len(first.photos) == 2
        # An item of another compound is refused.
        other = _submit(db_app, a1, device="third-device-000000000").report
        b_item = Item(compound_id=w.a2, community_id=w.ca, company_id=w.y, category="other",
                      form_id="hazard", form_version=1, reporter_id=w.vol_a)
        db.session.add(b_item)
        db.session.flush()
        with pytest.raises(TransitionError):
            svc.support(other, b_item, leader, utcnow(), form=hazard_form(), window=WINDOW)


def test_decline_takes_a_coded_reason(app, world):
    with app.app_context():
        report = _submit(app, db.session.get(Compound, world.a1)).report
        with pytest.raises(TransitionError):
            svc.decline(report, _u(world.staff_a), "because", utcnow())
        svc.decline(report, _u(world.staff_a), "private_matter", utcnow())
        db.session.commit()
        assert (report.status, report.decline_reason) == ("declined", "private_matter")


# --- rating --------------------------------------------------------------------------------

def _close(item, w, now):
    """Acknowledge, fix, scan, verify."""
    mgr, vol = _u(w.mgr_x), _u(w.vol_a)

    def act(action, user, at, **given):
        item_service.act(item, action, user, at, item_service.ActionInput(**given),
                         form=hazard_form(), window=WINDOW)
        db.session.commit()
    act(Action.ACKNOWLEDGE, mgr, now + timedelta(hours=1))
    act(Action.FIX, mgr, now + timedelta(hours=2), note="已清理",
        photos=[save_upload(jpeg_bytes(color=(1, 2, 3)), uploader=mgr, kind="after")])
    item_service.record_presence(vol, item.compound, now + timedelta(hours=3))
    act(Action.VERIFY, vol, now + timedelta(hours=3),
        photos=[save_upload(jpeg_bytes(color=(3, 2, 1)), uploader=vol, kind="after")])


def test_rating_only_once_the_item_is_closed_and_only_once(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        report = _submit(db_app, db.session.get(Compound, w.a1), now=now).report
        with pytest.raises(TransitionError):
            svc.rate(report, 5, now)                       # still in triage
        item = svc.accept(report, _u(w.staff_a), now, hazard_form())
        db.session.commit()
        with pytest.raises(TransitionError):
            svc.rate(report, 5, now)                       # open
        _close(item, w, now)
        assert svc.can_rate(report)
        with pytest.raises(TransitionError):
            svc.rate(report, 6, now)
        svc.rate(report, 4, now + timedelta(hours=4))
        db.session.commit()
        with pytest.raises(TransitionError) as err:
            svc.rate(report, 1, now + timedelta(hours=5))
        assert err.value.code == "already_rated" and report.rating == 4
        declined = _submit(db_app, db.session.get(Compound, w.a1), device="d2-000000000000000").report
        svc.decline(declined, _u(w.staff_a), "no_detail", now)
        with pytest.raises(TransitionError):
            svc.rate(declined, 3, now)


# --- the pages -----------------------------------------------------------------------------

def _token(app, compound_id):
    with app.app_context():
        return db.session.get(Compound, compound_id).qr_token


def _post_report(client, token, **over):
    data = {"category": "fire_exit", "note": "楼道堆满纸箱", "phone": PHONE,
            "photos": (io.BytesIO(jpeg_bytes()), "photo.jpg"), **over}
    return client.post(f"/c/{token}/report", data=data, content_type="multipart/form-data")


def test_a_signed_out_scan_shows_the_residents_page(app, world):
    client = app.test_client()
    token = _token(app, world.a1)
    page = client.get(f"/c/{token}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "反映问题" in html and f"/c/{token}/report" in html
    assert f"/login?next=/c/{token}" in html
    assert "patrol_device=" in page.headers.get("Set-Cookie", "")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/c/no-such-token").status_code == 404
    with app.app_context():
        from patrol.models import Presence
        assert db.session.execute(db.select(db.func.count()).select_from(Presence)).scalar() == 0


def test_the_receipt_shows_its_own_report_and_no_personal_data(app, world):
    token = _token(app, world.a1)
    resident = app.test_client()
    assert resident.get(f"/c/{token}/report").status_code == 200
    resp = _post_report(resident, token)
    assert resp.status_code == 302 and "/r/" in resp.headers["Location"]
    receipt_url = resp.headers["Location"]
    other = _post_report(app.test_client(), token, note="另一个人的问题", phone="139 0000 0000")
    other_url = other.headers["Location"]
    assert other_url != receipt_url
    staff = sign_in(app.test_client(), world.staff_a)
    staff.post("/triage/1/accept")
    page = app.test_client().get(receipt_url).get_data(as_text=True)   # anyone with the link
    assert "已受理" in page or "Accepted" in page
    for secret in (PHONE, "139 0000 0000", "另一个人的问题", "staff_a", "vol_a", "mgr_x"):
        assert secret not in page
    assert 'data:image/svg+xml;base64,' in page and receipt_url.split("?")[0] in page
    assert app.test_client().get("/r/not-a-token").status_code == 404
    assert app.test_client().get(receipt_url.split("?")[0] + "x").status_code == 404


def test_rating_through_the_receipt_after_closing(app, world):
    token = _token(app, world.a1)
    receipt_url = _post_report(app.test_client(), token).headers["Location"].split("?")[0]
    client = app.test_client()
    assert client.post(receipt_url, data={"stars": "5"}).status_code == 302
    with app.app_context():
        report = db.session.execute(db.select(ResidentReport)).scalar_one()
        assert report.rating is None
        item = svc.accept(report, _u(world.staff_a), utcnow(), hazard_form())
        db.session.commit()
        _close(item, world, utcnow())
    assert 'id="receipt-rate"' in client.get(receipt_url).get_data(as_text=True)
    client.post(receipt_url, data={"stars": "4"})
    client.post(receipt_url, data={"stars": "1"})
    with app.app_context():
        assert db.session.execute(db.select(ResidentReport.rating)).scalar_one() == 4
    page = client.get(receipt_url).get_data(as_text=True)
    assert 'id="receipt-rated"' in page and 'id="receipt-rate"' not in page


def test_the_form_shows_errors_in_chinese_and_keeps_what_was_typed(app, world):
    token = _token(app, world.a1)
    resp = _post_report(app.test_client(), token, phone="call me", note="我写的说明")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "我写的说明" in html and 'id="f-phone"' in html


def test_the_triage_pages_accept_support_decline(app, world):
    token = _token(app, world.a1)
    for i in range(3):
        _post_report(app.test_client(), token, note=f"问题{i}")
    staff = sign_in(app.test_client(), world.staff_a)
    queue = staff.get("/triage").get_data(as_text=True)
    assert all(f"问题{i}" in queue for i in range(3))
    assert queue.index("问题0") < queue.index("问题1")           # oldest first
    assert PHONE not in queue
    detail = staff.get("/triage/1").get_data(as_text=True)
    assert PHONE in detail                                      # staff in scope only
    assert staff.post("/triage/1/accept").status_code == 302
    with app.app_context():
        item_id = db.session.execute(db.select(Item.id)).scalar_one()
    assert f'id="support-{item_id}"' in staff.get("/triage/2").get_data(as_text=True)
    assert staff.post("/triage/2/support", data={"item_id": item_id}).status_code == 302
    assert staff.post("/triage/3/decline", data={"reason": "abusive"}).status_code == 302
    with app.app_context():
        statuses = dict(db.session.execute(db.select(ResidentReport.id, ResidentReport.status)).all())
        assert statuses == {1: "accepted", 2: "supported", 3: "declined"}
        assert db.session.get(Item, item_id).support_count == 1
        assert db.session.get(ResidentReport, 3).decline_reason == "abusive"
    assert "triage-empty" in staff.get("/triage").get_data(as_text=True)


def test_who_may_triage_and_see_the_residents_photos(app, world):
    token = _token(app, world.a1)
    _post_report(app.test_client(), token)
    with app.app_context():
        plain = _leader_less_volunteer(world)
        photo_id = db.session.execute(db.select(Photo.id)).scalar_one()
        from patrol.models import Street, Community
        street = Street(name="街道S")
        db.session.add(street)
        db.session.flush()
        db.session.get(Community, world.ca).street_id = street.id
        street_staff = User(username="street", display_name="street", role="street_staff",
                            street_id=street.id)
        db.session.add(street_staff)
        db.session.commit()
        street_staff_id = street_staff.id
    photo = f"/photos/{photo_id}/thumb.jpg"
    for user in (world.staff_a, world.vol_a, world.admin, street_staff_id):
        client = sign_in(app.test_client(), user)
        assert client.get("/triage").status_code == 200, user
        assert client.get("/triage/1").status_code == 200, user
        assert client.get(photo).status_code == 200, user
    # A volunteer who is not a leader, a manager, a committee member: refused the queue.
    for user in (plain, world.mgr_x, world.com_a1):
        client = sign_in(app.test_client(), user)
        assert client.get("/triage").status_code == 403, user
        assert client.get("/triage/1").status_code == 403, user
        assert client.post("/triage/1/accept").status_code == 403, user
        assert client.get(photo).status_code == 404, user
    # Another community's staff (and its volunteer): not theirs.
    for user in (world.staff_b, world.vol_b):
        client = sign_in(app.test_client(), user)
        assert client.get("/triage/1").status_code in (403, 404), user
        assert client.post("/triage/1/decline", data={"reason": "abusive"}).status_code in (403, 404)
        assert client.get(photo).status_code == 404, user
    staff_b = sign_in(app.test_client(), world.staff_b)
    assert 'id="report-1"' not in staff_b.get("/triage").get_data(as_text=True)
    # Signed out: the photo, the queue are not there.
    anon = app.test_client()
    assert anon.get(photo).status_code in (302, 401)
    assert anon.get("/triage").status_code in (302, 401)
    with app.app_context():
        assert db.session.get(ResidentReport, 1).status == "pending"


def test_the_overview_links_to_the_queue_with_a_count(app, world):
    token = _token(app, world.a1)
    _post_report(app.test_client(), token)
    _post_report(app.test_client(), token)
    page = sign_in(app.test_client(), world.staff_a).get("/overview").get_data(as_text=True)
    link = re.search(r'id="triage-link"[^>]*>([^<]*)<', page)
    assert link and "2" in link.group(1)


def test_csrf_is_needed_for_a_resident_report(tmp_path):
    from tests.conftest import make_app
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
        token = db.session.get(Compound, w.a1).qr_token
    client = app.test_client()
    assert _post_report(client, token).status_code == 400
    page = client.get(f"/c/{token}/report").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert _post_report(client, token, csrf_token=csrf).status_code == 302
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(ItemEvent)).scalar() == 0


# --- 业主满意度 and the committee's rating on the scorecard ----------------------------------

def _this_month(app):
    from patrol.services import ratings
    with app.app_context():
        return ratings.default_period(utcnow(), "month").shift(1)


def test_residents_and_committee_ratings_reach_the_scorecard(tmp_path):
    from datetime import date

    from patrol.models import CommitteeRating
    from patrol.services import ratings
    from tests.conftest import make_app
    app = make_app(tmp_path, RATING_MIN_ITEMS=2)
    with app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        now = utcnow() - timedelta(hours=6)     # all done by the time the page is read
        for i, stars in enumerate((5, 2)):
            report = _submit(app, a1, device=f"device-{i}-0123456789", now=now).report
            item = svc.accept(report, _u(w.staff_a), now, hazard_form())
            db.session.commit()
            _close(item, w, now)
            svc.rate(report, stars, now + timedelta(hours=4))
            db.session.commit()
        period = _this_month(app)
        month = date(period.year, period.n, 1)
        db.session.add(CommitteeRating(compound_id=w.a1, company_id=w.x, user_id=w.com_a1,
                                       month=month, stars=4))
        db.session.commit()
        later = now + timedelta(hours=5)
        r = ratings.rate_period(period, community_id=w.ca, now=later)
        assert r.residents_of(w.x) == __import__("patrol").scoring.Opinion(2, 3.5, True)
        assert r.committee_of(w.x).n == 1 and not r.committee_of(w.x).sufficient
        assert r.residents_of(w.y).n == 0
        # The volunteers' satisfaction is their own: no volunteer rated these items.
        assert r.of(w.x).satisfaction is None
        # Another community's list does not see them.
        assert ratings.rate_period(period, community_id=w.cb, now=later).residents_of(w.x).n == 0
    page = sign_in(app.test_client(), w.staff_a).get(
        f"/ratings/companies/{w.x}?period={period.code}").get_data(as_text=True)
    resident = re.search(r'id="resident-satisfaction">(.*?)</div>', page, re.S).group(1)
    committee = re.search(r'id="committee-rating">(.*?)</div>', page, re.S).group(1)
    assert "3.50" in resident and "业主满意度" in resident
    assert "样本不足" in committee and "1" in committee
    with app.app_context():
        db.engine.dispose()


def test_a_volunteer_leaders_compounds_page_links_to_the_queue(app, world):
    _post_report(app.test_client(), _token(app, world.a1))
    page = sign_in(app.test_client(), world.vol_a).get("/compounds").get_data(as_text=True)
    assert re.search(r'id="triage-link"[^>]*>[^<]*\(1\)', page)
    with app.app_context():
        plain = _leader_less_volunteer(world)
    page = sign_in(app.test_client(), plain).get("/compounds").get_data(as_text=True)
    assert 'id="triage-link"' not in page
