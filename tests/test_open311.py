"""Open311 GeoReport v2 (/open311/v2/), driven over HTTP on loopback by a third-party
client library from PyPI (`georeport`), plus the spec's shapes and errors.

georeport reads (services, a definition, requests by id and by status and date); it has
no call for posting or for tokens, so those two go through `requests`, its own HTTP
library, with the spec's form fields.
"""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import requests
from georeport import GeoReport
from werkzeug.serving import make_server

from patrol import open311
from patrol.clock import utcnow
from patrol.display import hazard_form
from patrol.extensions import db
from patrol.models import ApiToken, Compound, Item, ResidentReport, User
from patrol.services import residents
from tests.factories import build_world

# 小区A1 at a point in the city; a request 2 km away matches nothing.
A1 = (31.2304, 121.4737)
FAR = (31.2484, 121.4737)


@pytest.fixture
def served(app):
    with app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        a1.lat, a1.lon, a1.radius_m = *A1, 150
        now = utcnow()
        trusted, trusted_key = ApiToken.new(db.session.get(User, w.staff_a), "网格平台", "act",
                                            None, now)
        other, other_key = ApiToken.new(db.session.get(User, w.mgr_y), "12345", "read", None, now)
        db.session.add_all([trusted, other])
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_port}/open311/v2"
    try:
        yield app, w, root, trusted_key, other_key
    finally:
        server.shutdown()


def post(root, fmt="json", **fields):
    return requests.post(f"{root}/requests.{fmt}", data=fields, timeout=10)


def test_the_whole_exchange_with_a_third_party_client(served):
    app, w, root, trusted_key, other_key = served
    client = GeoReport(root, api_key=trusted_key)
    services = client.get_service_list()
    with app.app_context():
        codes = [c["code"] for c in hazard_form().categories]
    assert [s["service_code"] for s in services] == codes
    assert all(s["metadata"] is True and s["type"] == "batch" for s in services)
    definition = client.get_service_definition("flyers")
    assert {a["code"] for a in definition["attributes"]} == {"building", "unit", "floor"}

    # A trusted system's request becomes an item at once.
    r = post(root, api_key=trusted_key, service_code="flyers", lat=A1[0] + 0.0003,
             long=A1[1], description="3号楼门口小广告", **{"attribute[building]": "1栋"})
    assert r.status_code == 201, r.text
    request_id = r.json()[0]["service_request_id"]
    one = client.get_service_request(request_id)
    assert one["status"] == "open" and one["service_code"] == "flyers"
    assert one["address"] == "小区A1" and one["agency_responsible"] == "物业X"

    # Anyone else's goes to triage, answered with a token; the token gives the id once
    # staff accept it.
    r = post(root, api_key=other_key, service_code="fire_exit", lat=A1[0], long=A1[1],
             description="楼道堆物", phone="13800001111")
    assert r.status_code == 201 and "service_request_id" not in r.json()[0]
    token = r.json()[0]["token"]
    pending = requests.get(f"{root}/tokens/{token}.json", timeout=10).json()
    assert pending == [{"token": token}]
    with app.app_context():
        report = residents.find_by_token(token)
        assert report.status == "pending" and report.phone == "13800001111"
        item = residents.accept(report, db.session.get(User, w.staff_a), utcnow(), hazard_form())
        db.session.commit()
        accepted_id = str(item.id)
    assert requests.get(f"{root}/tokens/{token}.json", timeout=10).json()[0][
        "service_request_id"] == accepted_id

    # Lists by status and date (the spec's W3C dates), in JSON and XML.
    now = utcnow()
    start = open311.w3c(now - timedelta(days=1))
    end = open311.w3c(now + timedelta(hours=1))
    listed = client.get_service_requests(status="open", start_date=start, end_date=end)
    assert {r["service_request_id"] for r in listed} == {request_id, accepted_id}
    assert client.get_service_requests(status="closed", start_date=start, end_date=end) == []
    xml_client = GeoReport(root, output_format="xml")
    assert {r["service_request_id"] for r in xml_client.get_service_requests(
        status="open", start_date=start, end_date=end)} == {request_id, accepted_id}
    assert xml_client.get_service_list()[0]["service_code"] == codes[0]


def test_public_reads_show_no_free_text(served):
    app, w, root, trusted_key, _ = served
    r = post(root, api_key=trusted_key, service_code="flyers", lat=A1[0], long=A1[1],
             description="王先生 13900000000 家门口")
    request_id = r.json()[0]["service_request_id"]
    public = requests.get(f"{root}/requests/{request_id}.json", timeout=10).json()[0]
    assert "13900000000" not in str(public) and public["description"] == "小广告"
    full = requests.get(f"{root}/requests/{request_id}.json", params={"api_key": trusted_key},
                        timeout=10).json()[0]
    assert "13900000000" in full["description"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_errors_follow_the_spec(served, fmt):
    app, w, root, trusted_key, other_key = served
    cases = [
        (post(root, fmt, service_code="flyers", lat=A1[0], long=A1[1]), 403),        # no key
        (post(root, fmt, api_key="pt_nope", service_code="flyers", lat=A1[0], long=A1[1]), 403),
        (post(root, fmt, api_key=trusted_key, service_code="teleport", lat=A1[0], long=A1[1]), 404),
        (post(root, fmt, api_key=trusted_key, service_code="flyers", lat=FAR[0], long=FAR[1]), 400),
        (post(root, fmt, api_key=trusted_key, service_code="flyers", lat="north", long="1"), 400),
        (post(root, fmt, api_key=trusted_key, service_code="flyers", lat="1e999", long="1"), 400),
        (post(root, fmt, api_key=trusted_key), 400),
        (requests.post(f"{root}/requests.{fmt}", data="x" * 100_000, timeout=10,
                       headers={"Content-Type": "application/x-www-form-urlencoded"}), 413),
        (requests.get(f"{root}/requests.{fmt}", params={"status": "lost"}, timeout=10), 400),
        (requests.get(f"{root}/requests.{fmt}", params={"start_date": "yesterday"}, timeout=10), 400),
        (requests.get(f"{root}/requests.{fmt}", params={
            "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"}, timeout=10), 400),
        (requests.get(f"{root}/requests.{fmt}", params={"service_request_id": "1,x"}, timeout=10), 400),
        (requests.get(f"{root}/requests/999999.{fmt}", timeout=10), 404),
        (requests.get(f"{root}/requests/99999999999999999999.{fmt}", timeout=10), 404),
        (requests.get(f"{root}/services/teleport.{fmt}", timeout=10), 404),
        (requests.get(f"{root}/tokens/nope.{fmt}", timeout=10), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text[:200])
        if fmt == "json" and response.headers["Content-Type"].startswith("application/json"):
            body = response.json()
            assert isinstance(body, list) and set(body[0]) == {"code", "description"}
        elif fmt == "xml" and "xml" in response.headers["Content-Type"]:
            root_el = ET.fromstring(response.content)
            assert root_el.tag == "errors" and root_el.find("error/code") is not None
        else:
            # Werkzeug's own 404/413 before the view runs: still never a 500.
            assert response.status_code < 500
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Item)) == 0
        assert db.session.scalar(db.select(db.func.count()).select_from(ResidentReport)) == 0


def test_discovery(served):
    _, _, root, _, _ = served
    data = requests.get(f"{root}/discovery.json", timeout=10).json()
    assert data["endpoints"][0]["specification"] == open311.SPEC_URL
    assert ET.fromstring(requests.get(f"{root}/discovery.xml", timeout=10).content).tag == "discovery"


def test_nearest_compound_and_windows():
    class P:
        def __init__(self, lat, lon, radius_m):
            self.lat, self.lon, self.radius_m = lat, lon, radius_m
    near, far = P(*A1, 150), P(FAR[0], FAR[1], 150)
    assert open311.nearest(A1[0] + 0.001, A1[1], [near, far])[0] is near      # ~111 m
    assert open311.nearest(A1[0] + 0.002, A1[1], [near, far])[0] is None      # ~222 m
    assert 1990 < open311.distance_m(*A1, *FAR) < 2010
    assert open311.open_or_closed("answered") == "closed"
    assert open311.open_or_closed("fixed") == "open"


def test_xml_leaves_out_what_xml_cannot_hold():
    """A note with control characters (accepted through the API) made the whole request
    list unreadable XML; they are left out, tab and line breaks kept."""
    data = [{"service_request_id": 1, "description": "控制符\x0b\x1b[31m红\x07字\t尾\n末\ufffe"}]
    root = ET.fromstring(open311.to_xml("service_requests", "request", data))
    assert root.find("request/description").text == "控制符[31m红字\t尾\n末"
