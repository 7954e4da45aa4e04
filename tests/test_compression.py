"""Pages, scripts and styles leave compressed (Flask-Compress): brotli where the phone
accepts it, else gzip; the bytes actually sent are measured here, not estimated. Photos,
PDFs and spreadsheets (compressed formats) are sent as they are."""
from __future__ import annotations

import gzip
import io
import re
from datetime import timedelta

import brotli
import pytest
import time_machine

from patrol.clock import utcnow
from tests.conftest import make_app, sign_in
from tests.factories import build_world, jpeg_bytes
from tests.test_page_weight import bench

PHONE = "gzip, deflate, br"          # what Chromium and WeChat's browser send


def sent(response) -> bytes:
    """The body exactly as it went on the wire (streamed ones read to the end)."""
    body = b"".join(response.response) if response.is_streamed else response.get_data()
    response.close()
    return body


def decoded(response, body: bytes) -> bytes:
    encoding = response.headers.get("Content-Encoding")
    if encoding == "br":
        return brotli.decompress(body)
    if encoding == "gzip":
        return gzip.decompress(body)
    assert encoding is None
    return body


@pytest.fixture
def phone(app, world):
    return sign_in(app.test_client(), world.vol_a)


def test_the_report_page_first_load_is_sent_compressed(phone, world):
    url = f"/compounds/{world.a1}/report"
    page = phone.get(url, headers={"Accept-Encoding": PHONE})
    assert page.headers["Content-Encoding"] == "br"
    assert "Accept-Encoding" in page.headers["Vary"]
    html = decoded(page, sent(page))
    on_wire, plain = len(page.get_data()), len(html)
    parser = bench._Assets()
    parser.feed(html.decode())
    assets = list(dict.fromkeys(parser.urls))
    assert any(a.endswith(".js") or ".js?" in a for a in assets)
    for asset in assets:
        response = phone.get(asset, headers={"Accept-Encoding": PHONE})
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == "br", asset
        body = sent(response)
        plain += len(decoded(response, body))
        on_wire += len(body)
    # What bench/lists.py estimated (each resource gzipped on its own) is now what is sent,
    # or less: brotli beats gzip on text.
    estimated = sum(bench.first_load_weight(phone, url).values())
    assert on_wire <= estimated <= bench.PAGE_WEIGHT_BUDGET
    assert on_wire * 3 < plain


def test_gzip_for_browsers_without_brotli_and_nothing_for_those_without_either(phone, world):
    url = f"/compounds/{world.a1}"
    plain = phone.get(url).get_data()
    with time_machine.travel(utcnow() + timedelta(seconds=2), tick=False):
        r = phone.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    # The same page, give or take its signed form token (it carries a timestamp, so two
    # requests a second apart differ in it) and the fresh idempotency key each form is
    # given: compare with those taken out.
    unsigned = re.compile(rb'(name="csrf_token" value="|name="csrf-token" content="'
                          rb'|name="client_uuid" value=")[^"]+')
    assert unsigned.sub(rb"\1", gzip.decompress(r.get_data())) == unsigned.sub(rb"\1", plain)
    script = phone.get("/static/js/app.js")
    assert "Content-Encoding" not in script.headers
    plain_js = sent(script)
    r = phone.get("/static/js/app.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(sent(r)) == plain_js


def test_a_returning_phone_revalidates_a_script_without_its_body(phone):
    first = phone.get("/static/js/app.js", headers={"Accept-Encoding": PHONE})
    etag = first.headers["ETag"]
    sent(first)
    again = phone.get("/static/js/app.js",
                      headers={"Accept-Encoding": PHONE, "If-None-Match": etag})
    assert again.status_code == 304 and sent(again) == b""


def test_compressed_formats_are_sent_as_they_are(app, world, phone):
    from patrol.extensions import db
    from patrol.models import User
    from patrol.services.photo_store import save_upload
    with app.app_context():
        photo = save_upload(jpeg_bytes((900, 700)), uploader=db.session.get(User, world.vol_a),
                            kind="before")
        db.session.commit()
        photo_id = photo.id
    r = phone.get(f"/photos/{photo_id}/full.jpg", headers={"Accept-Encoding": PHONE})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers
    staff = sign_in(app.test_client(), world.staff_a)
    r = staff.get("/exports/items.xlsx", headers={"Accept-Encoding": PHONE})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers
    # A streamed CSV ledger is text: compressed as it streams, and whole once decoded.
    r = staff.get("/exports/items.csv", headers={"Accept-Encoding": PHONE})
    assert r.headers["Content-Encoding"] == "br"
    assert decoded(r, sent(r)).decode("utf-8-sig").splitlines()[2].startswith("编号")


def test_off_when_a_proxy_compresses(tmp_path):
    app = make_app(tmp_path, COMPRESS_REGISTER=False)
    with app.app_context():
        world = build_world()
    phone = sign_in(app.test_client(), world.vol_a)
    r = phone.get(f"/compounds/{world.a1}", headers={"Accept-Encoding": PHONE})
    assert "Content-Encoding" not in r.headers
    assert io.BytesIO(r.get_data()).read(15).lower().startswith(b"<!doctype html")
