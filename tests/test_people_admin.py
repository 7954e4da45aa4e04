"""Teams, volunteers and accounts (services/people_admin.py, /people): each act, its audit
row, and the scope rules (staff of another community refused, admins everywhere)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.models import AuditEntry, Compound, Device, Team, User, utcnow
from patrol.services import accounts
from patrol.services import people_admin as svc
from tests.conftest import sign_in
from tests.factories import PASSWORD, build_world


def _u(i):
    return db.session.get(User, i)


def _audit(action):
    return db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action)
                              .order_by(AuditEntry.id)).scalars().all()


# --- the service ----------------------------------------------------------------------

def test_teams(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        staff = _u(w.staff_a)
        team = svc.create_team(staff, name="B队", community_id=w.cb, compound_ids=[w.a1],
                               now=now)
        assert team.community_id == w.ca          # staff: always their own community
        assert [c.id for c in team.compounds] == [w.a1]
        svc.update_team(staff, team, name="巡查二队", compound_ids=[w.a1, w.a2], now=now)
        db.session.commit()
        assert sorted(c.id for c in db.session.get(Team, team.id).compounds) == [w.a1, w.a2]
        created, updated = _audit("team.create"), _audit("team.update")
        assert created[0].object_id == team.id and created[0].actor_id == w.staff_a
        assert updated[0].before["name"] == "B队" and updated[0].after["name"] == "巡查二队"
        assert updated[0].after["compounds"] == sorted([w.a1, w.a2])

        for kwargs, field, code in (
                (dict(name=""), "name", "name"),
                (dict(name="A队"), "name", "name_taken"),
                (dict(name="C队", compound_ids=[w.b1]), "compounds", "compounds")):
            with pytest.raises(svc.PeopleInvalid) as err:
                svc.create_team(staff, now=now, **kwargs)
            assert err.value.errors[field] == code
        # Staff of another community: refused; admins: any community.
        with pytest.raises(svc.Forbidden):
            svc.update_team(_u(w.staff_b), team, name="x", now=now)
        admin_team = svc.create_team(_u(w.admin), name="B队", community_id=w.cb,
                                     compound_ids=[w.b1], now=now)
        assert admin_team.community_id == w.cb
        with pytest.raises(svc.Forbidden):
            svc.create_team(_u(w.admin), name="无社区", now=now)
        db.session.commit()


def test_edit_and_move_a_volunteer(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        staff, vol = _u(w.staff_a), _u(w.vol_a)
        second = svc.create_team(staff, name="二队", now=now)
        svc.update_volunteer(staff, vol, display_name="刘阿姨", phone="１３８-0000 1111",
                             title="组长", team_id=second.id, now=now)
        db.session.commit()
        vol = _u(w.vol_a)
        assert (vol.display_name, vol.phone, vol.title, vol.team_id) == (
            "刘阿姨", "138-0000 1111", "组长", second.id)
        row = _audit("volunteer.update")[-1]
        assert row.before["team_id"] == w.team and row.after["team_id"] == second.id
        svc.move_volunteer(staff, vol, w.team, now=now)
        db.session.commit()
        assert _u(w.vol_a).team_id == w.team
        assert _audit("volunteer.move")[-1].after == {"team_id": w.team}

        with pytest.raises(svc.PeopleInvalid) as err:
            svc.update_volunteer(staff, vol, display_name="", phone="abc", title="队长",
                                 team_id=None, now=now)
        assert err.value.errors == {"display_name": "name", "phone": "phone", "title": "title"}
        other_team = svc.create_team(_u(w.staff_b), name="B队", now=now)
        with pytest.raises(svc.PeopleInvalid) as err:     # a team of another community
            svc.move_volunteer(staff, vol, other_team.id, now=now)
        assert err.value.errors == {"team_id": "team"}
        with pytest.raises(svc.Forbidden):
            svc.move_volunteer(_u(w.staff_b), vol, other_team.id, now=now)
        with pytest.raises(svc.Forbidden):
            svc.update_volunteer(_u(w.mgr_x), vol, display_name="x", phone=None, title=None,
                                 team_id=None, now=now)
        db.session.rollback()
        assert _u(w.vol_a).team_id == w.team and _u(w.vol_a).display_name == "刘阿姨"


def test_deactivating_a_volunteer_revokes_every_phone_at_once(db_app):
    with db_app.app_context():
        w = build_world()
        vol = _u(w.vol_a)
        logins = [accounts.start_session(vol, f"phone {i}") for i in range(3)]
        token = accounts.create_invite(vol, _u(w.staff_a), timedelta(hours=72))
        db.session.commit()
        assert all(accounts.load_login(i) is not None for i in logins)
        with pytest.raises(svc.Forbidden):
            svc.deactivate(_u(w.staff_b), vol, now=utcnow())
        svc.deactivate(_u(w.staff_a), vol, now=utcnow())
        db.session.commit()
        assert not _u(w.vol_a).active
        assert all(d.revoked_at is not None for d in db.session.execute(
            db.select(Device).where(Device.user_id == w.vol_a)).scalars())
        assert all(accounts.load_login(i) is None for i in logins)
        with pytest.raises(accounts.InviteError):
            accounts.find_invite(token)
        assert _audit("user.deactivate")[-1].object_id == w.vol_a
        svc.reactivate(_u(w.staff_a), _u(w.vol_a), now=utcnow())
        db.session.commit()
        assert _u(w.vol_a).active and all(accounts.load_login(i) is None for i in logins)


def test_accounts(db_app):
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        staff = _u(w.staff_a)
        mgr = svc.create_account(staff, role="manager", username="mgr_new", display_name="李经理",
                                 password="long-password", company_id=w.x, now=now)
        com = svc.create_account(staff, role="committee", username="com_new",
                                 display_name="业委会张", password="long-password",
                                 compound_id=w.a2, now=now)
        colleague = svc.create_account(staff, role="staff", username="staff_new",
                                       display_name="小王", password="long-password",
                                       community_id=w.cb, now=now)
        db.session.commit()
        assert (mgr.company_id, com.compound_id, colleague.community_id) == (w.x, w.a2, w.ca)
        assert mgr.check_password("long-password")
        rows = _audit("user.create")
        assert [r.object_id for r in rows] == [mgr.id, com.id, colleague.id]
        assert all("password" not in (r.after or {}) and r.actor_id == w.staff_a for r in rows)

        # Outside the community: a compound of B, a company not working in A.
        other = db.session.get(Compound, w.a2)
        other.company_id = w.x                     # now Y manages nothing in A
        db.session.flush()
        for kwargs in (dict(role="committee", compound_id=w.b1),
                       dict(role="manager", company_id=w.y)):
            with pytest.raises(svc.Forbidden):
                svc.create_account(staff, username="u-" + kwargs["role"], display_name="x",
                                   password="long-password", now=now, **kwargs)
        db.session.rollback()
        for kwargs, field, code in (
                (dict(role="manager", username="mgr_x", company_id=w.x), "username",
                 "username_taken"),
                (dict(role="manager", username="m2", password="short", company_id=w.x),
                 "password", "password"),
                (dict(role="manager", username="m3"), "company_id", "missing"),
                (dict(role="committee", username="c3"), "compound_id", "missing"),
                (dict(role="admin", username="a2"), "role", "role")):
            args = {"display_name": "某人", "password": "long-password", **kwargs}
            with pytest.raises(svc.PeopleInvalid) as err:
                svc.create_account(staff, now=now, **args)
            assert err.value.errors.get(field) == code, kwargs

        # Reset a password: signs out everywhere; audited without the password.
        login = accounts.start_session(mgr, "browser")
        db.session.commit()
        svc.reset_password(staff, mgr, "another-password", now=now)
        db.session.commit()
        assert _u(mgr.id).check_password("another-password")
        assert accounts.load_login(login) is None
        assert _audit("user.password")[-1].after == {"password": "reset"}
        with pytest.raises(svc.PeopleInvalid):
            svc.reset_password(staff, mgr, "short", now=now)
        # Scope: staff of another community may not touch A's accounts; nobody touches admins.
        # (a manager answers to every community where the company manages a compound:
        # X manages B1 too, Y only A2)
        assert svc.can_manage_account(_u(w.staff_b), mgr)
        for target in (_u(w.mgr_y), com, colleague, _u(w.staff_a)):
            assert not svc.can_manage_account(_u(w.staff_b), target)
            with pytest.raises(svc.Forbidden):
                svc.reset_password(_u(w.staff_b), target, "long-password", now=now)
            with pytest.raises(svc.Forbidden):
                svc.deactivate(_u(w.staff_b), target, now=now)
        assert not svc.can_manage_account(staff, _u(w.admin))
        assert svc.can_manage_account(_u(w.admin), _u(w.staff_b))
        with pytest.raises(svc.Forbidden):
            svc.deactivate(staff, staff, now=now)         # not oneself
        svc.deactivate(staff, mgr, now=now)
        db.session.commit()
        assert not _u(mgr.id).active

        # The list filter says the same as the predicate.
        listed = set(db.session.execute(db.select(User.id).where(
            svc.account_filter(staff, User))).scalars())
        everyone = db.session.execute(db.select(User).where(
            User.role.in_(svc.ACCOUNT_ROLES))).scalars().all()
        assert listed == {u.id for u in everyone if svc.can_manage_account(staff, u)}


# --- the pages ---------------------------------------------------------------------------

def test_pages_for_staff(app, world):
    client = sign_in(app.test_client(), world.staff_a)
    page = client.get("/people")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "人员" in text and 'name="viewport"' in text and "vol_a" in text
    assert "vol_b" not in text and "staff_b" not in text
    made = client.post("/people/teams", data={"name": "新队", "compound_ids": [world.a1]})
    assert made.status_code == 302
    bad = client.post("/people/teams", data={"name": ""})
    assert bad.status_code == 422 and "请" in bad.get_data(as_text=True)
    # An admin naming a community that does not exist: not found (it was a 500).
    admin = sign_in(app.test_client(), world.admin)
    for community_id in ("0", "999"):
        assert admin.post("/people/teams", data={"name": "新队0", "community_id": community_id}
                          ).status_code == 404
    with app.app_context():
        team = db.session.execute(db.select(Team).where(Team.name == "新队")).scalar_one()
    moved = client.post(f"/people/volunteers/{world.vol_a}",
                        data={"display_name": "刘阿姨", "phone": "13800001111",
                              "title": "片长", "team_id": team.id})
    assert moved.status_code == 302
    created = client.post("/people/accounts", data={
        "role": "committee", "username": "com_x", "display_name": "业委会", "password":
        "long-password", "compound_id": world.a1})
    assert created.status_code == 302
    with app.app_context():
        assert _u(world.vol_a).team_id == team.id
        new = db.session.execute(db.select(User).where(User.username == "com_x")).scalar_one()
    assert client.post(f"/people/accounts/{new.id}/password",
                       data={"password": "brand-new-pw"}).status_code == 302
    assert client.post(f"/people/users/{world.vol_a}/deactivate").status_code == 302
    with app.app_context():
        assert not _u(world.vol_a).active
        assert {r.action for r in db.session.execute(db.select(AuditEntry)).scalars()} >= {
            "team.create", "volunteer.update", "user.create", "user.password",
            "user.deactivate"}


@pytest.mark.parametrize("who,status", [("vol_a", 403), ("mgr_x", 403), ("com_a1", 403)])
def test_pages_refuse_other_roles(app, world, who, status):
    client = sign_in(app.test_client(), getattr(world, who))
    assert client.get("/people").status_code == status
    assert client.post("/people/teams", data={"name": "x"}).status_code == status
    assert client.post(f"/people/users/{world.vol_b}/deactivate").status_code == status


def test_pages_refuse_staff_of_another_community(app, world):
    client = sign_in(app.test_client(), world.staff_b)
    for url in (f"/people/volunteers/{world.vol_a}", f"/people/accounts/{world.staff_a}",
                f"/people/teams/{world.team}", f"/people/accounts/{world.com_a1}"):
        assert client.get(url).status_code == 404, url
    for url, data in ((f"/people/volunteers/{world.vol_a}", {"display_name": "x"}),
                      (f"/people/users/{world.vol_a}/deactivate", {}),
                      (f"/people/accounts/{world.staff_a}/password", {"password": "long-password"}),
                      (f"/people/teams/{world.team}", {"name": "x"})):
        assert client.post(url, data=data).status_code == 404, url
    refused = client.post("/people/accounts", data={
        "role": "committee", "username": "sneaky", "display_name": "x",
        "password": "long-password", "compound_id": world.a1})
    assert refused.status_code == 404
    with app.app_context():
        assert _u(world.vol_a).active and _u(world.vol_a).display_name == "vol_a"
        assert db.session.execute(db.select(User).where(User.username == "sneaky")).first() is None
        assert _u(world.staff_a).check_password(PASSWORD)


def test_admin_pages(app, world):
    client = sign_in(app.test_client(), world.admin)
    text = client.get("/people").get_data(as_text=True)
    assert "vol_a" in text and "vol_b" in text and "staff_b" in text
    assert client.post(f"/people/users/{world.vol_b}/deactivate").status_code == 302
    made = client.post("/people/accounts", data={
        "role": "staff", "username": "staff_c", "display_name": "新同事",
        "password": "long-password", "community_id": world.cb})
    assert made.status_code == 302
    with app.app_context():
        assert db.session.execute(db.select(User.community_id).where(
            User.username == "staff_c")).scalar_one() == world.cb
