"""Departments (部门) and their user accounts: staff for their community, street staff for
their street, admins for all. The pages parse, call services/departments.py and
services/people_admin.py (which audit), commit, redirect. A department user's own page
is the inbox (web/lists.py), which shows the items routed to their department."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import labels, permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Department, Street, User, utcnow
from ..models.workflow import DEPARTMENT_KINDS
from ..services import departments as service
from ..services import people_admin
from .helpers import get_or_404, roles_required

bp = Blueprint("departments", __name__, url_prefix="/departments")
bp.add_app_template_global(lambda k: labels.DEPARTMENT_KIND.get(k, k), "department_kind_label")
MANAGERS = (Role.STAFF, Role.STREET_STAFF, Role.ADMIN)

ERRORS = {
    "name": lambda: _("Please enter a name (at most 100 characters)."),
    "name_taken": lambda: _("A department of that name exists already."),
    "kind": lambda: _("Please choose one of the options."),
    "phone": lambda: _("The phone number is too long."),
    "bound_to": lambda: _("Please choose one of the options."),
}


def _messages(exc) -> dict:
    table = {**ERRORS, **{k: v for k, v in _people_errors().items() if k not in ERRORS}}
    return {field: table.get(code, ERRORS["kind"])() for field, code in exc.errors.items()}


def _people_errors():
    from .people import ERRORS as PEOPLE_ERRORS
    return PEOPLE_ERRORS


def _department(department_id) -> Department:
    """Missing or outside the user's reach: 404 alike."""
    department = get_or_404(Department, department_id)
    if not permissions.can_manage_department(current_user, department):
        abort(404)
    return department


def _places():
    """The streets and communities the user may bind a new department to (staff: none to
    choose, always their community)."""
    me = current_user
    if me.role == Role.ADMIN:
        return (db.session.execute(db.select(Street).order_by(Street.name)).scalars().all(),
                db.session.execute(db.select(Community).order_by(Community.name)).scalars().all())
    if me.role == Role.STREET_STAFF and me.street_id is not None:
        return ([db.session.get(Street, me.street_id)],
                db.session.execute(db.select(Community).where(
                    Community.street_id == me.street_id).order_by(Community.name)).scalars().all())
    return [], []


def _index(errors=None, values=None, status=200):
    if not permissions.can_manage_departments(current_user):
        abort(403)   # a staff account without a community, street staff without a street
    departments = db.session.execute(
        db.select(Department).where(permissions.department_filter(current_user, Department))
        .order_by(Department.active.desc(), Department.name)).scalars().all()
    streets, communities = _places()
    return render_template("departments/index.html", departments=departments,
                           kinds=DEPARTMENT_KINDS, streets=[s for s in streets if s],
                           communities=communities, errors=errors or {},
                           values=values or {}), status


@bp.get("")
@roles_required(*MANAGERS)
def index():
    return _index()


@bp.post("")
@roles_required(*MANAGERS)
def create():
    form = request.form
    try:
        department = service.create(current_user, name=form.get("name"), kind=form.get("kind"),
                                    phone=form.get("phone"), bound_to=form.get("bound_to"),
                                    now=utcnow())
    except service.Forbidden:
        abort(404)
    except service.DepartmentInvalid as exc:
        db.session.rollback()
        return _index(_messages(exc), form.to_dict(), 422)
    db.session.commit()
    flash(_("Department %(name)s added.", name=department.name), "ok")
    return redirect(url_for("departments.show", department_id=department.id))


def _show(department, *, errors=None, values=None, status=200):
    users = db.session.execute(db.select(User).where(
        User.role == Role.DEPARTMENT.value, User.department_id == department.id)
        .order_by(User.display_name)).scalars().all()
    return render_template("departments/show.html", department=department, users=users,
                           kinds=DEPARTMENT_KINDS, errors=errors or {},
                           values=values or {}), status


@bp.route("/<int:department_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def show(department_id):
    department = _department(department_id)
    if request.method == "GET":
        return _show(department)
    form = request.form
    try:
        service.update(current_user, department, name=form.get("name"), kind=form.get("kind"),
                       phone=form.get("phone"), active=form.get("active") == "1", now=utcnow())
    except service.Forbidden:
        abort(404)
    except service.DepartmentInvalid as exc:
        db.session.rollback()
        return _show(department, errors=_messages(exc),
                     values={**form.to_dict(), "form": "edit"}, status=422)
    db.session.commit()
    flash(_("Changes saved."), "ok")
    return redirect(url_for("departments.show", department_id=department.id))


@bp.post("/<int:department_id>/users")
@roles_required(*MANAGERS)
def add_user(department_id):
    """A department user: signs in with a password, sees the department's items only."""
    department = _department(department_id)
    form = request.form
    try:
        user = people_admin.create_account(
            current_user, role=Role.DEPARTMENT.value, username=form.get("username"),
            display_name=form.get("display_name"), password=form.get("password"),
            phone=form.get("phone"), department_id=department.id, now=utcnow())
    except people_admin.Forbidden:
        abort(404)
    except people_admin.PeopleInvalid as exc:
        db.session.rollback()
        values = {k: v for k, v in form.to_dict().items() if k != "password"}
        return _show(department, errors=_messages(exc), values={**values, "form": "user"},
                     status=422)
    db.session.commit()
    flash(_("Account %(name)s created.", name=user.username), "ok")
    return redirect(url_for("departments.show", department_id=department.id))
