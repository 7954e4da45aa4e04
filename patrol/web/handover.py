"""Handing a compound to another property company (物业更换): staff (their community) and
admins. The page parses, calls services/handover.py, commits and shows the result."""
from __future__ import annotations

from datetime import date

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm.exc import StaleDataError

from ..clock import local_date
from .. import permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import Company, Compound, utcnow
from ..services import handover as service
from ..services.people_admin import community_filter
from .helpers import get_or_404, roles_required

bp = Blueprint("handover", __name__)

ERRORS = {
    ("company", "missing"): lambda: _("Please choose the new property company."),
    ("company", "same"): lambda: _("The compound is already managed by this property company."),
    ("effective_on", "missing"): lambda: _("Please enter the date the new company takes over."),
    ("effective_on", "future"): lambda: _(
        "The date is in the future: record the handover on or after that day."),
    ("effective_on", "before_period"): lambda: _(
        "The date must be after the start of the current company's period."),
    ("choice", "bad_choice"): lambda: _("Please choose one of the options."),
    ("actor", "forbidden"): lambda: _("You cannot hand over this compound."),
    ("items", "reported_after"): lambda: _(
        "Items were reported for the current company on or after that date: choose a later "
        "date."),
}


def _compound(compound_id) -> Compound:
    """Outside the user's community: 404, like every management page (docs/security.md)."""
    compound = get_or_404(Compound, compound_id)
    if not permissions.can_manage_community(current_user, compound.community_id):
        abort(404)
    return compound


@bp.get("/handover")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def index():
    compounds = db.session.execute(
        db.select(Compound).where(community_filter(current_user, Compound),
                                  Compound.archived_at.is_(None))
        .order_by(Compound.name)).scalars().all()
    return render_template("handover/index.html", compounds=compounds)


def _page(compound, *, errors=(), values=None, status=200):
    return render_template(
        "handover/compound.html", compound=compound, errors=list(errors), values=values or {},
        items=service.open_items(compound), periods=service.contracts(compound),
        companies=db.session.execute(db.select(Company).order_by(Company.name)).scalars().all(),
        today=local_date(utcnow(), current_app.config["TIMEZONE"]),
        choices=service.CHOICES), status


@bp.route("/compounds/<int:compound_id>/handover", methods=["GET", "POST"])
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def compound(compound_id):
    compound = _compound(compound_id)
    if request.method == "GET":
        return _page(compound)
    form = request.form
    company = None
    if form.get("company_id", "").isdigit():
        company = db.session.get(Company, int(form["company_id"]))
    try:
        day = date.fromisoformat(form.get("effective_on", ""))
    except ValueError:
        day = None
    choices = {int(k.removeprefix("choice_")): v for k, v in form.items()
               if v and k.startswith("choice_") and k.removeprefix("choice_").isdigit()}
    try:
        done = service.hand_over(compound, company, day, actor=current_user, now=utcnow(),
                                 tz=current_app.config["TIMEZONE"],
                                 default_choice=form.get("choice", service.TRANSFER),
                                 choices=choices, note=form.get("note"))
        db.session.commit()
    except service.HandoverInvalid as exc:
        db.session.rollback()
        messages = [ERRORS.get((k, v), lambda: _("Please check the form."))()
                    for k, v in exc.errors.items()]
        return _page(compound, errors=messages, values=form, status=422)
    except StaleDataError:      # an open item was acted on at the same moment
        db.session.rollback()
        return _page(compound, errors=[_("An open item of this compound changed just now. "
                                         "Please check the list and hand over again.")],
                     values=form, status=409)
    flash(_("%(compound)s is managed by %(company)s from %(day)s: %(moved)d open items passed "
            "on, %(closed)d closed.", compound=compound.name, company=done.new_company.name,
            day=done.effective_on.isoformat(), moved=len(done.transferred),
            closed=len(done.closed)), "ok")
    return redirect(url_for("handover.compound", compound_id=compound.id))
