"""Teams, volunteers and accounts (人员管理): community staff for their community, admins
for all. The pages parse, call services/people_admin.py (which audits), commit, redirect."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Company, Compound, Team, User, utcnow
from ..models.people import TITLES
from ..services import people_admin as service
from .helpers import get_or_404, roles_required

bp = Blueprint("people", __name__, url_prefix="/people")

ERRORS = {
    "name": lambda: _("Please enter a name (at most 60 characters)."),
    "name_taken": lambda: _("This community already has a team of that name."),
    "phone": lambda: _("Please enter a phone number using digits only."),
    "title": lambda: _("Please choose one of the options."),
    "team": lambda: _("Please choose a team."),
    "compounds": lambda: _("Please choose compounds of this community."),
    "password": lambda: _("The password needs at least 8 characters."),
    "username": lambda: _("Please enter a user name (at most 60 characters)."),
    "username_taken": lambda: _("This user name is taken."),
    "missing": lambda: _("Please fill this in."),
    "role": lambda: _("Please choose one of the options."),
}
STAFF_OR_ADMIN = (Role.STAFF, Role.STREET_STAFF, Role.ADMIN)


def _messages(exc) -> dict:
    return {field: ERRORS.get(code, ERRORS["missing"])() for field, code in exc.errors.items()}


def _load(model, ident, can):
    """Missing or outside the user's scope: 404 alike (people are never revealed)."""
    obj = get_or_404(model, ident)
    if not can(current_user, obj):
        abort(404)
    return obj


def _account(user_id) -> User:
    return _load(User, user_id, service.can_manage_account)


def _team(team_id) -> Team:
    return _load(Team, team_id, service.can_manage_team)


def _managed(model):
    return db.session.execute(db.select(model).where(
        service.community_filter(current_user, model)).order_by(model.name)).scalars().all()


def _index(errors=None, values=None, status=200):
    me = current_user
    communities = (db.session.execute(db.select(Community).order_by(Community.name)).scalars().all()
                   if me.role == Role.ADMIN else [])
    if me.role == Role.STREET_STAFF:  # teams go in one of their street's communities
        communities = db.session.execute(db.select(Community).where(
            Community.id.in_(permissions.own_communities(me))).order_by(Community.name)).scalars().all()
    compounds = _managed(Compound)
    company_ids = {c.company_id for c in compounds if c.company_id}
    companies = db.session.execute(db.select(Company).order_by(Company.name)).scalars().all()
    if me.role != Role.ADMIN:
        companies = [c for c in companies if c.id in company_ids]
    return render_template(
        "people/index.html", teams=_managed(Team), companies=companies,
        compounds=[c for c in compounds if c.archived_at is None],
        communities=communities,
        volunteers=db.session.execute(db.select(User).where(
            service.volunteer_filter(me, User)).order_by(User.display_name)).scalars().all(),
        accounts=db.session.execute(db.select(User).where(service.account_filter(me, User))
                                    .order_by(User.role, User.display_name)).scalars().all(),
        errors=errors or {}, values=values or {}, form=(values or {}).get("form")), status


@bp.get("")
@roles_required(*STAFF_OR_ADMIN)
def index():
    return _index()


def _int(value):
    return int(value) if value and str(value).isdigit() else None


@bp.post("/teams")
@roles_required(*STAFF_OR_ADMIN)
def create_team():
    form = request.form
    try:
        team = service.create_team(current_user, name=form.get("name"),
                                   community_id=_int(form.get("community_id")),
                                   compound_ids=[i for i in form.getlist("compound_ids") if i.isdigit()],
                                   now=utcnow())
    except service.Forbidden:
        abort(404)
    except service.PeopleInvalid as exc:
        db.session.rollback()
        return _index(_messages(exc), {**form.to_dict(), "form": "team"}, 422)
    db.session.commit()
    flash(_("Team %(name)s created.", name=team.name), "ok")
    return redirect(url_for("people.team", team_id=team.id))


@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@roles_required(*STAFF_OR_ADMIN)
def team(team_id):
    team = _team(team_id)
    errors = {}
    if request.method == "POST":
        form = request.form
        try:
            service.update_team(current_user, team, name=form.get("name"),
                                compound_ids=[i for i in form.getlist("compound_ids") if i.isdigit()],
                                now=utcnow())
        except service.PeopleInvalid as exc:
            db.session.rollback()
            errors = _messages(exc)
        else:
            db.session.commit()
            flash(_("Changes saved."), "ok")
            return redirect(url_for("people.team", team_id=team.id))
    compounds = db.session.execute(db.select(Compound).where(
        Compound.community_id == team.community_id, Compound.archived_at.is_(None))
        .order_by(Compound.name)).scalars().all()
    return render_template("people/team.html", team=team, compounds=compounds,
                           errors=errors), (422 if errors else 200)


@bp.route("/volunteers/<int:user_id>", methods=["GET", "POST"])
@roles_required(*STAFF_OR_ADMIN)
def volunteer(user_id):
    user = _account(user_id)
    if user.role != Role.VOLUNTEER:
        abort(404)
    errors = {}
    if request.method == "POST":
        form = request.form
        try:
            service.update_volunteer(current_user, user, display_name=form.get("display_name"),
                                     phone=form.get("phone"), title=form.get("title"),
                                     team_id=form.get("team_id") or None, now=utcnow())
        except service.PeopleInvalid as exc:
            db.session.rollback()
            errors = _messages(exc)
        else:
            db.session.commit()
            flash(_("Changes saved."), "ok")
            return redirect(url_for("people.volunteer", user_id=user.id))
    teams = db.session.execute(db.select(Team).where(
        Team.community_id == user.community_id).order_by(Team.name)).scalars().all()
    return render_template("people/volunteer.html", user=user, teams=teams, titles=TITLES,
                           errors=errors), (422 if errors else 200)


@bp.post("/accounts")
@roles_required(*STAFF_OR_ADMIN)
def create_account():
    form = request.form
    try:
        user = service.create_account(
            current_user, role=form.get("role"), username=form.get("username"),
            display_name=form.get("display_name"), password=form.get("password"),
            phone=form.get("phone"), community_id=_int(form.get("community_id")),
            company_id=_int(form.get("company_id")), compound_id=_int(form.get("compound_id")),
            now=utcnow())
    except service.Forbidden:
        abort(404)
    except service.PeopleInvalid as exc:
        db.session.rollback()
        values = {k: v for k, v in form.to_dict().items() if k != "password"}
        return _index(_messages(exc), {**values, "form": "account"}, 422)
    db.session.commit()
    flash(_("Account %(name)s created.", name=user.username), "ok")
    return redirect(url_for("people.account", user_id=user.id))


@bp.get("/accounts/<int:user_id>")
@roles_required(*STAFF_OR_ADMIN)
def account(user_id):
    user = _account(user_id)
    if user.role == Role.VOLUNTEER:
        return redirect(url_for("people.volunteer", user_id=user.id))
    return render_template("people/account.html", user=user, errors={})


@bp.post("/accounts/<int:user_id>/password")
@roles_required(*STAFF_OR_ADMIN)
def reset_password(user_id):
    user = _account(user_id)
    try:
        service.reset_password(current_user, user, request.form.get("password"), now=utcnow())
    except service.Forbidden:
        abort(404)
    except service.PeopleInvalid as exc:
        db.session.rollback()
        return render_template("people/account.html", user=user, errors=_messages(exc)), 422
    db.session.commit()
    flash(_("New password set; the account is signed out everywhere."), "ok")
    return redirect(url_for("people.account", user_id=user.id))


@bp.post("/users/<int:user_id>/deactivate")
@roles_required(*STAFF_OR_ADMIN)
def deactivate(user_id):
    user = _account(user_id)
    try:
        service.deactivate(current_user, user, now=utcnow())
    except service.Forbidden:
        abort(404)
    db.session.commit()
    flash(_("%(name)s is deactivated and signed out on every phone and browser.",
            name=user.display_name), "ok")
    return redirect(url_for("people.account", user_id=user.id))


@bp.post("/users/<int:user_id>/reactivate")
@roles_required(*STAFF_OR_ADMIN)
def reactivate(user_id):
    user = _account(user_id)
    try:
        service.reactivate(current_user, user, now=utcnow())
    except service.Forbidden:
        abort(404)
    db.session.commit()
    flash(_("%(name)s can sign in again.", name=user.display_name), "ok")
    return redirect(url_for("people.account", user_id=user.id))
