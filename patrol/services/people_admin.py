"""Teams, volunteers and the other accounts, as community staff (their community) and
admins manage them. Every act is audited (services/audit.py) in the caller's
transaction; the caller commits. Refusals raise PeopleInvalid (field → code) or
Forbidden, and change nothing.

Who may manage whom (`can_manage_account`):
  * admins: every account but other admins (those are made with the CLI);
  * staff: volunteers and staff of their community, committee members of its compounds,
    and managers of the companies managing one of its compounds; never themselves
    (for deactivating: a community must not lock itself out by a slip);
  * department users (部门): whoever manages their department
    (permissions.can_manage_department: staff their community's, street staff their
    street's, admins all).
Teams: staff those of their community, admins all (permissions.MANAGE_COMMUNITY).

Creating a volunteer stays accounts.create_volunteer (it also makes the first link);
editing one here uses the same rules for name, phone and title.
"""
from __future__ import annotations

from sqlalchemy import and_, false, or_

from .. import permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Company, Compound, Department, Team, User
from ..models.people import TITLES
from . import accounts, audit, row_locks

NAME_MAX = 60
PASSWORD_MIN = 8
ACCOUNT_ROLES = (Role.MANAGER.value, Role.COMMITTEE.value, Role.STAFF.value,
                 Role.DEPARTMENT.value)


class PeopleInvalid(Exception):
    """Nothing was changed; `errors` maps a field to a code."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Forbidden(Exception):
    """The actor may not manage this account, team or place."""


# --- scope ------------------------------------------------------------------------------

def _company_works_in(company_id, community_id) -> bool:
    if company_id is None or community_id is None:
        return False
    return db.session.execute(
        db.select(Compound.id).where(Compound.company_id == company_id,
                                     Compound.community_id == community_id).limit(1)
    ).first() is not None


def can_manage_account(actor, user) -> bool:
    role = Role(actor.role)
    if user.role == Role.ADMIN.value:
        return False
    if role == Role.ADMIN:
        return True
    if user.role == Role.DEPARTMENT.value:
        return user.department is not None and \
            permissions.can_manage_department(actor, user.department)
    if role == Role.STREET_STAFF:  # their street's volunteers (other accounts: not yet)
        return permissions.can_manage_volunteer(actor, user)
    if role != Role.STAFF or actor.community_id is None:
        return False
    if user.role in (Role.VOLUNTEER.value, Role.STAFF.value):
        return user.community_id == actor.community_id
    if user.role == Role.COMMITTEE.value:
        return user.compound is not None and user.compound.community_id == actor.community_id
    if user.role == Role.MANAGER.value:
        return _company_works_in(user.company_id, actor.community_id)
    return False


def account_filter(actor, User_=User):
    """The non-volunteer accounts the actor manages, as SQL (same rule as above)."""
    others = User_.role.in_(ACCOUNT_ROLES)
    role = Role(actor.role)
    if role == Role.ADMIN:
        return others
    departments = and_(User_.role == Role.DEPARTMENT.value, User_.department_id.in_(
        db.select(Department.id).where(permissions.department_filter(actor, Department))))
    if role == Role.STREET_STAFF:
        return departments
    if role != Role.STAFF or actor.community_id is None:
        return false()
    compounds = db.select(Compound.id).where(Compound.community_id == actor.community_id)
    companies = db.select(Compound.company_id).where(Compound.community_id == actor.community_id)
    return and_(others, or_(
        and_(User_.role == Role.STAFF.value, User_.community_id == actor.community_id),
        and_(User_.role == Role.COMMITTEE.value, User_.compound_id.in_(compounds)),
        and_(User_.role == Role.MANAGER.value, User_.company_id.in_(companies)),
        departments))


def community_filter(actor, Model):
    """Rows of a model with `community_id` the actor manages: staff their community's,
    admins all (permissions.can_manage_community, as SQL)."""
    return permissions.managed_filter(actor, Model)


def volunteer_filter(actor, User_=User):
    return and_(User_.role == Role.VOLUNTEER.value, community_filter(actor, User_))


def can_manage_team(actor, team) -> bool:
    return permissions.can_manage_community(actor, team.community_id)


def _require(ok: bool):
    if not ok:
        raise Forbidden()


# --- checks shared by the forms -------------------------------------------------------------

def _name(value, errors, field="display_name"):
    name = (value or "").strip()
    if not name or len(name) > NAME_MAX:
        errors[field] = "name"
    return name


def _phone(value, errors):
    phone = accounts.normal_phone(value)
    digits = phone.removeprefix("+").replace("-", "").replace(" ", "")
    if phone and (len(phone) > accounts.PHONE_MAX or not (digits.isascii() and digits.isdigit())):
        errors["phone"] = "phone"
    return phone or None


def _password(value, errors):
    if not value or len(value) < PASSWORD_MIN:
        errors["password"] = "password"
    return value


def _compounds_of(community_id, compound_ids, errors):
    ids = {int(i) for i in compound_ids or ()}
    found = db.session.execute(
        db.select(Compound).where(Compound.id.in_(ids))).scalars().all() if ids else []
    if len(found) != len(ids) or any(c.community_id != community_id or c.archived_at is not None
                                     for c in found):  # archived compounds: not in a team
        errors["compounds"] = "compounds"
    return sorted(found, key=lambda c: c.name)


# --- teams ---------------------------------------------------------------------------------

def create_team(actor, *, name, community_id=None, compound_ids=(), now) -> Team:
    if Role(actor.role) == Role.STAFF:
        community_id = actor.community_id
    _require(community_id is not None and permissions.can_manage_community(actor, community_id)
             and db.session.get(Community, community_id) is not None)   # an admin names any id
    errors: dict[str, str] = {}
    name = _name(name, errors, "name")
    row_locks.hold(Community.id, community_id)   # the name is checked on the held community
    if not errors and db.session.execute(db.select(Team.id).where(
            Team.community_id == community_id, Team.name == name)).first():
        errors["name"] = "name_taken"
    compounds = _compounds_of(community_id, compound_ids, errors)
    if errors:
        raise PeopleInvalid(errors)
    team = Team(name=name, community_id=community_id, compounds=compounds)
    db.session.add(team)
    db.session.flush()
    audit.record(actor, "team.create", team, None,
                 {"name": name, "compounds": [c.id for c in compounds]}, now)
    return team


def update_team(actor, team, *, name=None, compound_ids=None, now) -> Team:
    """Rename a team and/or set the compounds it patrols."""
    _require(can_manage_team(actor, team))
    errors: dict[str, str] = {}
    before, after = {}, {}
    if name is not None:
        name = _name(name, errors, "name")
        row_locks.hold(Community.id, team.community_id)
        if not errors and name != team.name and db.session.execute(db.select(Team.id).where(
                Team.community_id == team.community_id, Team.name == name)).first():
            errors["name"] = "name_taken"
    compounds = None
    if compound_ids is not None:
        compounds = _compounds_of(team.community_id, compound_ids, errors)
    if errors:
        raise PeopleInvalid(errors)
    if name is not None and name != team.name:
        before["name"], after["name"] = team.name, name
        team.name = name
    if compounds is not None and {c.id for c in compounds} != {c.id for c in team.compounds}:
        before["compounds"] = sorted(c.id for c in team.compounds)
        after["compounds"] = sorted(c.id for c in compounds)
        team.compounds = compounds
    db.session.flush()
    if after:
        audit.record(actor, "team.update", team, before, after, now)
    return team


# --- volunteers ----------------------------------------------------------------------------

def update_volunteer(actor, volunteer, *, display_name, phone, title, team_id, now) -> User:
    """Edit a volunteer's name, phone, title and team (a team of their community, or none)."""
    _require(volunteer.role == Role.VOLUNTEER.value and can_manage_account(actor, volunteer))
    errors: dict[str, str] = {}
    values = {"display_name": _name(display_name, errors), "phone": _phone(phone, errors),
              "title": title or accounts.DEFAULT_TITLE}
    if values["title"] not in TITLES:
        errors["title"] = "title"
    team = _team_for(volunteer, team_id, errors)
    if errors:
        raise PeopleInvalid(errors)
    values["team_id"] = team.id if team else None
    before, after = audit.changes(volunteer, ("display_name", "phone", "title", "team_id"),
                                  values)
    db.session.flush()
    if after:
        audit.record(actor, "volunteer.update", volunteer, before, after, now)
    return volunteer


def move_volunteer(actor, volunteer, team_id, *, now) -> User:
    """Move a volunteer to another team of their community (None: no team)."""
    _require(volunteer.role == Role.VOLUNTEER.value and can_manage_account(actor, volunteer))
    errors: dict[str, str] = {}
    team = _team_for(volunteer, team_id, errors)
    if errors:
        raise PeopleInvalid(errors)
    before, after = audit.changes(volunteer, ("team_id",), {"team_id": team.id if team else None})
    db.session.flush()
    if after:
        audit.record(actor, "volunteer.move", volunteer, before, after, now)
    return volunteer


def _team_for(volunteer, team_id, errors):
    if team_id in (None, ""):
        return None
    team = db.session.get(Team, int(team_id)) if str(team_id).isdigit() else None
    if team is None or team.community_id != volunteer.community_id:
        errors["team_id"] = "team"
        return None
    return team


# --- every account ---------------------------------------------------------------------------

def deactivate(actor, user, *, now) -> User:
    """Sign the account out everywhere at once (every phone and browser) and refuse it from
    now on; its open invite links stop working too. History keeps its name."""
    _require(can_manage_account(actor, user) and user.id != actor.id)
    if not user.active:
        return user
    user.active = False
    accounts.end_all_sessions(user)
    accounts.void_open_invites(user)
    db.session.flush()
    audit.record(actor, "user.deactivate", user, {"active": True}, {"active": False}, now)
    return user


def reactivate(actor, user, *, now) -> User:
    _require(can_manage_account(actor, user) and user.id != actor.id)
    if user.active:
        return user
    user.active = True
    db.session.flush()
    audit.record(actor, "user.reactivate", user, {"active": False}, {"active": True}, now)
    return user


def create_account(actor, *, role, username, display_name, password, phone=None,
                   community_id=None, company_id=None, compound_id=None, department_id=None,
                   now) -> User:
    """A manager (bound to a company), committee member (a compound), staff member (a
    community) or department user (a department), with a password. Staff: for their own
    community, its compounds, the companies managing one of them and its departments."""
    errors: dict[str, str] = {}
    if role not in ACCOUNT_ROLES:
        raise PeopleInvalid({"role": "role"})
    name = _name(display_name, errors)
    phone = _phone(phone, errors)
    _password(password, errors)
    username = (username or "").strip()
    if not username or len(username) > 60:
        errors["username"] = "username"
    elif db.session.execute(db.select(User.id).where(User.username == username)).first():
        errors["username"] = "username_taken"
    user = User(username=username, display_name=name, phone=phone, role=role)
    if role == Role.STAFF.value:
        if Role(actor.role) == Role.STAFF:
            community_id = actor.community_id
        if community_id is None:
            errors["community_id"] = "missing"
        user.community_id = community_id
    elif role == Role.MANAGER.value:
        if company_id is None or db.session.get(Company, int(company_id)) is None:
            errors["company_id"] = "missing"
        user.company_id = int(company_id) if company_id is not None else None
    elif role == Role.DEPARTMENT.value:
        department = db.session.get(Department, int(department_id)) if department_id else None
        if department is None:
            errors["department_id"] = "missing"
        user.department = department
    else:
        compound = db.session.get(Compound, int(compound_id)) if compound_id else None
        if compound is None:
            errors["compound_id"] = "missing"
        user.compound = compound
    if errors:
        raise PeopleInvalid(errors)
    _require(can_manage_account(actor, user))
    user.set_password(password)
    db.session.add(user)
    row_locks.flush_or(PeopleInvalid({"username": "username_taken"}))
    audit.record(actor, "user.create", user, None,
                 {"username": username, "role": role, "display_name": name,
                  "community_id": user.community_id, "company_id": user.company_id,
                  "compound_id": user.compound_id, "department_id": user.department_id}, now)
    return user


def reset_password(actor, user, password, *, now) -> User:
    """A new password for a staff, manager or committee account; signs it out everywhere.
    The audit row says it happened, never the password."""
    _require(user.role in ACCOUNT_ROLES and can_manage_account(actor, user))
    errors: dict[str, str] = {}
    _password(password, errors)
    if errors:
        raise PeopleInvalid(errors)
    user.set_password(password)
    accounts.end_all_sessions(user)
    db.session.flush()
    audit.record(actor, "user.password", user, None, {"password": "reset"}, now)
    return user
