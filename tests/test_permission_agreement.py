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
from patrol.models import (Community, Company, Compound, Department, Item, NotifyEndpoint,
                           Street, Team, User, utcnow)


def _seed():
    s1 = Street(name="街道1")
    c1, c2 = Community(name="社区1", street=s1), Community(name="社区2")
    p1, p2 = Company(name="物业1"), Company(name="物业2")
    db.session.add_all([c1, c2, p1, p2])
    db.session.flush()
    # Departments: one of 社区1, one of 街道1, one of the whole district.
    d1 = Department(name="部门1", kind="water", community_id=c1.id)
    d2 = Department(name="部门2", kind="power", street_id=s1.id)
    d3 = Department(name="部门3", kind="lift")
    db.session.add_all([d1, d2, d3])
    k11 = Compound(name="小区11", community_id=c1.id, company_id=p1.id)
    k12 = Compound(name="小区12", community_id=c1.id, company_id=p2.id)
    k21 = Compound(name="小区21", community_id=c2.id, company_id=p1.id)
    k22 = Compound(name="小区22", community_id=c2.id, company_id=None)   # no company yet
    db.session.add_all([k11, k12, k21, k22])
    t1, t2 = Team(name="队1", community_id=c1.id), Team(name="队2", community_id=c2.id)
    db.session.add_all([t1, t2])
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
    user(Role.STREET_STAFF, "s1", street_id=s1.id)
    user(Role.STREET_STAFF, "none")
    user(Role.DEPARTMENT, "d1", department_id=d1.id)
    user(Role.DEPARTMENT, "d2", department_id=d2.id)
    user(Role.DEPARTMENT, "none")
    user(Role.DEPARTMENT, "wrong-kind", community_id=c1.id, company_id=p1.id,
         compound_id=k11.id)
    user(Role.ADMIN, "none")
    user(Role.ADMIN, "c1", community_id=c1.id)
    db.session.add_all(users)
    db.session.flush()

    reporter = users[0]
    now = utcnow()

    def item(compound, company_id, department=None):
        return Item(compound_id=compound.id, community_id=compound.community_id,
                    company_id=company_id, category="flyers", form_id="hazard", form_version=1,
                    status=Status.REPORTED.value, reporter_id=reporter.id, created_at=now,
                    updated_at=now, department_id=department.id if department else None)

    # One item in each compound, as reported (company copied from the compound), and one
    # in 小区11 from before it changed hands (still its old company's).
    db.session.add_all([item(k, k.company_id) for k in (k11, k12, k21, k22)] + [item(k11, p2.id)])
    # Routed to departments (部门): their users see these and nothing else.
    db.session.add_all([item(k11, p1.id, d1), item(k12, p2.id, d2), item(k22, None, d3)])
    # Receivers of a team, a compound (its committee) and a department.
    db.session.add_all([NotifyEndpoint(name=f"t{t.id}", kind="json", target="https://x.invalid/",
                                       team_id=t.id) for t in (t1, t2)]
                       + [NotifyEndpoint(name="k11", kind="json", target="https://x.invalid/",
                                         compound_id=k11.id),
                          NotifyEndpoint(name="d1", kind="json", target="https://x.invalid/",
                                         department_id=d1.id)])
    db.session.add_all([NotifyEndpoint(name=f"c{c.id}", kind="json", target="https://x.invalid/",
                                       community_id=c.id) for c in (c1, c2)]
                       + [NotifyEndpoint(name=f"p{p.id}", kind="json", target="https://x.invalid/",
                                         company_id=p.id) for p in (p1, p2)])
    db.session.commit()


def _owner(kind):
    """The receivers' owner filter read as a predicate: could the user manage a receiver
    this community, company, compound, department or team owned?"""
    def can(user, row):
        return perm.can_manage_endpoint(user, SimpleNamespace(
            community_id=row.id if kind == "community" else None,
            company_id=row.id if kind == "company" else None,
            compound_id=row.id if kind == "compound" else None,
            department_id=row.id if kind == "dept" else None,
            team_id=row.id if kind == "team" else None,
            team=row if kind == "team" else None))
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
    **{f"receiver owner {kind}": (_owner(kind),
                                  (lambda k: lambda u, M: perm.endpoint_owner_filter(u, k, M))(kind),
                                  model)
       for kind, model in (("compound", Compound), ("dept", Department), ("team", Team))},
    "manage department": (perm.can_manage_department, perm.department_filter, Department),
    "comment": (perm.can_comment, lambda u, M: perm.COMMENT.where(u, M, perm.ITEM), Item),
    "supervise": (perm.can_supervise, lambda u, M: perm.SUPERVISE.where(u, M, perm.ITEM), Item),
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
    # (and the one of 小区12 routed to a department: still the company's to read)
    assert seen("see item", "manager-p2") == p2_items and len(p2_items) == 3
    assert seen("see item", "admin-none") == set().union(*items_in.values())
    assert seen("act on item", "committee-k11") == set()
    # Department users see the items routed to their department, and nothing else: no
    # compound, no other item of the compound, no other department's.
    routed = {}
    for i in db.session.execute(db.select(Item).where(Item.department_id.is_not(None))).scalars():
        routed.setdefault(i.department.name, set()).add(i.id)
    assert seen("see item", "department-d1") == routed["部门1"] == seen("act on item",
                                                                      "department-d1")
    assert seen("see item", "department-d2") == routed["部门2"]
    assert seen("see compound", "department-d1") == set()
    assert seen("see item", "department-none") == set() == seen("see item",
                                                                "department-wrong-kind")


def test_a_staff_account_without_a_community_reaches_nothing(matrix):
    staff = db.session.execute(db.select(User).where(User.username == "staff-none")).scalar_one()
    assert not perm.can_see_ratings_list(staff)
    assert not perm.can_manage_endpoints(staff)
    assert not perm.can_manage_community(staff, None)   # was True: None == None
    company = db.session.execute(db.select(Company)).scalars().first()
    assert not perm.can_see_scorecard(staff, company, {None})
