"""Places (区域管理): streets, communities, compounds, buildings and property companies,
created, renamed and archived by hand. Admins everywhere; street staff in their street;
community staff in their community (docs/security.md). Every act is in the audit log."""
from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_

from .. import permissions
from ..clock import utcnow
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Company, Compound, Street
from ..services import places
from ..services.posters import poster_pdf
from .helpers import get_or_404, roles_required

bp = Blueprint("places", __name__, url_prefix="/places")
MANAGERS = (Role.STAFF, Role.STREET_STAFF, Role.ADMIN)

ERRORS = {
    "name": lambda: _("Please enter a name (at most 100 characters)."),
    "taken": lambda: _("That name is already used here."),
    "address": lambda: _("The address is too long (at most 200 characters)."),
    "lat": lambda: _("Latitude is a number from -90 to 90."),
    "lon": lambda: _("Longitude is a number from -180 to 180."),
    "both": lambda: _("Please give both latitude and longitude, or neither."),
    "radius_m": lambda: _("The radius is a whole number of metres from 10 to 5000."),
    "choice": lambda: _("Please choose one of the options."),
    "phone": lambda: _("Please enter a phone number using digits only."),
    "credit_code": lambda: _("This is not a valid unified social credit code (18 characters)."),
    "range": lambda: _("Please write a range like 1-12栋 (at most 500 buildings)."),
    "long": lambda: _("A building name has at most 50 characters."),
    "empty": lambda: _("Please name at least one building, e.g. 1-12栋."),
}


def _errors(exc) -> dict:
    return {field: ERRORS[code]() for field, code in exc.errors.items()}


# Who manages what: one rule, permissions.can_manage_community (staff their community,
# street staff every community of their street, admins all); the lists below are the
# communities it allows, so list and page cannot disagree. Outside it: 404.

def _can_manage_community(user, community) -> bool:
    return permissions.can_manage_community(user, community.id)


def _can_manage_compound(user, compound) -> bool:
    return permissions.can_manage_community(user, compound.community_id)


def _can_manage_street(user, street) -> bool:
    """Adding communities to a street, renaming it: admins, and its street staff."""
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.STREET_STAFF and user.street_id is not None \
        and user.street_id == street.id


def _load(model, ident, can):
    obj = get_or_404(model, ident)
    if not can(current_user, obj):
        abort(404)
    return obj


def _communities():
    """The communities the user manages (a district has a few hundred at most)."""
    everyone = db.session.scalars(db.select(Community).order_by(Community.name)).all()
    if current_user.role == Role.ADMIN:
        return everyone
    return [c for c in everyone if permissions.can_manage_community(current_user, c.id)]


def _in_my_communities(query, model):
    if current_user.role == Role.ADMIN:
        return query
    return query.where(model.community_id.in_([c.id for c in _communities()]))


def _managed_compounds(archived=False):
    q = _in_my_communities(db.select(Compound), Compound)
    q = q.where(Compound.archived_at.is_not(None) if archived else Compound.archived_at.is_(None))
    return db.session.scalars(q.order_by(Compound.name)).all()


def _streets():
    if current_user.role == Role.ADMIN:
        return db.session.scalars(db.select(Street).order_by(Street.name)).all()
    if current_user.role == Role.STREET_STAFF and current_user.street_id:
        return [current_user.street]
    return []


def _companies():
    """The companies the user may choose and edit: admins every one; staff those working
    in their community or street, and those with no compound yet (just created)."""
    q = db.select(Company).order_by(Company.name)
    if current_user.role != Role.ADMIN:
        in_scope = _in_my_communities(
            db.select(Compound.company_id).where(Compound.company_id.is_not(None)), Compound)
        no_compound = ~db.select(Compound.id).where(Compound.company_id == Company.id).exists()
        q = q.where(or_(Company.id.in_(in_scope), no_compound))
    return db.session.scalars(q).all()


def _can_edit_company(user, company) -> bool:
    return user.role == Role.ADMIN or company in _companies()


@bp.get("/")
@roles_required(*MANAGERS)
def index():
    communities = _communities()
    compounds = _managed_compounds()
    by_community = {c.id: [] for c in communities}
    for compound in compounds:
        by_community.setdefault(compound.community_id, []).append(compound)
    return render_template("places/index.html", streets=_streets(), communities=communities,
                           by_community=by_community, archived=_managed_compounds(True),
                           companies=_companies(),
                           may_add_street=current_user.role == Role.ADMIN)


# --- streets and communities ---------------------------------------------------------------

@bp.post("/streets")
@roles_required(Role.ADMIN)
def create_street():
    return _index_after(lambda: places.create_street(current_user, request.form.get("name"),
                                                     utcnow()),
                        lambda street: _("Street %(name)s added.", name=street.name))


@bp.post("/streets/<int:street_id>/rename")
@roles_required(Role.STREET_STAFF, Role.ADMIN)
def rename_street(street_id):
    street = _load(Street, street_id, _can_manage_street)
    return _index_after(lambda: places.rename_street(current_user, street,
                                                     request.form.get("name"), utcnow()),
                        lambda _result: _("Saved."))


@bp.post("/streets/<int:street_id>/communities")
@roles_required(Role.STREET_STAFF, Role.ADMIN)
def create_community(street_id):
    street = _load(Street, street_id, _can_manage_street)
    return _index_after(lambda: places.create_community(current_user, street,
                                                        request.form.get("name"), utcnow()),
                        lambda community: _("Community %(name)s added.", name=community.name))


@bp.post("/communities/<int:community_id>/rename")
@roles_required(Role.STREET_STAFF, Role.ADMIN)
def rename_community(community_id):
    community = _load(Community, community_id, _can_manage_community)
    return _index_after(lambda: places.rename_community(current_user, community,
                                                        request.form.get("name"), utcnow()),
                        lambda _result: _("Saved."))


def _index_after(run, message):
    """Run one places service; commit and say `message(result)`, or go back with why not."""
    try:
        result = run()
    except places.PlacesInvalid as exc:
        return _back_with(exc)
    db.session.commit()
    flash(message(result), "ok")
    return redirect(url_for("places.index"))


def _back_with(exc):
    for message in _errors(exc).values():
        flash(message, "error")
    return redirect(url_for("places.index")), 303


# --- compounds -----------------------------------------------------------------------------

@bp.route("/communities/<int:community_id>/compounds/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new_compound(community_id):
    community = _load(Community, community_id, _can_manage_community)
    companies, errors, values = _companies(), {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            compound = places.create_compound(current_user, community, values, companies, utcnow())
            added = places.add_buildings(current_user, compound, values["buildings"], utcnow()) \
                if values.get("buildings", "").strip() else []
        except places.PlacesInvalid as exc:
            db.session.rollback()
            errors = _errors(exc)
        else:
            db.session.commit()
            flash(_("Compound %(name)s added with %(n)s buildings.", name=compound.name,
                    n=len(added)), "ok")
            return redirect(url_for("places.compound", compound_id=compound.id))
    return render_template("places/compound_form.html", community=community, compound=None,
                           companies=companies, errors=errors, values=values), \
        (422 if errors else 200)


def _managed_compound(compound_id) -> Compound:
    return _load(Compound, compound_id, _can_manage_compound)


@bp.route("/compounds/<int:compound_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def compound(compound_id):
    compound = _managed_compound(compound_id)
    companies, errors, values = _companies(), {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            changed = places.update_compound(current_user, compound, values, companies, utcnow())
        except places.PlacesInvalid as exc:
            db.session.rollback()
            errors = _errors(exc)
        else:
            db.session.commit()
            flash(_("Saved.") if changed else _("Nothing changed."), "ok")
            return redirect(url_for("places.compound", compound_id=compound.id))
    return render_template("places/compound_form.html", community=compound.community,
                           compound=compound, companies=companies, errors=errors,
                           values=values), (422 if errors else 200)


@bp.post("/compounds/<int:compound_id>/buildings")
@roles_required(*MANAGERS)
def add_buildings(compound_id):
    compound = _managed_compound(compound_id)
    try:
        added = places.add_buildings(current_user, compound, request.form.get("buildings"),
                                     utcnow())
    except places.PlacesInvalid as exc:
        db.session.rollback()
        for message in _errors(exc).values():
            flash(message, "error")
        return redirect(url_for("places.compound", compound_id=compound.id)), 303
    db.session.commit()
    flash(_("%(n)s buildings added.", n=len(added)), "ok")
    return redirect(url_for("places.compound", compound_id=compound.id))


@bp.post("/compounds/<int:compound_id>/archive")
@roles_required(*MANAGERS)
def archive(compound_id):
    compound = _managed_compound(compound_id)
    places.archive_compound(current_user, compound, utcnow())
    db.session.commit()
    flash(_("%(name)s is archived: it is gone from the lists and its QR code no longer "
            "works. Its history is kept.", name=compound.name), "ok")
    return redirect(url_for("places.index"))


@bp.post("/compounds/<int:compound_id>/restore")
@roles_required(*MANAGERS)
def restore(compound_id):
    compound = _managed_compound(compound_id)
    places.restore_compound(current_user, compound, utcnow())
    db.session.commit()
    flash(_("%(name)s is back in the lists.", name=compound.name), "ok")
    return redirect(url_for("places.compound", compound_id=compound.id))


@bp.get("/compounds/<int:compound_id>/poster.pdf")
@roles_required(*MANAGERS)
def poster(compound_id):
    compound = _managed_compound(compound_id)
    if compound.archived_at is not None:
        flash(_("This compound is archived."), "error")
        return redirect(url_for("places.compound", compound_id=compound.id))
    size = "A5" if request.args.get("size") == "A5" else "A4"
    pdf = poster_pdf([compound], current_app.config["BASE_URL"], size=size)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="poster-{compound.id}.pdf"'})


# --- property companies ------------------------------------------------------------------

@bp.route("/companies/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new_company():
    errors, values = {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            company = places.create_company(current_user, values, utcnow())
        except places.PlacesInvalid as exc:
            db.session.rollback()
            errors = _errors(exc)
        else:
            db.session.commit()
            flash(_("Property company %(name)s added.", name=company.name), "ok")
            back = request.args.get("community_id", type=int)
            if back:
                return redirect(url_for("places.new_compound", community_id=back))
            return redirect(url_for("places.index"))
    return render_template("places/company_form.html", company=None, errors=errors,
                           values=values), (422 if errors else 200)


@bp.route("/companies/<int:company_id>", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def company(company_id):
    company = _load(Company, company_id, _can_edit_company)
    errors, values = {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            changed = places.update_company(current_user, company, values, utcnow())
        except places.PlacesInvalid as exc:
            db.session.rollback()
            errors = _errors(exc)
        else:
            db.session.commit()
            flash(_("Saved.") if changed else _("Nothing changed."), "ok")
            return redirect(url_for("places.index"))
    return render_template("places/company_form.html", company=company, errors=errors,
                           values=values), (422 if errors else 200)
