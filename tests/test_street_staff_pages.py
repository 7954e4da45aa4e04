"""Street staff (街道工作人员) on the community staff's pages and actions: every community of
their street, nothing of another street (404, or 403 where docs/security.md says so)."""
from __future__ import annotations

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import Company, Compound, Item, Team, User, utcnow
from tests.conftest import sign_in
from tests.test_handover import _report
from tests.test_places_admin import _csrf_off, sw  # noqa: F401  (fixture)


@pytest.fixture
def app(db_app):
    """Every test here on SQLite and, when available, PostgreSQL."""
    return db_app


@pytest.fixture
def far(app, sw):
    """Another street's things: company Z at 小区C1 (社区C, 东风街道), a team and a
    volunteer there; an item in 小区B1 (社区B, 和平街道) and one in 小区C1."""
    with app.app_context():
        z = Company(name="物业Z")
        c1 = db.session.get(Compound, sw.c1)
        c1.company = z
        team = Team(name="C队", community_id=sw.cc, compounds=[c1])
        vol_c = User(username="vol_c", display_name="vol_c", role="volunteer",
                     community_id=sw.cc, team=team)
        db.session.add_all([z, team, vol_c])
        db.session.flush()
        now = utcnow()
        item_b = _report(sw, sw.b1, now, who=sw.vol_b)
        item_c = _report(sw, sw.c1, now, who=vol_c.id)
        db.session.commit()
        return dict(z=z.id, team_c=team.id, vol_c=vol_c.id, item_b=item_b.id, item_c=item_c.id)


def test_street_staff_reach_the_staff_pages_of_their_street(app, client, sw, far):
    sign_in(client, sw.street_1)
    assert client.get("/").headers["Location"].endswith("/overview")
    for url in ("/admin/volunteers", "/admin/compounds", "/overview", "/reports/weekly", "/ratings",
                "/escalations", "/notifications", "/district/", "/people", "/handover",
                f"/admin/volunteers/{sw.vol_b}", f"/ratings?community={sw.cb}",
                f"/ratings/companies/{sw.x}", f"/compounds/{sw.b1}/handover",
                f"/people/teams/{sw.team}", f"/people/volunteers/{sw.vol_b}"):
        assert client.get(url).status_code == 200, url
    volunteers = client.get("/admin/volunteers").get_data(as_text=True)
    assert "vol_b" in volunteers and "vol_a" in volunteers and "vol_c" not in volunteers
    qr = client.get("/admin/compounds").get_data(as_text=True)
    assert "小区B1" in qr and "小区C1" not in qr
    overview = client.get("/overview").get_data(as_text=True)
    assert "小区B1" in overview and "小区C1" not in overview
    weekly = client.get("/reports/weekly").get_data(as_text=True)
    assert "社区B" in weekly and "社区C" not in weekly
    ratings = client.get(f"/ratings?community={sw.cb}").get_data(as_text=True)
    assert "社区B" in ratings
    people = client.get("/people").get_data(as_text=True)
    assert "A队" in people and "C队" not in people
    handover = client.get("/handover").get_data(as_text=True)
    assert "小区B1" in handover and "小区C1" not in handover


def test_street_staff_are_refused_another_streets_community(app, client, sw, far):
    _csrf_off(app)
    sign_in(client, sw.street_1)
    assert client.get(f"/admin/volunteers/{far['vol_c']}").status_code == 404
    assert client.post(f"/admin/compounds/{sw.c1}/rotate").status_code == 404
    assert client.get(f"/reports/weekly.pdf?scope=community&id={sw.cc}").status_code == 404
    assert client.get(f"/ratings?community={sw.cc}").status_code == 404
    assert client.get(f"/ratings/companies/{far['z']}").status_code == 403
    assert client.get(f"/compounds/{sw.c1}/handover").status_code == 404
    assert client.get(f"/people/teams/{far['team_c']}").status_code == 404
    assert client.get(f"/people/volunteers/{far['vol_c']}").status_code == 404
    r = client.post("/notifications", data={"name": "东风群", "kind": "json",
                                            "target": "https://hooks.example.com/hook",
                                            "events": ["new_item"], "owner": f"community:{sw.cc}"})
    assert r.status_code == 422
    r = client.post(f"/items/{far['item_c']}/act", data={"action": "reject",
                                                         "reason": "not_a_hazard"})
    assert r.status_code == 403
    with app.app_context():
        assert db.session.get(Item, far["item_c"]).status == "reported"
    # community staff keep their own community: another one's ratings are refused too
    sign_in(client, sw.staff_a)
    assert client.get(f"/ratings?community={sw.cb}").status_code == 404


def test_street_staff_act_on_their_streets_items(app, client, sw, far):
    _csrf_off(app)
    sign_in(client, sw.street_1)
    with app.app_context():
        version = db.session.get(Item, far["item_b"]).version
    r = client.post(f"/items/{far['item_b']}/act", data={
        "action": Action.REJECT.value, "reason": "not_a_hazard", "version": version})
    assert r.status_code == 302, r.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Item, far["item_b"]).status == "rejected"
    assert client.post(f"/admin/compounds/{sw.b1}/rotate").status_code == 302
    r = client.post("/notifications", data={"name": "和平群", "kind": "json",
                                            "target": "https://hooks.example.com/hook",
                                            "events": ["new_item"], "owner": f"community:{sw.cb}"})
    assert r.status_code == 302, r.get_data(as_text=True)
    r = client.post("/people/teams", data={"name": "B队", "community_id": str(sw.cb)})
    assert r.status_code == 302, r.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(Team.community_id).where(Team.name == "B队")) == sw.cb
