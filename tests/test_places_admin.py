"""Places management (区域管理) and the street staff role: scope, audit, archiving."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from patrol.extensions import db
from patrol.models import AuditEntry, Community, Company, Compound, Item, Street, User
from patrol.services import places
from tests.conftest import sign_in
from tests.factories import _HASH, build_world


@pytest.fixture
def app(db_app):
    """Every test here on SQLite and, when available, PostgreSQL."""
    return db_app


def _streets():
    """build_world() plus two streets: 社区A and 社区B in 和平街道, a 社区C in 东风街道;
    street staff of each street."""
    w = build_world()
    s1, s2 = Street(name="和平街道"), Street(name="东风街道")
    db.session.add_all([s1, s2])
    db.session.flush()
    db.session.get(Community, w.ca).street_id = s1.id
    db.session.get(Community, w.cb).street_id = s1.id
    cc = Community(name="社区C", street_id=s2.id)
    c1 = Compound(name="小区C1", community=cc)
    db.session.add_all([cc, c1])
    users = {}
    for name, street in (("street_1", s1), ("street_2", s2)):
        users[name] = User(username=name, display_name=name, role="street_staff",
                           street_id=street.id, password_hash=_HASH)
        db.session.add(users[name])
    db.session.commit()
    return SimpleNamespace(**vars(w), s1=s1.id, s2=s2.id, cc=cc.id, c1=c1.id,
                           street_1=users["street_1"].id, street_2=users["street_2"].id)


@pytest.fixture
def sw(app):
    with app.app_context():
        return _streets()


def _csrf_off(app):
    app.config["WTF_CSRF_ENABLED"] = False


def test_staff_create_a_compound_with_buildings_and_a_company(app, client, sw):
    _csrf_off(app)
    sign_in(client, sw.staff_a)
    r = client.post("/places/companies/new", data={
        "name": "新安物业", "phone": "+86 138-0013-8000", "contact": "李经理",
        "credit_code": "91350100M000100Y43"})
    assert r.status_code == 302
    with app.app_context():
        company = db.session.scalar(db.select(Company).where(Company.name == "新安物业"))
        assert company.phone == "13800138000"
        company_id = company.id
    r = client.post(f"/places/communities/{sw.ca}/compounds/new", data={
        "name": "新安小区", "address": "和平路1号", "lat": "28.2", "lon": "112.9",
        "radius_m": "150", "company_id": str(company_id), "buildings": "1-12栋, 商铺"})
    assert r.status_code == 302, r.get_data(as_text=True)
    with app.app_context():
        compound = db.session.scalar(db.select(Compound).where(Compound.name == "新安小区"))
        assert compound.community_id == sw.ca and compound.company_id == company_id
        assert compound.radius_m == 150
        assert [b.name for b in compound.buildings][:3] == ["1栋", "2栋", "3栋"]
        assert len(compound.buildings) == 13
        actions = [a.action for a in db.session.scalars(
            db.select(AuditEntry).order_by(AuditEntry.id))]
        assert actions == ["company.create", "compound.create", "building.add"]
        entry = db.session.scalar(db.select(AuditEntry).where(
            AuditEntry.action == "compound.create"))
        assert (entry.actor_id, entry.street_id, entry.community_id) == \
            (sw.staff_a, sw.s1, sw.ca)
    # adding "3号楼" again adds nothing (3栋 is the same building)
    client.post(f"/places/compounds/{compound.id}/buildings", data={"buildings": "3号楼, 13栋"})
    with app.app_context():
        assert len(db.session.get(Compound, compound.id).buildings) == 14
    # A building number too large for the sort column sorts last (it was a 500).
    r = client.post(f"/places/compounds/{compound.id}/buildings",
                    data={"buildings": "99999999999999999999栋"})
    assert r.status_code == 302
    with app.app_context():
        names = [b.name for b in db.session.get(Compound, compound.id).buildings]
        assert names[-1] == "99999999999999999999栋" and len(names) == 15


def test_bad_input_is_refused_with_every_error_in_chinese(app, client, sw):
    _csrf_off(app)
    sign_in(client, sw.staff_a)
    r = client.post(f"/places/communities/{sw.ca}/compounds/new", data={
        "name": "小区A1", "lat": "91", "lon": "", "radius_m": "abc", "buildings": "12-1栋"})
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert "此名称在这里已被使用" in page and "纬度是" in page and "半径" in page
    r = client.post("/places/companies/new", data={"name": "某物业",
                                                   "credit_code": "91350100M000100Y44"})
    assert r.status_code == 422 and "统一社会信用代码无效" in r.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(AuditEntry).count() == 0


def test_scope_of_the_screens(app, client, sw):
    _csrf_off(app)
    sign_in(client, sw.staff_a)
    assert client.get(f"/places/compounds/{sw.b1}").status_code == 404
    assert client.get(f"/places/communities/{sw.cb}/compounds/new").status_code == 404
    assert client.post(f"/places/compounds/{sw.b1}/archive").status_code == 404
    assert client.post(f"/places/streets/{sw.s1}/communities", data={"name": "x"}).status_code == 403
    assert client.post("/places/streets", data={"name": "x"}).status_code == 403
    assert client.get("/audit/").status_code == 403
    for role_user in (sw.vol_a, sw.mgr_x, sw.com_a1):
        sign_in(client, role_user)
        assert client.get("/places/").status_code == 403


def test_archived_compounds_leave_lists_and_scans_but_keep_history(app, client, sw):
    _csrf_off(app)
    with app.app_context():
        token = db.session.get(Compound, sw.a1).qr_token
    sign_in(client, sw.staff_a)
    assert client.post(f"/places/compounds/{sw.a1}/archive").status_code == 302
    page = client.get("/places/").get_data(as_text=True)
    assert "已归档小区" in page
    sign_in(client, sw.vol_a)
    r = client.get(f"/c/{token}")
    assert r.status_code == 410 and "二维码已失效" in r.get_data(as_text=True)
    assert "小区A1" not in client.get("/compounds").get_data(as_text=True)
    assert client.get(f"/compounds/{sw.a1}").status_code == 200   # its history stays
    import io
    from tests.factories import jpeg_bytes
    r = client.post(f"/compounds/{sw.a1}/report", content_type="multipart/form-data",
                    data={"category": "other", "photos": (io.BytesIO(jpeg_bytes()), "x.jpg")})
    assert r.status_code == 422
    r = client.post(f"/compounds/{sw.a1}/report", headers={"X-Patrol-Sync": "1"},
                    content_type="multipart/form-data",
                    data={"category": "other", "photos": (io.BytesIO(jpeg_bytes()), "x.jpg")})
    assert r.status_code == 422 and "不再接收上报" in str(r.get_json())
    with app.app_context():
        entry = db.session.scalar(db.select(AuditEntry).where(
            AuditEntry.action == "compound.archive"))
        assert entry.object_id == sw.a1 and entry.before == {"archived_at": None}
        assert db.session.query(Item).count() == 0   # the scan recorded nothing


def test_audit_page_is_scoped_and_paginated(app, client, sw):
    _csrf_off(app)
    from patrol.services import audit
    from patrol.clock import utcnow
    with app.app_context():
        admin = db.session.get(User, sw.admin)
        for i in range(55):
            audit.record(admin, "compound.update", db.session.get(Compound, sw.a1),
                         {"name": f"n{i}"}, {"name": f"n{i + 1}"}, utcnow())
        audit.record(admin, "compound.update", db.session.get(Compound, sw.c1),
                     {"name": "C1"}, {"name": "东风小区"}, utcnow())
        db.session.commit()
    sign_in(client, sw.street_1)
    first = client.get("/audit/").get_data(as_text=True)
    assert "东风小区" not in first and "n55" in first and "较早" in first
    second = client.get("/audit/?page=2").get_data(as_text=True)
    assert "name: n0 →" in second and "name: n0 →" not in first
    sign_in(client, sw.street_2)
    page = client.get("/audit/").get_data(as_text=True)
    assert "东风小区" in page and "n55" not in page
    sign_in(client, sw.admin)
    assert "东风小区" in client.get("/audit/").get_data(as_text=True)


def test_audit_page_speaks_words_and_local_time(app, client, sw):
    """What a row is about in words and its times in local time, not table names and
    UTC ISO strings (a review at phone size found `invite #2` and `2026-12-05T06:28…`)."""
    from datetime import datetime
    from patrol.services import audit
    with app.app_context():
        admin = db.session.get(User, sw.admin)
        audit.record(admin, "compound.archive", db.session.get(Compound, sw.a1),
                     {"archived_at": None}, {"archived_at": datetime(2026, 12, 5, 6, 28, 4)},
                     datetime(2026, 12, 5, 6, 28, 4))
        db.session.commit()
    sign_in(client, sw.admin)
    page = client.get("/audit/").get_data(as_text=True)
    assert f"小区 编号{sw.a1}" in page and "compound #" not in page
    assert "archived_at: 2026-12-05 14:28" in page and "T06:28" not in page
    assert "archived_at: —" in page and "null" not in page


def test_building_ranges_and_credit_codes():
    assert places.parse_buildings("1-3栋、5号楼 商铺") == ["1栋", "2栋", "3栋", "5号楼", "商铺"]
    assert places.parse_buildings("1～2幢") == ["1幢", "2幢"]
    for bad in ("5-1栋", "1-900栋", " "):
        with pytest.raises(places.PlacesInvalid):
            places.parse_buildings(bad)
    assert places.credit_code_valid("91350100M000100Y43")
    assert not places.credit_code_valid("91350100M000100Y44")
    assert not places.credit_code_valid("91350100M000100Y4")
    assert not places.credit_code_valid("91350100M000100I43")
