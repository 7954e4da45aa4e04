"""Departments (部门): responsible parties that are not property companies (water, power,
lifts, 城管, the community itself). Staff add and edit their community's, street staff
their street's, admins every one (permissions.can_manage_department). Their users are
accounts with Role.DEPARTMENT (services/people_admin.create_account).

Every act is audited in the caller's transaction; the caller commits. Refusals raise
DepartmentInvalid (field → code) or Forbidden and change nothing.
"""
from __future__ import annotations

from .. import permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Department, Street
from ..models.workflow import DEPARTMENT_KINDS
from . import audit, row_locks

NAME_MAX = 100
PHONE_MAX = 40


class DepartmentInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class Forbidden(Exception):
    """The actor may not manage this department."""


def _clean(name, kind, phone, errors, *, current: Department | None = None):
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX:
        errors["name"] = "name"
    elif db.session.execute(db.select(Department.id).where(
            Department.name == name,
            Department.id != (current.id if current else -1))).first():
        errors["name"] = "name_taken"
    if kind not in DEPARTMENT_KINDS:
        errors["kind"] = "kind"
    phone = " ".join((phone or "").split()) or None
    if phone and len(phone) > PHONE_MAX:
        errors["phone"] = "phone"
    return name, kind, phone


def _binding(actor, bound_to: str | None, errors):
    """(street_id, community_id) from "community:<id>", "street:<id>" or "" (neither).
    Staff: always their own community, whatever was sent."""
    if Role(actor.role) == Role.STAFF:
        return None, actor.community_id
    kind, _sep, ident = (bound_to or "").partition(":")
    if not kind:
        return None, None
    if not (ident.isascii() and ident.isdigit()) or kind not in ("community", "street"):
        errors["bound_to"] = "bound_to"
        return None, None
    model = Community if kind == "community" else Street
    if db.session.get(model, int(ident)) is None:
        errors["bound_to"] = "bound_to"
        return None, None
    return (None, int(ident)) if kind == "community" else (int(ident), None)


def create(actor, *, name, kind, phone=None, bound_to=None, now) -> Department:
    errors: dict[str, str] = {}
    name, kind, phone = _clean(name, kind, phone, errors)
    street_id, community_id = _binding(actor, bound_to, errors)
    department = Department(name=name, kind=kind, phone=phone, street_id=street_id,
                            community_id=community_id, active=True, created_at=now)
    if not permissions.can_manage_department(actor, department):
        raise Forbidden()
    if errors:
        raise DepartmentInvalid(errors)
    db.session.add(department)
    row_locks.flush_or(DepartmentInvalid({"name": "name_taken"}))
    audit.record(actor, "department.create", department, None,
                 {"name": name, "kind": kind, "phone": phone, "street_id": street_id,
                  "community_id": community_id}, now,
                 street_id=street_id, community_id=community_id)
    return department


def update(actor, department, *, name, kind, phone=None, active=True, now) -> Department:
    """Rename, change kind or phone, (de)activate. Its binding stays: a department of
    another place is a new department."""
    if not permissions.can_manage_department(actor, department):
        raise Forbidden()
    errors: dict[str, str] = {}
    name, kind, phone = _clean(name, kind, phone, errors, current=department)
    if errors:
        raise DepartmentInvalid(errors)
    before, after = {}, {}
    for field, value in (("name", name), ("kind", kind), ("phone", phone),
                         ("active", bool(active))):
        if getattr(department, field) != value:
            before[field], after[field] = getattr(department, field), value
            setattr(department, field, value)
    db.session.flush()
    if after:
        audit.record(actor, "department.update", department, before, after, now,
                     street_id=department.street_id, community_id=department.community_id)
    return department
