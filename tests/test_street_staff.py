"""Street staff (街道工作人员): every community of their street, nothing of another, in
the permission rules and on the places screens (区域管理)."""
from __future__ import annotations

import pytest

from patrol import permissions
from patrol.extensions import db
from patrol.models import AuditEntry, Compound, User
from tests.conftest import sign_in
from tests.test_places_admin import _csrf_off, sw  # noqa: F401  (fixture)


@pytest.fixture
def app(db_app):
    """Every test here on SQLite and, when available, PostgreSQL."""
    return db_app


def test_street_staff_reach_every_community_of_their_street_and_no_other(app, sw):
    with app.app_context():
        s1 = db.session.get(User, sw.street_1)
        for cid in (sw.a1, sw.a2, sw.b1):
            compound = db.session.get(Compound, cid)
            assert permissions.can_see_compound(s1, compound)
            assert permissions.can_manage_compound(s1, compound)
            assert permissions.can_report(s1, compound)
        other = db.session.get(Compound, sw.c1)
        assert not permissions.can_see_compound(s1, other)
        assert not permissions.can_manage_compound(s1, other)
        seen = set(db.session.scalars(db.select(Compound.id).where(
            permissions.compound_filter(s1, Compound))))
        assert seen == {sw.a1, sw.a2, sw.b1}
        # community staff keep their community
        staff_a = db.session.get(User, sw.staff_a)
        assert not permissions.can_manage_compound(staff_a, db.session.get(Compound, sw.b1))
        # a street staff account without a street reaches nothing
        s1.street_id = None
        assert not permissions.can_see_compound(s1, db.session.get(Compound, sw.a1))
        assert not db.session.scalars(db.select(Compound.id).where(
            permissions.compound_filter(s1, Compound))).all()
        db.session.rollback()


def test_street_staff_manage_their_street_only(app, client, sw):
    _csrf_off(app)
    sign_in(client, sw.street_1)
    assert client.get(f"/places/compounds/{sw.b1}").status_code == 200
    assert client.get(f"/places/compounds/{sw.c1}").status_code == 404
    assert client.post(f"/places/streets/{sw.s2}/communities", data={"name": "x"}).status_code == 404
    r = client.post(f"/places/streets/{sw.s1}/communities", data={"name": "新社区"})
    assert r.status_code == 302
    page = client.get("/places/").get_data(as_text=True)
    assert "新社区" in page and "小区B1" in page and "小区C1" not in page
    assert client.post(f"/places/compounds/{sw.b1}/archive").status_code == 302
    with app.app_context():
        entry = db.session.scalar(db.select(AuditEntry).where(
            AuditEntry.action == "compound.archive"))
        assert (entry.actor_id, entry.street_id, entry.community_id) == \
            (sw.street_1, sw.s1, sw.cb)


# --- predicate and SQL filter agree for street staff too (tests/test_permission_agreement.py)

@pytest.fixture
def street_matrix(db_app):
    from patrol.lifecycle import Role
    from patrol.models import Community, Street
    from tests.test_permission_agreement import _seed
    with db_app.app_context():
        _seed()
        both, empty = Street(name="两社区街道"), Street(name="空街道")
        db.session.add_all([both, empty])
        db.session.flush()
        for community in db.session.execute(db.select(Community)).scalars():
            community.street_id = both.id
        c1 = db.session.execute(db.select(Community).where(Community.name == "社区1")).scalar_one()
        for name, binding in (("both", {"street_id": both.id}),
                              ("empty", {"street_id": empty.id}),
                              ("none", {}),
                              ("wrong-kind", {"community_id": c1.id})):
            # "street-…": the agreement matrix has street staff of its own ("street_staff-…").
            db.session.add(User(username=f"street-{name}", display_name=name,
                                role=Role.STREET_STAFF.value, **binding))
        db.session.commit()
        yield
        db.session.rollback()


@pytest.mark.parametrize("rule", ["see item", "act on item", "see compound", "report",
                                  "record a scan", "manage compound", "manage team",
                                  "manage volunteer", "manage receiver",
                                  "receiver owner community", "print community",
                                  "print compound"])
def test_street_staff_predicate_and_filter_agree(street_matrix, rule):
    from tests.test_permission_agreement import _answers
    answers, _ = _answers(rule)
    for username, (python, sql) in answers.items():
        assert python == sql, (rule, username)
    # a street of both communities: what staff of the one and the other reach together
    python, _ = answers["street-both"]
    assert python and python == answers["staff-c1"][0] | answers["staff-c2"][0], rule
    for unbound in ("street-empty", "street-none", "street-wrong-kind", "street_staff-none",
                    "street_staff-s1"):   # s1's communities moved to the street of both
        assert answers[unbound][0] == set(), (rule, unbound)


def test_cli_creates_street_staff_bound_to_their_street(app):
    from patrol.models import Street
    with app.app_context():
        db.session.add(Street(name="和平街道"))
        db.session.commit()
    runner = app.test_cli_runner()
    base = ["create-user", "--username", "zhou", "--name", "周科长", "--role", "street_staff",
            "--password", "long-enough-1"]
    result = runner.invoke(args=base)
    assert result.exit_code != 0 and "needs --street" in result.output
    result = runner.invoke(args=[*base, "--street", "东风街道"])
    assert result.exit_code != 0 and "no street named" in result.output
    result = runner.invoke(args=[*base, "--street", "和平街道"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "zhou")).scalar_one()
        assert user.role == "street_staff" and user.street.name == "和平街道"
