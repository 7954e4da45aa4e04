"""Object-level permissions: who may see or act on which compound, item, receiver, ….

Every rule is written once, as data: a `Scope` says, per role, which of the user's
bindings (`community_id`, `company_id` or `compound_id`) an object must share, or that
the role reaches EVERYTHING; a role left out reaches nothing. A *target* says where an
object keeps each binding (an item's compound is `compound_id`, a compound's is `id`).

`Scope.allows()` reads a rule as a Python predicate (`can_see_item(user, item)`), and
`Scope.where()` reads the same rule as a SQL condition for list queries
(`item_filter(user, Item)`). Both go through `Scope._match()`, so they cannot disagree:
a user whose binding is missing (a staff account without a community) matches nothing
in either form. `tests/test_permission_agreement.py` checks them against each other on
every (user, object) pair of a seeded matrix, on SQLite and PostgreSQL.

Pure Python: no Flask and no models (list filters take the model class), so the rules
are testable without a database. `refusal_status()` at the end is the 403/404 rule that
`web.helpers.load_or_404()` applies (docs/security.md).
"""
from __future__ import annotations

from types import MappingProxyType, SimpleNamespace

from sqlalchemy import and_, false, or_, true

from .lifecycle import Role

EVERYTHING = "*"        # a role that is bound to nothing and reaches everything

# The user's attributes that bind a role to a place.
COMMUNITY, COMPANY, COMPOUND = "community_id", "company_id", "compound_id"
DEPARTMENT = "department_id"    # department users (部门): the items routed to them
# Street staff: the ids of their street's communities (a tuple, models.User); matched
# against the same attribute of an object as COMMUNITY, as membership.
STREET = "street_community_ids"
# Street staff's own street, matched against an object's `street_id` (departments bound
# to a street rather than to one community).
STREET_ID = "street_id"


def _read(obj, path: str):
    """An object's attribute; "rel.attr" reads through a relationship (None-safe)."""
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _column(model, path: str):
    """(the column, a wrapper): "rel.attr" becomes `model.rel.has(<condition>)`."""
    if "." not in path:
        return getattr(model, path), lambda cond: cond
    rel, rest = path.split(".", 1)
    relationship = getattr(model, rel)
    related = relationship.property.mapper.class_
    return getattr(related, rest), relationship.has


class Scope:
    """Per role, the user's binding an object must share, or EVERYTHING."""

    def __init__(self, roles: dict):
        self.roles = MappingProxyType(dict(roles))

    def only(self, *roles) -> "Scope":
        return Scope({r: b for r, b in self.roles.items() if r in roles})

    def without(self, *roles) -> "Scope":
        return Scope({r: b for r, b in self.roles.items() if r not in roles})

    def binding(self, user):
        """(binding, the user's value of it) for the user's role: (EVERYTHING, None) for
        a role that reaches everything, (None, None) for a role outside this scope, and
        a value of None when the account lacks its binding."""
        binding = self.roles.get(Role(user.role))
        if binding is None or binding == EVERYTHING:
            return binding, None
        return binding, getattr(user, binding)

    def _match(self, user, target):
        """EVERYTHING, None (nothing), or (the object's attribute, the value it must
        equal). The one place that decides; allows() and where() only read it."""
        binding, value = self.binding(user)
        if binding == EVERYTHING:
            return EVERYTHING
        if binding is None or value is None or binding not in target:
            return None
        return target[binding], value

    def reaches_anything(self, user) -> bool:
        binding, value = self.binding(user)
        return binding == EVERYTHING or (binding is not None and value is not None)

    def allows(self, user, obj, target) -> bool:
        match = self._match(user, target)
        if match is None:
            return False
        if match == EVERYTHING:
            return True
        attr, value = match
        if isinstance(value, tuple):
            return _read(obj, attr) in value
        return _read(obj, attr) == value

    def where(self, user, model, target):
        match = self._match(user, target)
        if match is None:
            return false()
        if match == EVERYTHING:
            return true()
        attr, value = match
        column, wrap = _column(model, attr)
        if isinstance(value, tuple):
            return wrap(column.in_(value)) if value else false()
        return wrap(column == value)


# --- targets: where each kind of object keeps its community, company and compound ----

ITEM = {COMMUNITY: "community_id", STREET: "community_id", COMPANY: "company_id",
        COMPOUND: "compound_id", DEPARTMENT: "department_id"}
COMPOUND_ROW = {COMMUNITY: "community_id", STREET: "community_id", COMPANY: "company_id",
                COMPOUND: "id"}
COMMUNITY_ROW = {COMMUNITY: "id", STREET: "id"}
COMPANY_ROW = {COMPANY: "id"}
# users (volunteers), teams, compounds
IN_COMMUNITY = {COMMUNITY: "community_id", STREET: "community_id"}
# Receivers: owned by a community, a company, a compound (its owners' committee) or a
# department; a team's receiver (its group robot) belongs to the team's community.
ENDPOINT = {COMMUNITY: "community_id", STREET: "community_id", COMPANY: "company_id",
            COMPOUND: "compound_id", DEPARTMENT: "department_id"}
TEAM_ENDPOINT = {COMMUNITY: "team.community_id", STREET: "team.community_id"}
# Departments: bound to one community, or to a street (or, with neither, district-wide).
DEPARTMENT_IN_COMMUNITY = {COMMUNITY: "community_id", STREET: "community_id"}
DEPARTMENT_ON_STREET = {STREET_ID: "street_id"}

# --- scopes: the rules ------------------------------------------------------------

# Volunteers and staff see their community, managers their company, committee members
# their compound, admins everything.
# Street staff (街道工作人员) reach every community of their street, wherever community
# staff reach theirs.
# Department users see the items routed to their department, and nothing else.
SEE = Scope({Role.VOLUNTEER: COMMUNITY, Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET,
             Role.MANAGER: COMPANY, Role.COMMITTEE: COMPOUND, Role.ADMIN: EVERYTHING,
             Role.DEPARTMENT: DEPARTMENT})
# A change of company (物业更换, services/handover.py) needs no rule of its own: a compound
# is its current company's (Compound.company_id), an item the company's it was reported
# for (Item.company_id), and the handover closes every item still open for the old
# company. So from the date the old company's managers no longer see the compound and
# keep reading their own past items, with nothing left to act on; the new company's see
# the compound and its items from the date (tests/test_handover.py).
# Committee members only comment and flag (督办); everyone else acts where they can see
# (what each role may do to an item is the lifecycle table's: lifecycle.RULES).
ACT = SEE.without(Role.COMMITTEE)
# Replies (comments): every party that sees the item.
COMMENT = SEE
# 督办: the owners' committee of the item's compound.
SUPERVISE = SEE.only(Role.COMMITTEE)
# The residents' triage queue: staff of the compound's community (street staff their
# street's, admins all), and volunteer leaders (LEADER_TITLES) of the community.
TRIAGE = Scope({Role.VOLUNTEER: COMMUNITY, Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET,
                Role.ADMIN: EVERYTHING})
LEADER_TITLES = ("片长", "组长")
# Routing to a department, and deciding disputes: staff (and admins).
ROUTE = Scope({Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET, Role.ADMIN: EVERYTHING})
# Volunteers and staff walk the compounds: report, record gate scans, check on the spot.
PATROL = SEE.only(Role.VOLUNTEER, Role.STAFF, Role.STREET_STAFF)
# Staff manage their community's volunteers, teams, QR codes and posters; admins all.
MANAGE_COMMUNITY = Scope({Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET,
                          Role.ADMIN: EVERYTHING})
# Staff manage their community's notification receivers, managers their company's,
# committee members their compound's, department users their department's.
MANAGE_ENDPOINTS = Scope({Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET, Role.MANAGER: COMPANY,
                          Role.COMMITTEE: COMPOUND, Role.DEPARTMENT: DEPARTMENT,
                          Role.ADMIN: EVERYTHING})
# … and staff the receivers of their community's patrol teams (fixes waiting for the
# look-back go to the team's group robot).
MANAGE_TEAM_ENDPOINTS = MANAGE_COMMUNITY
# Departments (部门): staff add and edit their community's, street staff their street's
# and its communities', admins every one (district-wide ones only admins).
MANAGE_DEPARTMENTS = MANAGE_COMMUNITY
MANAGE_STREET_DEPARTMENTS = Scope({Role.STREET_STAFF: STREET_ID, Role.ADMIN: EVERYTHING})
# Weekly lists: staff for their community and its compounds, managers for their company
# and its compounds, committee members for their compound, admins for everything.
PRINT_WEEKLY = Scope({Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET, Role.MANAGER: COMPANY,
                      Role.COMMITTEE: COMPOUND, Role.ADMIN: EVERYTHING})
PRINT_TARGETS = {"community": COMMUNITY_ROW, "company": COMPANY_ROW, "compound": COMPOUND_ROW}
# The red/black list: staff (their community) and admins.
RATINGS_LIST = Scope({Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET, Role.ADMIN: EVERYTHING})
# Scorecards: managers their company's; staff those of the companies working in their
# community; admins every one.
SCORECARD = Scope({Role.MANAGER: COMPANY, Role.STAFF: COMMUNITY, Role.STREET_STAFF: STREET,
                   Role.ADMIN: EVERYTHING})


def _triage_role(user) -> bool:
    """Volunteers triage only as leaders (片长/组长)."""
    return Role(user.role) != Role.VOLUNTEER or (user.title or "") in LEADER_TITLES


def can_triage(user, report) -> bool:
    """A resident's report (anything with `community_id`): accept, support, decline, and
    read its personal data (the call-back phone)."""
    return _triage_role(user) and TRIAGE.allows(user, report, IN_COMMUNITY)


def triage_filter(user, Model):
    return TRIAGE.where(user, Model, IN_COMMUNITY) if _triage_role(user) else false()


def can_comment(user, item) -> bool:
    return COMMENT.allows(user, item, ITEM)


def can_supervise(user, item) -> bool:
    """督办 and the monthly rating: committee members of the item's compound."""
    return SUPERVISE.allows(user, item, ITEM)


def can_route(user, item) -> bool:
    return ROUTE.allows(user, item, ITEM)


# The actions only the item's responsible party takes: its company's managers, or, once
# routed to a department, that department's users (a company's managers still see an
# item routed away from them, but no longer owe it anything).
RESPONSIBLE_ACTIONS = frozenset({"acknowledge", "fix", "dispute"})


def is_responsible(user, item) -> bool:
    role = Role(user.role)
    if role == Role.MANAGER:
        return item.department_id is None and user.company_id is not None \
            and item.company_id == user.company_id
    if role == Role.DEPARTMENT:
        return user.department_id is not None and item.department_id == user.department_id
    return False


def binding_of(role) -> str | None:
    """The user attribute that binds a role to a place (None for admins, and for a role
    no rule knows yet)."""
    binding = SEE.roles.get(Role(role))
    if binding == STREET:
        return "street_id"
    return None if binding == EVERYTHING else binding


def is_read_only(user) -> bool:
    """Committee members: they see, but never act or upload."""
    role = Role(user.role)
    return role in SEE.roles and role not in ACT.roles


def can_patrol(user) -> bool:
    """Volunteers and staff: the roles that report, scan gates and check on the spot."""
    return Role(user.role) in PATROL.roles


# --- items and compounds --------------------------------------------------------------

def can_see_compound(user, compound) -> bool:
    return SEE.allows(user, compound, COMPOUND_ROW)


def compound_filter(user, Compound):
    return SEE.where(user, Compound, COMPOUND_ROW)


def can_see_item(user, item) -> bool:
    """Items carry their compound's community and company (set when reported)."""
    return SEE.allows(user, item, ITEM)


def item_filter(user, Item):
    return SEE.where(user, Item, ITEM)


def can_see_photo(user, photo, resident_report=None) -> bool:
    """A photo goes with its item; a pending upload (no item yet) only to its sender; a
    resident's photo not on an item (its report waits in triage, or was declined) only
    to those who triage its report (`resident_report`, which the caller loads)."""
    if photo.item is None:
        if photo.resident_report_id is not None:
            return (resident_report is not None
                    and resident_report.id == photo.resident_report_id
                    and can_triage(user, resident_report))
        return photo.uploader_id is not None and photo.uploader_id == user.id
    return can_see_item(user, photo.item)


def can_report(user, compound) -> bool:
    return PATROL.allows(user, compound, COMPOUND_ROW)


def can_record_presence(user, compound) -> bool:
    """A gate scan (presence) is recorded for volunteers and staff of the compound's
    community, online (/c/<token>) or later from the phone's outbox (/sync/presence).
    Managers, committee members and admins may open the QR's page but record nothing."""
    return PATROL.allows(user, compound, COMPOUND_ROW)


def patrol_compound_filter(user, Compound):
    """The compounds `can_report` / `can_record_presence` allow, as SQL."""
    return PATROL.where(user, Compound, COMPOUND_ROW)


def can_act_on_item(user, item) -> bool:
    """Committee members are read-only; everyone else acts where they can see."""
    return ACT.allows(user, item, ITEM)


def actable_item_filter(user, Item):
    return ACT.where(user, Item, ITEM)


# --- community management: volunteers, teams, QR codes -------------------------------

def can_manage_community(user, community_id) -> bool:
    return MANAGE_COMMUNITY.allows(user, SimpleNamespace(community_id=community_id),
                                   IN_COMMUNITY)


def can_manage_compound(user, compound) -> bool:
    """Its QR code and poster."""
    return MANAGE_COMMUNITY.allows(user, compound, IN_COMMUNITY)


def managed_filter(user, Model):
    """The teams, compounds, … (any model with `community_id`) the user manages."""
    return MANAGE_COMMUNITY.where(user, Model, IN_COMMUNITY)


def own_communities(user) -> tuple:
    """The communities a page about one community offers the user: staff their own,
    street staff their street's (by id; the first is the default); nobody else any
    (admins choose among all, or the whole district)."""
    binding, value = MANAGE_COMMUNITY.binding(user)
    if binding == STREET:
        return tuple(sorted(value or ()))
    if binding == COMMUNITY and value is not None:
        return (value,)
    return ()


def can_manage_volunteer(user, person) -> bool:
    return person.role == Role.VOLUNTEER and MANAGE_COMMUNITY.allows(user, person, IN_COMMUNITY)


def volunteer_filter(user, User):
    return and_(User.role == Role.VOLUNTEER.value,
                MANAGE_COMMUNITY.where(user, User, IN_COMMUNITY))


def can_manage_device(user, device) -> bool:
    """A volunteer's phone: signed out by whoever manages the volunteer."""
    return can_manage_volunteer(user, device.user)


# --- weekly lists ----------------------------------------------------------------------

def can_print_weekly(user, scope: str, target) -> bool:
    """Weekly problem lists: staff for their community and its compounds, managers for
    their company and its compounds, admins for everything."""
    return scope in PRINT_TARGETS and PRINT_WEEKLY.allows(user, target, PRINT_TARGETS[scope])


def print_filter(user, scope: str, Model):
    """The communities, companies or compounds (`scope`) whose lists the user may print."""
    return PRINT_WEEKLY.where(user, Model, PRINT_TARGETS[scope])


# --- ratings and notifications -----------------------------------------------------

def can_see_ratings_list(user) -> bool:
    """The red/black list: community staff (their community) and admins."""
    return RATINGS_LIST.reaches_anything(user)


def can_see_scorecard(user, company, company_community_ids) -> bool:
    """Managers see their own company's scorecard; staff those of the companies working
    in their community (computed on that community's items); admins every one."""
    binding, value = SCORECARD.binding(user)
    if binding == EVERYTHING:
        return True
    if binding is None or value is None:
        return False
    if binding == COMPANY:
        return company.id == value
    if binding == STREET:
        return bool(set(value) & set(company_community_ids))
    return value in company_community_ids


def can_manage_endpoints(user) -> bool:
    """Whether the user has any receivers to manage (a staff account without a
    community or a manager without a company has none)."""
    return MANAGE_ENDPOINTS.reaches_anything(user)


# Each reading is the same two scopes: the owner's own, and a team's through its community.
_ENDPOINT_RULES = ((MANAGE_ENDPOINTS, ENDPOINT), (MANAGE_TEAM_ENDPOINTS, TEAM_ENDPOINT))


def can_manage_endpoint(user, endpoint) -> bool:
    """Staff manage their community's receivers and its teams', managers their company's,
    committee members their compound's, department users their department's, admins all."""
    return any(scope.allows(user, endpoint, target) for scope, target in _ENDPOINT_RULES)


def endpoint_filter(user, NotifyEndpoint):
    return or_(*(scope.where(user, NotifyEndpoint, target) for scope, target in _ENDPOINT_RULES))


# The kinds of owner a receiver may have: (the scope, where the owner row keeps the
# binding). A compound's receivers are its committee's; a staff member reaches a
# compound only through its community's own receivers, so the compound row says only
# COMPOUND here.
ENDPOINT_OWNERS = {
    "community": (MANAGE_ENDPOINTS, COMMUNITY_ROW),
    "company": (MANAGE_ENDPOINTS, COMPANY_ROW),
    "compound": (MANAGE_ENDPOINTS, {COMPOUND: "id"}),
    "dept": (MANAGE_ENDPOINTS, {DEPARTMENT: "id"}),
    "team": (MANAGE_TEAM_ENDPOINTS, IN_COMMUNITY),
}


def endpoint_owner_filter(user, kind: str, Model):
    """The communities, companies, compounds, departments or teams (`kind`) the user may
    attach a receiver to."""
    scope, target = ENDPOINT_OWNERS[kind]
    return scope.where(user, Model, target)


def can_own_endpoint(user, kind: str, owner) -> bool:
    """`endpoint_owner_filter` for one owner row."""
    scope, target = ENDPOINT_OWNERS[kind]
    return scope.allows(user, owner, target)


# --- departments -----------------------------------------------------------------------

_DEPARTMENT_RULES = ((MANAGE_DEPARTMENTS, DEPARTMENT_IN_COMMUNITY),
                     (MANAGE_STREET_DEPARTMENTS, DEPARTMENT_ON_STREET))


def can_manage_department(user, department) -> bool:
    """Add or edit a department and its users: staff those of their community, street
    staff those of their street and its communities, admins every one."""
    return any(scope.allows(user, department, target) for scope, target in _DEPARTMENT_RULES)


def department_filter(user, Department):
    return or_(*(scope.where(user, Department, target)
                 for scope, target in _DEPARTMENT_RULES))


def can_manage_departments(user) -> bool:
    return any(scope.reaches_anything(user) for scope, _t in _DEPARTMENT_RULES)


# --- refusals: 403 or 404 ---------------------------------------------------------------

# The patrol's shared map (items, compounds, company scorecards): numbered in sequence and
# reached from paper (item QR codes on the weekly lists, gate posters; companies are named
# on the red/black list), so outside the user's scope they answer 403 Forbidden: hiding
# them would protect nothing, and "not yours" is the useful answer to someone who
# followed a neighbour's code. Every other check (photos, volunteers and their phones,
# receivers, QR codes and posters, weekly lists) answers 404 Not Found, exactly like a
# missing object: its existence is not revealed. A role that may never do a kind of thing
# is refused 403 before any object is loaded (web.helpers.roles_required).
# See docs/security.md, "403 or 404".
FORBIDDEN_WHEN_REFUSED = frozenset({
    can_see_item, can_act_on_item, can_see_compound, can_report, can_record_presence,
    can_see_scorecard, can_comment, can_supervise, can_route,
})


def refusal_status(check) -> int:
    """The HTTP status for an existing object that `check` refuses: 403 or 404."""
    return 403 if check in FORBIDDEN_WHEN_REFUSED else 404
