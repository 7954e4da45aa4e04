"""Community staff tools: volunteers, their invites and phones; compound QR tokens and posters."""
from __future__ import annotations

import base64

from flask import (Blueprint, Response, current_app, flash, redirect, render_template,
                   request, session, url_for)
from flask_babel import gettext as _
from flask_login import current_user

from .. import permissions
from ..extensions import db
from ..lifecycle import Role
from ..clock import utcnow
from ..models import Checkpoint, Compound, Device, Team, User
from ..models.patrols import CHECKPOINT_KINDS
from ..models.people import TITLES
from ..services import accounts, qr
from ..services import checkpoints as checkpoint_service
from ..services.posters import poster_pdf
from .helpers import load_or_404, roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _managed_volunteer(user_id) -> User:
    return load_or_404(User, user_id, permissions.can_manage_volunteer)


def _managed_compound(compound_id) -> Compound:
    return load_or_404(Compound, compound_id, permissions.can_manage_compound)


def _in_scope(query, model):
    """Admins see every community; staff only theirs (a staff account without one, which
    the CLI refuses to create, sees nothing rather than everything)."""
    return query.where(permissions.managed_filter(current_user, model))


VOLUNTEER_ERRORS = {
    "name": lambda: _("Please enter a name (at most 60 characters)."),
    "phone": lambda: _("Please enter a phone number using digits only."),
    "title": lambda: _("Please choose one of the options."),
    "team": lambda: _("Please choose a team."),
    "username_taken": lambda: _("This user name is taken."),
}


def _own_community():
    """Staff make volunteers in their own community; admins in the chosen team's."""
    return current_user.community_id if current_user.role == Role.STAFF else None


@bp.route("/volunteers", methods=["GET", "POST"])
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def volunteers():
    errors, values = {}, {}
    query = (db.select(User).where(permissions.volunteer_filter(current_user, User))
             .order_by(User.display_name))
    teams_q = _in_scope(db.select(Team).order_by(Team.name), Team)
    teams = db.session.execute(teams_q).scalars().all()
    if request.method == "POST":
        values = request.form.to_dict()
        team = next((t for t in teams if str(t.id) == values.get("team_id")), None)
        try:
            user, token = accounts.create_volunteer(
                display_name=values.get("display_name", ""), phone=values.get("phone"),
                title=values.get("title"), team=team, community_id=_own_community(),
                created_by=current_user, lifetime=current_app.config["INVITE_LIFETIME"])
        except accounts.VolunteerInvalid as exc:
            errors = {field: VOLUNTEER_ERRORS[code]() for field, code in exc.errors.items()}
        else:
            db.session.commit()
            return _show_invite_once(user, token)
    people = db.session.execute(query).scalars().all()
    return render_template("admin/volunteers.html", people=people, teams=teams,
                           titles=TITLES, errors=errors, values=values), (422 if errors else 200)


def _show_invite_once(user, token):
    """Post/redirect/get: reloading the page that shows the link must not create the
    volunteer (or another link) again. Only the hash is stored, so the raw link waits in
    this staff member's signed session until the next one replaces it."""
    session["invite_shown"] = [user.id, token]
    return redirect(url_for("admin.invite_link", user_id=user.id))


@bp.get("/volunteers/<int:user_id>/link")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def invite_link(user_id):
    user = _managed_volunteer(user_id)
    shown = session.get("invite_shown")
    if not shown or shown[0] != user.id:
        flash(_("That sign-in link is no longer shown here. Make a new one if needed."), "error")
        return redirect(url_for("admin.volunteer", user_id=user.id))
    try:
        accounts.find_invite(shown[1])
    except accounts.InviteError:  # used by the phone already, or expired: no use showing it
        session.pop("invite_shown", None)
        flash(_("That sign-in link has been used or has expired. Make a new one if needed."),
              "error")
        return redirect(url_for("admin.volunteer", user_id=user.id))
    link = f"{current_app.config['BASE_URL'].rstrip('/')}" + url_for("auth.invite", token=shown[1])
    qr_svg = base64.b64encode(qr.svg(link)).decode()
    hours = int(current_app.config["INVITE_LIFETIME"].total_seconds() // 3600)
    resp = current_app.make_response(render_template(
        "admin/invite.html", user=user, link=link, qr_svg=qr_svg, hours=hours))
    resp.headers["Cache-Control"] = "no-store"  # a live sign-in link
    return resp


@bp.get("/volunteers/<int:user_id>")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def volunteer(user_id):
    return render_template("admin/volunteer.html", user=_managed_volunteer(user_id))


@bp.post("/volunteers/<int:user_id>/invite")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def new_invite(user_id):
    user = _managed_volunteer(user_id)
    token = accounts.create_invite(user, current_user, current_app.config["INVITE_LIFETIME"])
    db.session.commit()
    return _show_invite_once(user, token)


@bp.post("/devices/<int:device_id>/revoke")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def revoke_device(device_id):
    device = load_or_404(Device, device_id, permissions.can_manage_device)
    user = device.user
    accounts.revoke_device(device, actor=current_user)
    db.session.commit()
    flash(_("The phone has been signed out."), "ok")
    return redirect(url_for("admin.volunteer", user_id=user.id))


@bp.get("/compounds")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def compounds():
    query = _in_scope(db.select(Compound).where(Compound.archived_at.is_(None))
                      .order_by(Compound.name), Compound)
    return render_template("admin/compounds.html",
                           compounds=db.session.execute(query).scalars().all())


@bp.post("/compounds/<int:compound_id>/rotate")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def rotate(compound_id):
    compound = _managed_compound(compound_id)
    compound.rotate_token()
    from ..services import audit
    audit.record(current_user, "compound.rotate_qr", compound, None, None, utcnow())  # no tokens
    db.session.commit()
    flash(_("New QR code created for %(name)s. Print and post the new poster: the old one no "
            "longer works.", name=compound.name), "ok")
    return redirect(url_for("admin.compounds"))


@bp.get("/compounds/<int:compound_id>/poster.pdf")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def poster(compound_id):
    compound = _managed_compound(compound_id)
    size = request.args.get("size", "A4") if request.args.get("size") in ("A4", "A5") else "A4"
    pdf = poster_pdf([compound], current_app.config["BASE_URL"], size=size)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="poster-{compound.id}.pdf"'})


@bp.post("/compounds/posters-job")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def posters_job():
    """Every compound on the QR codes page (all of the staff member's: hundreds for a
    street) as one poster PDF, made by the job queue; the job's page shows progress."""
    from ..jobs import runner
    query = _in_scope(db.select(Compound.id).where(Compound.archived_at.is_(None))
                      .order_by(Compound.name), Compound)
    ids = list(db.session.execute(query).scalars())
    if not ids:
        flash(_("There is no compound to print."), "error")
        return redirect(url_for("admin.compounds"))
    size = request.form.get("size") if request.form.get("size") in ("A4", "A5") else "A4"
    job = runner.submit("posters", user=current_user, total=len(ids),
                        title=_("Gate posters of %(n)s compounds (%(size)s)", n=len(ids),
                                size=size),
                        params={"compound_ids": ids, "size": size})
    return redirect(url_for("jobs.show", job_id=job.id))


# --- checkpoints (楼栋码, 消防通道码) ------------------------------------------------------------

CHECKPOINT_KIND_LABELS = {"building": lambda: _("Building (楼栋码)"),
                          "fire_exit": lambda: _("Fire exit (消防通道码)"),
                          "other": lambda: _("Other place")}
CHECKPOINT_ERRORS = {"name": lambda: _("Please enter a name (at most 50 characters)."),
                     "kind": lambda: _("Please choose one of the options."),
                     "building": lambda: _("Please choose a building of this compound.")}


@bp.route("/compounds/<int:compound_id>/checkpoints", methods=["GET", "POST"])
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def checkpoints(compound_id):
    """A compound's checkpoints: add one, archive one, print their stickers."""
    compound = _managed_compound(compound_id)
    errors, values = {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            checkpoint_service.create(
                current_user, compound, name=values.get("name", ""),
                kind=values.get("kind", ""),
                building_id=request.form.get("building_id", type=int), now=utcnow())
        except checkpoint_service.CheckpointInvalid as exc:
            errors = {field: CHECKPOINT_ERRORS[code]() for field, code in exc.errors.items()}
        else:
            db.session.commit()
            flash(_("Checkpoint added. Print its sticker and put it up."), "ok")
            return redirect(url_for("admin.checkpoints", compound_id=compound.id))
    rows = db.session.execute(
        db.select(Checkpoint).where(Checkpoint.compound_id == compound.id)
        .order_by(Checkpoint.archived_at.is_not(None), Checkpoint.kind, Checkpoint.name,
                  Checkpoint.id)).scalars().all()
    return render_template("admin/checkpoints.html", compound=compound, rows=rows,
                           kinds=[(k, CHECKPOINT_KIND_LABELS[k]()) for k in CHECKPOINT_KINDS],
                           kind_label=lambda k: CHECKPOINT_KIND_LABELS[k](),
                           errors=errors, values=values), (422 if errors else 200)


def _managed_checkpoint(checkpoint_id) -> Checkpoint:
    return load_or_404(Checkpoint, checkpoint_id,
                       lambda user, cp: permissions.can_manage_compound(user, cp.compound))


@bp.post("/checkpoints/<int:checkpoint_id>/archive")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def archive_checkpoint(checkpoint_id):
    checkpoint = _managed_checkpoint(checkpoint_id)
    checkpoint_service.archive(current_user, checkpoint, utcnow())
    db.session.commit()
    flash(_("Checkpoint %(name)s archived: its sticker no longer counts.", name=checkpoint.name),
          "ok")
    return redirect(url_for("admin.checkpoints", compound_id=checkpoint.compound_id))


@bp.get("/compounds/<int:compound_id>/checkpoints.pdf")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def checkpoint_stickers(compound_id):
    compound = _managed_compound(compound_id)
    rows = db.session.execute(
        db.select(Checkpoint).where(Checkpoint.compound_id == compound.id,
                                    Checkpoint.archived_at.is_(None))
        .order_by(Checkpoint.kind, Checkpoint.name, Checkpoint.id)).scalars().all()
    only = request.args.get("checkpoint", type=int)
    if only is not None:
        rows = [cp for cp in rows if cp.id == only]
    if not rows:
        flash(_("There is no checkpoint to print."), "error")
        return redirect(url_for("admin.checkpoints", compound_id=compound.id))
    pdf = checkpoint_service.stickers_pdf(rows, current_app.config["BASE_URL"])
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="checkpoints-{compound.id}.pdf"'})
