"""The owners' committee (业委会): the monthly rating of the company's work at their
compound. Flags (督办) and replies are on the item page; the weekly list is
web/reports.py's; receivers are web/notifications.py's."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..extensions import db
from ..lifecycle import Role
from ..models import CommitteeRating, utcnow
from ..services import committee as service
from .helpers import roles_required

bp = Blueprint("committee", __name__, url_prefix="/committee")


def _message(code: str) -> str:
    return {
        "no_company": _("This compound has no property company to rate."),
        "already_rated": _("You have already rated this month. Thank you!"),
        "stars": _("Please choose 1 to 5 stars."),
        "note": _("The note is too long (at most 300 characters)."),
    }.get(code, _("Please choose one of the options."))


@bp.route("/rating", methods=["GET", "POST"])
@roles_required(Role.COMMITTEE)
def rating():
    compound = service.rated_compound(current_user)
    if compound is None:
        abort(403)      # a committee account without a compound
    now, tz = utcnow(), current_app.config["TIMEZONE"]
    month = service.rating_month(now, tz)
    error, status = None, 200
    if request.method == "POST":
        try:
            service.rate(current_user, stars=request.form.get("stars"),
                         note=request.form.get("note"), now=now, tz=tz)
        except service.RatingRefused as exc:
            db.session.rollback()
            error = _message(exc.code)
            status = 409 if exc.code == "already_rated" else 422
        else:
            db.session.commit()
            flash(_("Thank you: your rating for %(month)s is recorded.",
                    month=month.strftime("%Y-%m")), "ok")
            return redirect(url_for("committee.rating"))
    past = db.session.execute(db.select(CommitteeRating).where(
        CommitteeRating.user_id == current_user.id,
        CommitteeRating.compound_id == compound.id)
        .order_by(CommitteeRating.month.desc()).limit(12)).scalars().all()
    return render_template("committee/rating.html", compound=compound, month=month,
                           current=service.this_months(current_user, compound, month),
                           past=past, error=error, values=request.form), status
