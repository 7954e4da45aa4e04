"""An archived compound (Compound.archived_at) is offered and accepted nowhere: pages kept
for offline use and their gate map, queued offline scans, the QR codes page, the weekly
list choices, the team compound pickers."""
from __future__ import annotations

import pytest

from patrol.extensions import db
from patrol.models import Compound, Team, utcnow
from patrol.web.offline import token_digest
from tests.conftest import sign_in
from tests.factories import build_world
from tests.test_outbox_errors import _app, _scan, check_shape


@pytest.fixture
def app(tmp_path):
    return _app(tmp_path)


@pytest.fixture
def w(app):
    """build_world() with 小区A1 archived (still in A队, as it was)."""
    with app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        a1.archived_at = utcnow()
        w.a1_token = a1.qr_token
        w.a2_token = db.session.get(Compound, w.a2).qr_token
        db.session.commit()
        return w


def test_archived_compound_is_not_kept_for_offline_use(app, w):
    phone = sign_in(app.test_client(), w.vol_a)
    body = phone.get("/sync/pages").get_json()
    assert f"/compounds/{w.a2}" in body["urls"] and f"/compounds/{w.a1}" not in body["urls"]
    assert f"/compounds/{w.a1}/report" not in body["urls"]
    assert token_digest(w.a2_token) in body["aliases"]
    assert token_digest(w.a1_token) not in body["aliases"]


def test_queued_scan_of_an_archived_compound_is_refused_in_the_outbox_shape(app, w):
    phone = sign_in(app.test_client(), w.vol_a)
    check_shape(_scan(phone, w.a1_token), 410, "compound_archived")
    assert _scan(phone, w.a2_token).status_code == 201


def test_archived_compound_is_not_offered_to_staff(app, w):
    staff = sign_in(app.test_client(), w.staff_a)
    qr = staff.get("/admin/compounds").get_data(as_text=True)
    assert "小区A2" in qr and "小区A1" not in qr
    weekly = staff.get("/reports/weekly").get_data(as_text=True)
    assert f"compound:{w.a2}" in weekly and f"compound:{w.a1}" not in weekly
    assert staff.get(f"/reports/weekly.pdf?scope=compound&id={w.a1}").status_code == 404
    people = staff.get("/people").get_data(as_text=True)
    assert f'name="compound_ids" value="{w.a2}"' in people
    assert f'name="compound_ids" value="{w.a1}"' not in people
    assert f'<option value="{w.a1}">小区A1' not in people
    team = staff.get(f"/people/teams/{w.team}").get_data(as_text=True)
    assert f'value="{w.a2}"' in team and f'value="{w.a1}"' not in team


def test_archived_compound_is_not_accepted_in_a_team(app, w):
    app.config["WTF_CSRF_ENABLED"] = False
    staff = sign_in(app.test_client(), w.staff_a)
    r = staff.post(f"/people/teams/{w.team}", data={"name": "A队", "compound_ids": [str(w.a1)]})
    assert r.status_code == 422
    r = staff.post("/people/teams", data={"name": "新队", "compound_ids": [str(w.a1)]})
    assert r.status_code == 422
    with app.app_context():
        assert db.session.scalar(db.select(Team).where(Team.name == "新队")) is None
    r = staff.post(f"/people/teams/{w.team}", data={"name": "A队", "compound_ids": [str(w.a2)]})
    assert r.status_code == 302
