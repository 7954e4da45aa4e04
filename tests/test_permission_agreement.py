"""Each rule in patrol/permissions.py has two readings, a Python predicate for one object
and a SQL filter for lists. They must agree on every (user, object) pair: a seeded matrix
of users of every role (bound, unbound, and bound to the wrong kind of place) against
items, compounds, teams, volunteers, receivers, communities and companies of two
communities, two companies and four compounds (one without a company, one that changed
hands), on SQLite and PostgreSQL."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from patrol import permissions as perm
from patrol.extensions import db
from patrol.lifecycle import Role, Status
from patrol.models import (Community, Company, Compound, Item, NotifyEndpoint, Team, User,
                           utcnow)


def _seed():
    c1, c2 = Community(name="社区1"), Community(name="社区2")
    p1, p2 = Company(name="物业1"), Company(name="物业2")
    db.session.add_all([c1, c2, p1, p2])
    db.session.flush()
    k11 = Compound(name="小区11", community_id=c1.id, company_id=p1.id)
    k12 = Compound(name="小区12", community_id=c1.id, company_id=p2.id)
    k21 = Compound(name="小区21", community_id=c2.id, company_id=p1.id)
    k22 = Compound(name="小区22", community_id=c2.id, company_id=None)   # no company yet
    db.session.add_all([k11, k12, k21, k22])
    db.session.add_all([Team(name="队1", community_id=c1.id), Team(name="队2", community_id=c2.id)])
    db.session.flush()

    users = []

    def user(role, name, **binding):
        u = User(username=f"{role.value}-{name}", display_name=name, role=role.value, **binding)
        users.append(u)
        return u

    for role in (Role.VOLUNTEER, Role.STAFF):
        user(role, "c1", community_id=c1.id)
        user(role, "c2", community_id=c2.id)
        user(role, "none")
        user(role, "wrong-kind", company_id=p1.id, compound_id=k11.id)
    user(Role.MANAGER, "p1", company_id=p1.id)
    user(Role.MANAGER, "p2", company_id=p2.id)
    user(Role.MANAGER, "none")
    user(Role.MANAGER, "wrong-kind", community_id=c1.id, compound_id=k11.id)
    user(Role.COMMITTEE, "k11", compound_id=k11.id)
    user(Role.COMMITTEE, "k22", compound_id=k22.id)
    user(Role.COMMITTEE, "none")
    user(Role.COMMITTEE, "wrong-kind", community_id=c1.id, company_id=p1.id)
    user(Role.ADMIN, "none")
    user(Role.ADMIN, "c1", community_id=c1.id)
    db.session.add_all(users)
    db.session.flush()

    reporter = users[0]
    now = utcnow()

    def item(compound, company_id):
        return Item(compound_id=compound.id, community_id=compound.community_id,
                    company_id=company_id, category="flyers", form_id="hazard", form_version=1,
                    status=Status.REPORTED.value, reporter_id=reporter.id, created_at=now,
                    updated_at=now)

    # One item in each compound, as reported (company copied from the compound), and one
    # in 小区11 from before it changed hands (still its old company's).
    db.session.add_all([item(k, k.company_id) for k in (k11, k12, k21, k22)] + [item(k11, p2.id)])
    db.session.add_all([NotifyEndpoint(name=f"c{c.id}", kind="json", target="https://x.invalid/",
                                       community_id=c.id) for c in (c1, c2)]
                       + [NotifyEndpoint(name=f"p{p.id}", kind="json", target="https://x.invalid/",
                                         company_id=p.id) for p in (p1, p2)])
    db.session.commit()


def _owner(kind):
    """The receivers' owner filter read as a predicate: could the user manage a receiver
    this community or company owned?"""
    def can(user, row):
        return perm.can_manage_endpoint(user, SimpleNamespace(
            community_id=row.id if kind == "community" else None,
            company_id=row.id if kind == "company" else None))
    return can


# name: (Python predicate, SQL filter, model)
RULES = {
    "see item": (perm.can_see_item, perm.item_filter, Item),
    "act on item": (perm.can_act_on_item, perm.actable_item_filter, Item),
    "see compound": (perm.can_see_compound, perm.compound_filter, Compound),
    "report": (perm.can_report, perm.patrol_compound_filter, Compound),
    "record a scan": (perm.can_record_presence, perm.patrol_compound_filter, Compound),
    "manage compound": (perm.can_manage_compound, perm.managed_filter, Compound),
    "manage team": (lambda u, t: perm.can_manage_community(u, t.community_id),
                    perm.managed_filter, Team),
    "manage volunteer": (perm.can_manage_volunteer, perm.volunteer_filter, User),
    "manage receiver": (perm.can_manage_endpoint, perm.endpoint_filter, NotifyEndpoint),
    "receiver owner community": (_owner("community"),
                                 lambda u, M: perm.endpoint_owner_filter(u, "community", M),
                                 Community),
    "receiver owner company": (_owner("company"),
                               lambda u, M: perm.endpoint_owner_filter(u, "company", M), Company),
    **{f"print {scope}": ((lambda s: lambda u, o: perm.can_print_weekly(u, s, o))(scope),
                          (lambda s: lambda u, M: perm.print_filter(u, s, M))(scope), model)
       for scope, model in (("community", Community), ("company", Company),
                            ("compound", Compound))},
}


@pytest.fixture
def matrix(db_app):
    with db_app.app_context():
        _seed()
        yield
        db.session.rollback()


def _answers(rule):
    """{username: (ids the predicate allows, ids the filter selects)}."""
    can, where, model = RULES[rule]
    objects = db.session.execute(db.select(model)).scalars().all()
    out = {}
    for user in db.session.execute(db.select(User).order_by(User.id)).scalars():
        python = {o.id for o in objects if can(user, o)}
        sql = set(db.session.execute(db.select(model.id).where(where(user, model))).scalars())
        out[user.username] = (python, sql)
    return out, {o.id for o in objects}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_predicate_and_filter_agree_on_every_pair(matrix, rule):
    answers, everything = _answers(rule)
    for username, (python, sql) in answers.items():
        assert python == sql, (rule, username)
        # A role without its binding, or bound to the wrong kind of place, gets nothing
        # (the old SQL forms tested truthiness, the Python ones `is not None`).
        if username.endswith(("-none", "-wrong-kind")) and not username.startswith("admin"):
            assert not python, (rule, username)
    allowed = [u for u, (python, _) in answers.items() if python]
    refused = [u for u, (python, _) in answers.items() if python != everything]
    assert allowed and refused, f"{rule}: the matrix must exercise both answers"


def test_the_matrix_means_what_the_roles_say(matrix):
    """Spot checks of the answers themselves (tests/test_permissions.py checks pages)."""
    def seen(rule, username):
        return answers[rule][username][0]

    answers = {rule: _answers(rule)[0] for rule in ("see item", "see compound", "act on item")}
    compounds = {c.name: c.id for c in db.session.execute(db.select(Compound)).scalars()}
    items_in = {}
    for i in db.session.execute(db.select(Item)).scalars():
        items_in.setdefault(i.compound_id, set()).add(i.id)
    c1 = items_in[compounds["小区11"]] | items_in[compounds["小区12"]]
    assert seen("see item", "volunteer-c1") == c1 == seen("see item", "staff-c1")
    assert seen("see compound", "committee-k22") == {compounds["小区22"]}
    # The manager of company 2 sees the item 小区11 left with them, not the others there.
    p2_items = {i.id for i in db.session.execute(
        db.select(Item).where(Item.company_id.is_not(None))).scalars()
        if i.company.name == "物业2"}
    assert seen("see item", "manager-p2") == p2_items and len(p2_items) == 2
    assert seen("see item", "admin-none") == set().union(*items_in.values())
    assert seen("act on item", "committee-k11") == set()


def test_a_staff_account_without_a_community_reaches_nothing(matrix):
    staff = db.session.execute(db.select(User).where(User.username == "staff-none")).scalar_one()
    assert not perm.can_see_ratings_list(staff)
    assert not perm.can_manage_endpoints(staff)
    assert not perm.can_manage_community(staff, None)   # was True: None == None
    company = db.session.execute(db.select(Company)).scalars().first()
    assert not perm.can_see_scorecard(staff, company, {None})
