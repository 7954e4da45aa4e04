"""Ratings (星级物业): the red/black list, company scorecards (HTML and PDF), and the
community staff's escalation list. The figures come from patrol/scoring.py."""
from __future__ import annotations

from datetime import timedelta

from flask import (Blueprint, Response, abort, current_app, redirect, render_template, request,
                   url_for)
from flask_login import current_user

from .. import permissions, scoring
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Company, Compound, Item, utcnow
from ..services import escalation, ratings
from ..services.pdf import render_pdf
from .helpers import authorise, chosen_community, get_or_404, roles_required

bp = Blueprint("ratings", __name__)


def _period(now) -> scoring.Period:
    try:
        return scoring.Period.parse(request.args.get("period", ""))
    except ValueError:
        kind = "month" if request.args.get("kind") == "month" else "quarter"
        return ratings.default_period(now, kind)


def _community_scope(prefer=()) -> int | None:
    """Staff: their own community; street staff: one of their street's (?community=<id>,
    helpers.chosen_community). Admins: ?community=<id>, or the whole district."""
    if current_user.role in (Role.STAFF, Role.STREET_STAFF):
        return chosen_community(prefer)
    if current_user.role == Role.ADMIN:
        community_id = request.args.get("community", type=int)
        if community_id and db.session.get(Community, community_id):
            return community_id
    return None  # managers: their company everywhere


def _periods_nav(period: scoring.Period, now):
    """Links to the previous/next period and to the other kind (month ↔ quarter)."""
    latest = ratings.default_period(now, period.kind).shift(1)  # the current, running one
    other_kind = "month" if period.kind == "quarter" else "quarter"
    other = (scoring.Period(period.year, "month", period.first_month + period.months - 1)
             if other_kind == "month" else scoring.Period.containing(period.start_date, "quarter"))
    return {"prev": period.shift(-1), "next": period.shift(1) if period < latest else None,
            "other": other}


@bp.get("/ratings")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN, Role.MANAGER)
def index():
    if current_user.role == Role.MANAGER:
        if current_user.company_id is None:
            abort(403)
        return redirect(url_for("ratings.scorecard", **{
            **{k: v for k, v in request.args.items() if k in ("period", "kind")},
            "company_id": current_user.company_id}))
    if not permissions.can_see_ratings_list(current_user):
        abort(403)  # a staff account without a community: not the whole district
    now = utcnow()
    period = _period(now)
    community_id = _community_scope()
    result = ratings.rate_period(period, community_id=community_id, now=now)
    communities = []
    if current_user.role == Role.ADMIN:
        communities = db.session.execute(db.select(Community).order_by(Community.name)).scalars().all()
    elif len(own := permissions.own_communities(current_user)) > 1:  # street staff: pick one
        communities = db.session.execute(db.select(Community).where(Community.id.in_(own))
                                         .order_by(Community.name)).scalars().all()
    return render_template("ratings/index.html", r=result, period=period,
                           nav=_periods_nav(period, now), community_id=community_id,
                           communities=communities, constants=scoring,
                           community=db.session.get(Community, community_id) if community_id else None)


def _scorecard_context(company_id):
    company = get_or_404(Company, company_id)
    works_in = ratings.community_ids_of(company.id)
    authorise(permissions.can_see_scorecard, company, works_in)
    now = utcnow()
    period = _period(now)
    community_id = _community_scope(prefer=works_in)
    names = None
    if community_id is None:  # managers and district-wide admins: ranked among all companies
        names = ratings.companies_in(None)
    result = ratings.rate_period(period, community_id=community_id, names=names, now=now)
    figures = result.of(company.id)
    if figures is None:  # a company with no compound and no item in this community
        figures = scoring.figures(company.id, [], min_items=result.min_items)
    counts = ratings.monthly(company.id, period, community_id=community_id, now=now)
    return dict(company=company, r=result, f=figures, period=period, chart=scoring.bar_chart(counts),
                counts=counts, community_id=community_id, nav=_periods_nav(period, now),
                ranked=sum(1 for x in result.figures if x.rank is not None),
                community=db.session.get(Community, community_id) if community_id else None,
                weights=scoring.WEIGHTS, constants=scoring, now=now,
                period_last=period.end_date - timedelta(days=1))


@bp.get("/ratings/companies/<int:company_id>")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN, Role.MANAGER)
def scorecard(company_id):
    return render_template("ratings/scorecard.html", **_scorecard_context(company_id))


@bp.get("/ratings/companies/<int:company_id>/scorecard.pdf")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN, Role.MANAGER)
def scorecard_pdf(company_id):
    ctx = _scorecard_context(company_id)
    pdf = render_pdf("pdf/scorecard.html", **ctx)
    name = f"scorecard-{company_id}-{ctx['period'].code}.pdf"
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@bp.get("/escalations")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def escalations():
    now = utcnow()
    cfg = current_app.config
    scope = permissions.item_filter(current_user, Item)
    groups = escalation.groups(scope, now, ack_limit=cfg["ACK_ESCALATE"], horizon=cfg["DUE_SOON"])
    missed = escalation.patrols_missed(permissions.compound_filter(current_user, Compound), now)
    return render_template("ratings/escalations.html", groups=groups, now=now, missed=missed,
                           ack_hours="%g" % round(cfg["ACK_ESCALATE"].total_seconds() / 3600, 1))
