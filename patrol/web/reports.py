"""Printable weekly problem lists: a page to pick one, and the PDF download."""
from __future__ import annotations

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from .. import permissions
from ..extensions import db
from ..models import Community, Company, Compound, Item, utcnow
from ..services import weekly
from .helpers import hazard_form, roles_required

bp = Blueprint("reports", __name__, url_prefix="/reports")
SCOPES = {"compound": Compound, "company": Company, "community": Community}
PRINTERS = tuple(permissions.PRINT_WEEKLY.roles)
RECENT_WEEKS = 13  # a quarter: enough to reprint a lost list; older ones via ?week= or the CLI


@bp.app_context_processor
def _helpers():
    def can_print_weekly(scope, target):
        return (current_user.is_authenticated
                and permissions.can_print_weekly(current_user, scope, target))
    return {"can_print_weekly": can_print_weekly, "week_dates": week_dates}


def week_dates(week: weekly.Week) -> str:
    """"11月23日–11月29日" (English: "Nov 23 – Nov 29"): people know weeks by dates."""
    from babel.dates import format_skeleton
    from flask_babel import get_locale
    locale = get_locale()
    start, end = (format_skeleton("MMMd", d, locale=locale) for d in (week.monday, week.sunday))
    return f"{start}–{end}" if str(locale).startswith("zh") else f"{start} – {end}"


def _week_arg(value) -> weekly.Week:
    if not value:
        return weekly.Week.containing(utcnow(), current_app.config["TIMEZONE"])
    try:
        return weekly.Week.parse(value)
    except ValueError:
        abort(400)


def _target(scope, ident):
    model = SCOPES.get(scope)
    if model is None:
        abort(400)
    target = db.session.get(model, ident) if ident else None
    # Not found and not yours look the same: a list of another community is not
    # even confirmed to exist.
    if target is None or not permissions.can_print_weekly(current_user, scope, target):
        abort(404)
    if getattr(target, "archived_at", None) is not None:  # an archived compound: not offered
        abort(404)
    return target


def printable_targets(user):
    """[(scope, target)] the user may print, widest first."""
    return [(scope, target) for scope in ("community", "company", "compound")
            for target in db.session.execute(
                db.select(SCOPES[scope]).where(permissions.print_filter(user, scope, SCOPES[scope]))
                .order_by(SCOPES[scope].name)).scalars()
            if getattr(target, "archived_at", None) is None]


@bp.get("/weekly")
@roles_required(*PRINTERS)
def weekly_index():
    """Pick a list; `?target=compound:12&week=2026-W48` sends to the PDF."""
    if request.args.get("target"):
        scope, _, ident = request.args["target"].partition(":")
        week = _week_arg(request.args.get("week"))
        return redirect(url_for("reports.weekly_pdf", scope=scope,
                                id=ident if ident.isdigit() else 0, week=week.label))
    this_week = weekly.Week.containing(utcnow(), current_app.config["TIMEZONE"])
    weeks = [this_week]
    while len(weeks) < RECENT_WEEKS:
        weeks.append(weeks[-1].previous())
    return render_template("reports/weekly.html", targets=printable_targets(current_user),
                           this_week=this_week, last_week=weeks[1], weeks=weeks)


@bp.get("/weekly.pdf")
@roles_required(*PRINTERS)
def weekly_pdf():
    scope = request.args.get("scope", "")
    target = _target(scope, request.args.get("id", type=int))
    week = _week_arg(request.args.get("week"))
    cfg = current_app.config
    report = weekly.build(scope, target, week, now=utcnow(), tz=cfg["TIMEZONE"],
                          form=hazard_form(), ack_limit=cfg["ACK_ESCALATE"],
                          visible=permissions.item_filter(current_user, Item))
    # Rendered in the request's own language (Chinese unless the user chose English).
    pdf = weekly.render_pdf(report, base_url=cfg["BASE_URL"], tz=cfg["TIMEZONE"])
    filename = f"weekly-{week.label}-{scope}-{target.id}.pdf"
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store"})


@bp.post("/weekly/batch")
@roles_required(*PRINTERS)
def weekly_batch():
    """One week's list of every compound the user may print, one after another in one
    PDF, made by the job queue (a street's hundreds of compounds take minutes); the
    job's page shows progress and then the file (docs/jobs.md)."""
    from ..jobs import runner
    week = _week_arg(request.form.get("week"))
    ids = [t.id for scope, t in printable_targets(current_user) if scope == "compound"]
    if not ids:
        flash(_("There is no compound to print."), "error")
        return redirect(url_for("reports.weekly_index"))
    from ..display import current_lang
    job = runner.submit("weekly", user=current_user, total=len(ids),
                        title=_("Weekly lists of %(n)s compounds, %(week)s", n=len(ids),
                                week=week_dates(week)),
                        params={"week": week.label, "compound_ids": ids,
                                "lang": current_lang()})
    return redirect(url_for("jobs.show", job_id=job.id))
