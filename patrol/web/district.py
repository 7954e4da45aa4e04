"""District setup for community staff and admins: the district import from the web (the
template, an upload, its preview, a confirm that applies exactly what was previewed, the
new compounds' posters) and invite cards for a whole team.

The rules of who may import what live in services/district_uploads.py; this module parses
the request, calls the services, commits once and renders.
"""
from __future__ import annotations

from urllib.parse import quote

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from .. import permissions
from ..extensions import db
from ..importer.sheets import SHEETS
from ..lifecycle import Role
from ..models import Compound, Team
from ..services import district_uploads, invite_cards
from ..services.posters import poster_pdf
from .helpers import get_or_404, roles_required

bp = Blueprint("district", __name__, url_prefix="/district")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _attachment(filename: str, ascii_name: str) -> str:
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


REFUSALS = {
    "role": lambda p: _("Only administrators and community staff can import."),
    "places": lambda p: _("You can import the rows of your own community (%(own)s) only. "
                          "This file also has rows of: %(others)s.",
                          own=p["own"], others="、".join(p["others"])),
    "accounts": lambda p: _("Accounts (the 账号 sheet, rows %(rows)s) are imported by an "
                            "administrator.", rows=p["rows"]),
    "volunteers": lambda p: _("The volunteers on rows %(rows)s of the 志愿者 sheet belong to "
                              "another community (same phone number); an administrator can "
                              "move them.", rows=p["rows"]),
    "companies": lambda p: _("Only an administrator can change a property company already in "
                             "the system: %(changes)s", changes="；".join(p["changes"])),
    "outside": lambda p: _("The import would change data outside your community; nothing was "
                           "written."),
}


def in_words(refusals) -> list[str]:
    return [REFUSALS[r.code](r.params) for r in refusals]


def gone_message() -> str:
    return _("There is nothing to import here: this upload was already imported, or it is "
             "more than a day old. Upload the file again.")


def changed_message() -> str:
    return _("The data changed after the preview, so nothing was imported. Upload the file "
             "again to see what it would do now.")


def _managed_teams() -> list[Team]:
    teams = db.session.execute(db.select(Team).order_by(Team.name, Team.id)).scalars()
    return [t for t in teams if permissions.can_manage_community(current_user, t.community_id)]


def _import_page(errors=(), status=200):
    if not district_uploads.may_import(current_user):
        abort(403)
    return render_template("district/import.html", errors=list(errors)), status


@bp.context_processor
def _page_values():
    """The upload limit (the request limit, PATROL_MAX_UPLOAD_MB) and the staff member's
    own community, for the upload form and the rule shown next to it."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    own = district_uploads.own_place(current_user) if current_user.is_authenticated else ""
    size = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{max(1, limit // 1024)} KB"
    return {"max_bytes": limit, "max_size": size, "own": own}


# --- the hub ----------------------------------------------------------------------------

@bp.get("/")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def index():
    teams = _managed_teams()
    counts = invite_cards.member_counts(teams)
    hours = int(current_app.config["INVITE_LIFETIME"].total_seconds() // 3600)
    return render_template("district/index.html", teams=teams, counts=counts, hours=hours,
                           may_import=district_uploads.may_import(current_user))


# --- import -----------------------------------------------------------------------------

@bp.get("/import")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def import_page():
    return _import_page()


@bp.get("/import/template.xlsx")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def template():
    from ..importer.template import template_bytes
    return Response(template_bytes(), mimetype=XLSX, headers={
        "Content-Disposition": _attachment("导入模板.xlsx", "import-template.xlsx")})


@bp.post("/import")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def upload():
    if not district_uploads.may_import(current_user):
        abort(403)
    file = request.files.get("file")
    if file is None or not file.filename:
        return _import_page([_("Please choose a file (.xlsx or .csv).")], 400)
    data = file.read()
    result = district_uploads.preview(data, file.filename, current_user)
    db.session.rollback()     # the plan built objects; a preview writes nothing
    return render_template("district/preview.html", p=result, sheets=SHEETS,
                           out_of_scope=in_words(result.out_of_scope)), \
        (200 if result.ok else 422)


@bp.post("/import/<token>/confirm")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def confirm(token):
    """Queue the import of what was previewed (a job: the worker applies it, as this
    user) and show the job's page: its progress, then a link to what was imported."""
    if not district_uploads.may_import(current_user):
        abort(403)
    try:
        district_uploads.done(token, current_user)
        flash(_("This file was already imported; nothing was written again."), "ok")
        return redirect(url_for("district.done", token=token))
    except district_uploads.ImportGone:
        pass
    started = _import_job(token)
    if started is not None:               # a double tap, a reload: the same job
        return redirect(url_for("jobs.show", job_id=started.id))
    try:
        meta = district_uploads.pending(token, current_user)
    except district_uploads.ImportGone:
        return _import_page([gone_message()], 409)
    from ..i18n import current_lang
    from ..jobs import runner
    job = runner.submit("district_import", user=current_user, total=4,
                        title=_("Import of %(file)s", file=meta.get("filename") or ""),
                        params={"token": token, "lang": current_lang()})
    return redirect(url_for("jobs.show", job_id=job.id))


def _import_job(token):
    """This user's job importing upload `token`, unless it failed."""
    from ..models import Job
    jobs = db.session.execute(db.select(Job).where(
        Job.kind == "district_import", Job.created_by_id == current_user.id,
        Job.state != "failed").order_by(Job.id.desc()).limit(50)).scalars()
    return next((job for job in jobs if (job.params or {}).get("token") == token), None)


def _done_record(token):
    try:
        return district_uploads.done(token, current_user)
    except district_uploads.ImportGone:
        abort(404)


def _new_compounds(record) -> list[Compound]:
    """The compounds the import created, still there and still the user's to manage."""
    ids = record.get("compounds") or []
    if not ids:
        return []
    found = db.session.execute(
        db.select(Compound).where(Compound.id.in_(ids), Compound.archived_at.is_(None))
        .order_by(Compound.name, Compound.id)).scalars()
    return [c for c in found if permissions.can_manage_community(current_user, c.community_id)]


@bp.get("/import/<token>")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def done(token):
    record = _done_record(token)
    return render_template("district/done.html", record=record, token=token,
                           compounds=_new_compounds(record), sheets=SHEETS)


@bp.get("/import/<token>/posters.pdf")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def posters(token):
    compounds = _new_compounds(_done_record(token))
    if not compounds:
        abort(404)
    size = request.args.get("size") if request.args.get("size") in ("A4", "A5") else "A4"
    pdf = poster_pdf(compounds, current_app.config["BASE_URL"], size=size)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="posters-{size}.pdf"'})


@bp.post("/import/<token>/posters-job")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def posters_job(token):
    """The new compounds' posters made in the background (hundreds after a large import):
    the job's page shows the progress, then the file."""
    from ..jobs import runner
    compounds = _new_compounds(_done_record(token))
    if not compounds:
        abort(404)
    size = request.form.get("size") if request.form.get("size") in ("A4", "A5") else "A4"
    job = runner.submit("posters", user=current_user, total=len(compounds),
                        title=_("Gate posters of %(n)s new compounds (%(size)s)",
                                n=len(compounds), size=size),
                        params={"compound_ids": [c.id for c in compounds], "size": size})
    return redirect(url_for("jobs.show", job_id=job.id))


@bp.errorhandler(413)
def too_large(e):
    message = _("The file is too large (at most %(size)s). Keep only the sheets you import, "
                "or split it into several files.", size=_page_values()["max_size"])
    if current_user.is_authenticated and district_uploads.may_import(current_user):
        return _import_page([message], 413)
    return render_template("error.html", code=413, title=_("Upload too large"),
                           message=message), 413


# --- invite cards -----------------------------------------------------------------------

def _managed_team(team_id) -> Team:
    """A team the signed-in staff member manages (admins: any); others get 404."""
    team = get_or_404(Team, team_id)
    if not permissions.can_manage_community(current_user, team.community_id):
        abort(404)
    return team


@bp.post("/teams/<int:team_id>/cards-job")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def team_cards_job(team_id):
    """The district page's button: the team's new sign-in cards made by the job queue;
    the job's page shows the progress, then the PDF (downloaded once: live links)."""
    from ..jobs import runner
    team = _managed_team(team_id)
    count = invite_cards.member_counts([team])[team.id]
    if not count:
        flash(_("%(team)s has no volunteers yet.", team=team.name), "error")
        return redirect(url_for("district.index"))
    job = runner.submit("invite_cards", user=current_user, total=count,
                        title=_("Sign-in cards of %(team)s (%(n)s volunteers)",
                                team=team.name, n=count),
                        params={"team_id": team.id})
    return redirect(url_for("jobs.show", job_id=job.id))
