"""The first path open to anyone (issue 12): a flood of residents' reports from one
address and one phone must not flood the triage queue, must not lock out the real
residents behind the same Wi-Fi, and must never answer with a 5xx.

How it is bounded (web/residents.py, services/residents.py):
  * per device (the HttpOnly cookie; without one, per address): DEVICE_RATE_LIMIT sends
    a minute, every send counts; a flood from one phone is refused early (429);
  * per device and compound: RESIDENT_DEVICE_LIMIT new reports a day; later sends only
    count as repeats of the last one (no row, no photo kept);
  * per address: RESIDENT_RATE_LIMIT new queue rows (generous: a compound's shared
    Wi-Fi), counting only sends that added a row, so one phone's repeats cost its
    neighbours nothing.
"""
from __future__ import annotations

import io

import pytest

from patrol.extensions import db
from patrol.models import Compound, Photo, ResidentReport
from tests.conftest import make_app
from tests.factories import build_world, jpeg_bytes

ADDRESS = "127.0.0.9"
PHOTO = jpeg_bytes(size=(64, 48))


@pytest.fixture
def limited(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True)
    with app.app_context():
        world = build_world()
        token = db.session.get(Compound, world.a1).qr_token
    yield app, token
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _client(app, address=ADDRESS):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _send(client, token, note="楼道堆物"):
    return client.post(f"/c/{token}/report", content_type="multipart/form-data", data={
        "category": "fire_exit", "note": note, "photos": (io.BytesIO(PHOTO), "p.jpg")}).status_code


def _rows(app):
    with app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(ResidentReport)).scalar()


def test_a_thousand_reports_from_one_phone_do_not_flood_the_queue(limited):
    app, token = limited
    flooder = _client(app)
    assert flooder.get(f"/c/{token}").status_code == 200          # gets its device cookie
    codes = [_send(flooder, token, note=f"刷屏{i}") for i in range(1000)]
    assert not [c for c in codes if c >= 500]
    assert set(codes) <= {200, 302, 429}
    assert codes.count(429) >= 900                                  # refused early
    limit = app.config["RESIDENT_DEVICE_LIMIT"]
    assert _rows(app) <= limit
    with app.app_context():
        repeats = db.session.execute(db.select(db.func.sum(ResidentReport.repeats))).scalar()
        assert _rows(app) + repeats == codes.count(200) + codes.count(302)
        assert db.session.execute(db.select(db.func.count()).select_from(Photo)).scalar() <= limit
    # The 429 page is a friendly one, in Chinese.
    page = flooder.post(f"/c/{token}/report", data={"category": "fire_exit"})
    assert page.status_code == 429 and "请过几分钟再试" in page.get_data(as_text=True)

    # Real residents on their own phones, behind the same address, still get through.
    before = _rows(app)
    for i in range(20):
        neighbour = _client(app)
        assert neighbour.get(f"/c/{token}/report").status_code == 200
        assert _send(neighbour, token, note=f"邻居{i}") == 302
    assert _rows(app) == before + 20


def test_a_flood_that_drops_its_cookie_is_bounded_by_the_address(limited):
    app, token = limited
    codes = []
    for i in range(1000):
        codes.append(_send(_client(app), token, note=f"无cookie{i}"))   # a new phone each time
    assert not [c for c in codes if c >= 500]
    assert _rows(app) <= 60                                          # RESIDENT_RATE_LIMIT


def test_without_the_limiter_collapsing_alone_bounds_the_queue(tmp_path):
    app = make_app(tmp_path)                                         # RATELIMIT_ENABLED False
    with app.app_context():
        token = db.session.get(Compound, build_world().a1).qr_token
    flooder = _client(app)
    flooder.get(f"/c/{token}")
    codes = [_send(flooder, token, note=f"刷屏{i}") for i in range(1000)]
    assert not [c for c in codes if c >= 500]
    assert _rows(app) == app.config["RESIDENT_DEVICE_LIMIT"]
    with app.app_context():
        assert db.session.execute(db.select(db.func.max(ResidentReport.repeats))).scalar() == \
            1000 - app.config["RESIDENT_DEVICE_LIMIT"]
    with app.app_context():
        db.engine.dispose()
