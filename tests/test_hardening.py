"""Bad or hostile input from the outside: refused cleanly, never a 500, never a way round a rule."""
import io
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import Compound, Item, User, utcnow
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import make_app, sign_in
from tests.factories import PASSWORD, build_world, jpeg_bytes

BIG = "9" * 30


@pytest.fixture
def prod_app(tmp_path):
    """TESTING off, so an unhandled error is a 500 response, as in production."""
    return make_app(tmp_path, TESTING=False)


@pytest.fixture
def w(prod_app):
    with prod_app.app_context():
        return build_world()


def fixed_item(app, w, fixed_at):
    with app.app_context():
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        form, window = hazard_form(), timedelta(hours=2)
        item = svc.report(form=form, compound=db.session.get(Compound, w.a1), reporter=vol,
                          now=fixed_at - timedelta(hours=1), clean={"category": "flyers", "extra": {}},
                          photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
        svc.act(item, Action.ACKNOWLEDGE, mgr, fixed_at - timedelta(minutes=30), svc.ActionInput(),
                form=form, window=window)
        svc.act(item, Action.FIX, mgr, fixed_at, svc.ActionInput(
            note="ok", photos=[save_upload(jpeg_bytes(), uploader=mgr, kind="after")]),
            form=form, window=window)
        db.session.commit()
        return item.id, item.version


@pytest.mark.parametrize("url", [f"/items/{BIG}", f"/compounds/{BIG}", f"/photos/{BIG}/thumb.jpg",
                                 f"/overview?compound={BIG}",
                                 f"/reports/weekly.pdf?scope=compound&id={BIG}",
                                 "/reports/weekly.pdf?scope=compound&id=1&week=9999-W52"])
def test_out_of_range_numbers_and_dates_are_bad_requests(prod_app, w, url):
    assert sign_in(prod_app.test_client(), w.staff_a).get(url).status_code in (400, 404)


@pytest.mark.parametrize("url", [f"/overview?page={BIG}", "/overview?endpoint=x&_method=y",
                                 "/overview?since=0001-01-01",
                                 "/overview?status=open&page=2&_external=1"])
def test_query_strings_cannot_break_page_links(prod_app, w, url):
    assert sign_in(prod_app.test_client(), w.staff_a).get(url).status_code == 200


@pytest.mark.parametrize("target", ["/%09/evil.example", "/\t/evil.example", "//evil.example",
                                    "/\\evil.example", "https://evil.example/", "/%0a/x"])
def test_no_open_redirect_after_sign_in(prod_app, w, target):
    resp = prod_app.test_client().post(f"/login?next={target}",
                                       data={"username": "staff_a", "password": PASSWORD})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    assert resp.headers["Clear-Site-Data"] == '"cache"'


def test_same_site_next_still_works(prod_app, w):
    resp = prod_app.test_client().post("/login?next=/overview?status=open",
                                       data={"username": "staff_a", "password": PASSWORD})
    assert resp.headers["Location"] == "/overview?status=open"


def test_fix_on_the_spot_only_while_reporting(prod_app, w):
    client = sign_in(prod_app.test_client(), w.vol_b)
    with prod_app.app_context():
        token = db.session.get(Compound, w.b1).qr_token
    client.get(f"/c/{token}")
    staff = sign_in(prod_app.test_client(), w.staff_b)
    staff.post(f"/compounds/{w.b1}/report", content_type="multipart/form-data",
               data={"category": "other", "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    with prod_app.app_context():
        item_id = db.session.execute(db.select(Item.id)).scalar_one()
    resp = client.post(f"/items/{item_id}/act", content_type="multipart/form-data",
                       data={"action": "fix_on_spot",
                             "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")})
    assert resp.status_code == 400
    with prod_app.app_context():
        assert db.session.get(Item, item_id).status == "reported"


def test_the_phone_never_receives_gate_tokens(prod_app, w):
    body = sign_in(prod_app.test_client(), w.vol_a).get("/sync/pages").get_data(as_text=True)
    with prod_app.app_context():
        tokens = [c.qr_token for c in db.session.execute(db.select(Compound)).scalars()]
    assert "aliases" in body and not any(t in body for t in tokens)


def _verify(client, item_id, version, **extra):
    return client.post(f"/items/{item_id}/act", headers={"X-Patrol-Sync": "1"},
                       content_type="multipart/form-data",
                       data=dict({"action": "verify", "version": str(version),
                                  "photos": (io.BytesIO(jpeg_bytes()), "p.jpg")}, **extra))


def _iso(dt):
    return dt.isoformat(timespec="milliseconds") + "Z"


def test_a_claimed_time_cannot_reach_back_before_the_fix(prod_app, w):
    """One real scan does not let a phone verify, later and elsewhere, a fix made after it."""
    now = utcnow()
    client = sign_in(prod_app.test_client(), w.vol_a)
    with prod_app.app_context():
        svc.record_presence(db.session.get(User, w.vol_a), db.session.get(Compound, w.a1),
                            now - timedelta(hours=30))
        db.session.commit()
    item_id, version = fixed_item(prod_app, w, fixed_at=now - timedelta(hours=3))
    claimed = now - timedelta(hours=30) + timedelta(minutes=20)  # "just after the scan"
    resp = _verify(client, item_id, version, device_at=_iso(claimed), sent_at=_iso(now))
    assert resp.status_code == 422
    with prod_app.app_context():
        assert db.session.get(Item, item_id).status == "fixed"


@pytest.mark.parametrize("device_at", ["2000-01-01T00:00:00Z", "3000-01-01T00:00:00Z",
                                       "not a time", "0001-01-01T00:00+14:00"])
def test_implausible_phone_times_are_refused(prod_app, w, device_at):
    now = utcnow()
    client = sign_in(prod_app.test_client(), w.vol_a)
    with prod_app.app_context():
        token = db.session.get(Compound, w.a1).qr_token
    client.get(f"/c/{token}")
    item_id, version = fixed_item(prod_app, w, fixed_at=now - timedelta(minutes=10))
    resp = _verify(client, item_id, version, device_at=device_at)
    assert resp.status_code == 422 and resp.get_json()["error"]
    scan = client.post("/sync/presence", data={"token": token, "device_at": device_at})
    assert scan.status_code == 422


def test_a_phone_with_a_slow_clock_is_corrected(prod_app, w):
    """Scanned online (server time), checked at once on a phone 3 minutes slow."""
    now = utcnow()
    client = sign_in(prod_app.test_client(), w.vol_a)
    item_id, version = fixed_item(prod_app, w, fixed_at=now - timedelta(minutes=10))
    with prod_app.app_context():
        token = db.session.get(Compound, w.a1).qr_token
    client.get(f"/c/{token}")
    slow = utcnow() - timedelta(minutes=3)
    resp = _verify(client, item_id, version, device_at=_iso(slow), sent_at=_iso(slow))
    assert resp.status_code == 200, resp.get_json()
