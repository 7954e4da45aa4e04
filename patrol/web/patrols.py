"""Patrols in the field (巡查): start, checkpoint scans, end with the one-tap summary,
the patrol's page, and staff's list of scans recorded far away (位置不符).

Views parse, check who may see or change THIS object, call services/patrols.py, commit.
Every state change is a POST with CSRF; the phone's outbox sends the same forms later
(`X-Patrol-Sync: 1`, answered in JSON: web/sync.py), with `device_at` and `client_uuid`.
"""
from __future__ import annotations

import uuid

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from .. import labels, permissions
from ..extensions import db, limiter
from ..lifecycle import Role, TransitionError
from ..models import (Checkpoint, CheckpointScan, Compound, Item, ItemEvent, Patrol,
                      PatrolMember, Presence, User, utcnow)
from ..services import checkpoints as checkpoint_service
from ..services import patrols as patrol_service
from . import residents
from .helpers import authorise, get_or_404, load_or_404, roles_required, unknown_code
from .sync import (error_json, form_location, parse_device_at, refuse_offline_scan,
                   required_device_at, wants_json)

bp = Blueprint("patrols", __name__)

SUMMARY_LABELS = {"none": lambda: _("No problems"), "found": lambda: _("Problems found"),
                  "unfinished": lambda: _("Not finished")}
FOUND_MAX = 999


def can_see_patrol(user, patrol) -> bool:
    """A patrol is seen by whoever sees its compound (refused: 404, like other records)."""
    return permissions.can_see_compound(user, patrol.compound)


@bp.app_template_global()
def summary_label(summary: str | None) -> str:
    return SUMMARY_LABELS[summary]() if summary in SUMMARY_LABELS else ""


@bp.app_template_global()
def report_patrol_id(item) -> int | None:
    """The patrol the item was reported on (its report event's), for those who may see it."""
    report = next((e for e in item.events if e.action == "report"), None)
    if report is None or report.patrol_id is None:
        return None
    return report.patrol_id if permissions.can_see_compound(current_user, item.compound) else None


def _uuid(value):
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _when():
    """The phone's time of a queued tap, or now. A start or an end is worth keeping even
    when the phone's clock is off: it then counts from when it reached us."""
    try:
        return parse_device_at(request.form) or utcnow()
    except TransitionError:
        return utcnow()


def _refused(status, code, message, back):
    if wants_json():
        return error_json(status, code, message)
    flash(message, "error")
    return redirect(back)


def _transition_refused(exc: TransitionError, back):
    if exc.code == "forbidden_object":
        return _refused(403, "forbidden_object", _("Only the volunteers on this patrol can "
                                                   "end it."), back)
    if exc.code == "conflict":
        return _refused(409, "resent_different", _("This form was already sent for another "
                                                   "patrol."), back)
    if exc.code == "missing_evidence":
        message = _("Please choose how the patrol went.")
        if wants_json():
            return error_json(422, "invalid", message, fields={"summary": message})
        flash(message, "error")
        return redirect(back)
    return _refused(409, "bad_state", labels.TRANSITION_ERROR.get(exc.code, exc.code), back)


# --- start and end ------------------------------------------------------------------------

@bp.post("/patrols/start")
@login_required
def start():
    """开始巡查: join the team's patrol under way here, or start one."""
    compound = load_or_404(Compound, request.form.get("compound", type=int) or 0,
                           permissions.can_see_compound)
    back = url_for("compounds.show", compound_id=compound.id)
    if compound.archived_at is not None:
        return _refused(410, "compound_archived", _("This compound is archived."), back)
    if not permissions.can_record_presence(current_user, compound):
        if wants_json():
            return error_json(403, "forbidden_role", _("Only volunteers and community staff "
                                                       "patrol compounds."))
        abort(403)
    try:
        patrol, started = patrol_service.start(current_user, compound, _when(),
                                               client_uuid=_uuid(request.form.get("client_uuid")))
    except TransitionError as exc:
        db.session.rollback()
        return _transition_refused(exc, back)
    db.session.commit()
    flash(_("Patrol started. Scan the checkpoints as you walk; tap “End patrol” when done.")
          if started else _("You have joined the patrol under way."), "ok")
    if wants_json():
        return jsonify(id=patrol.id, started=started, url=back), (201 if started else 200)
    return redirect(back)


def _end(patrol: Patrol, back):
    summary = request.form.get("summary", "")
    found = request.form.get("found_count", type=int)
    if found is not None:
        found = min(max(found, 0), FOUND_MAX)
    try:
        patrol_service.end(patrol, current_user, _when(), summary=summary, found_count=found)
    except TransitionError as exc:
        db.session.rollback()
        return _transition_refused(exc, back)
    db.session.commit()
    flash(_("Patrol ended. Thank you!"), "ok")
    url = url_for("patrols.show", patrol_id=patrol.id)
    if wants_json():
        return jsonify(id=patrol.id, url=url), 200
    return redirect(url)


@bp.post("/patrols/<int:patrol_id>/end")
@login_required
def end(patrol_id):
    """结束巡查 with its summary. Only members end it; ending again changes nothing."""
    patrol = load_or_404(Patrol, patrol_id, can_see_patrol)
    return _end(patrol, url_for("compounds.show", compound_id=patrol.compound_id))


@bp.post("/compounds/<int:compound_id>/patrol/end")
@login_required
def end_here(compound_id):
    """The same, from a phone that started the patrol without signal and so knows no
    patrol id: the user's patrol in this compound at the phone's time of the tap. The
    outbox sends it after the start and the scans queued before it (offline.js)."""
    compound = load_or_404(Compound, compound_id, permissions.can_see_compound)
    back = url_for("compounds.show", compound_id=compound.id)
    patrol = patrol_service.member_patrol(current_user, compound.id, _when(),
                                          patrol_service.config().quiet)
    if patrol is None:
        return _refused(409, "bad_state", _("You have no patrol under way in this compound."),
                        back)
    return _end(patrol, back)


# --- checkpoints ----------------------------------------------------------------------------

def _checkpoint_by_token(token) -> Checkpoint | None:
    return db.session.execute(
        db.select(Checkpoint).where(Checkpoint.qr_token == token)).scalar_one_or_none()


@bp.route("/k/<token>", methods=["GET", "POST"])
def checkpoint_scan(token):
    """A checkpoint sticker (楼栋码, 消防通道码) scanned: recorded on the user's patrol
    (which it starts if none is under way), then the compound's page.

    As for the gate QR (web/compounds.scan): a link from another site asks for one tap
    (POST + CSRF) instead of recording a scan the phone never made."""
    checkpoint = _checkpoint_by_token(token)
    if checkpoint is None:
        return unknown_code()
    compound = checkpoint.compound
    if not current_user.is_authenticated:
        return residents.landing(compound)
    authorise(permissions.can_see_compound, compound)
    if compound.archived_at is not None:
        return render_template("compounds/archived.html", compound=compound), 410
    if checkpoint.archived_at is not None:
        return render_template("patrols/checkpoint_archived.html", checkpoint=checkpoint), 410
    records = permissions.can_record_presence(current_user, compound)
    if records and request.method == "GET" and request.headers.get("Sec-Fetch-Site") == "cross-site":
        return render_template("patrols/checkpoint_confirm.html", checkpoint=checkpoint,
                               token=token)
    scan = None
    if records:
        scan, _created = patrol_service.scan_checkpoint(current_user, checkpoint, utcnow())
        db.session.commit()
    return redirect(url_for("compounds.show", compound_id=compound.id,
                            checkpoint_scan=scan.id if scan else None))


@bp.post("/patrols/checkpoint-scans/<int:scan_id>/location")
@login_required
def checkpoint_location(scan_id):
    """The page adds the phone's location to the checkpoint scan it just made."""
    scan = get_or_404(CheckpointScan, scan_id)
    if scan.user_id != current_user.id or scan.lat is not None:
        abort(403)
    lat, lon, accuracy = form_location()
    if lat is None or lon is None:
        abort(400)
    patrol_service.judge_checkpoint_scan(scan, lat, lon, accuracy)
    db.session.commit()
    return jsonify(ok=True)


@bp.post("/sync/checkpoint")
@login_required
@limiter.limit("60 per minute")
def sync_checkpoint():
    """A checkpoint scanned without signal: its token, the phone's time and location."""
    checkpoint = _checkpoint_by_token(request.form.get("token", ""))
    if checkpoint is None:
        return error_json(404, "not_found", _("This QR code does not belong to any checkpoint."))
    compound = checkpoint.compound
    refusal = refuse_offline_scan(
        compound, _("Only volunteers and community staff record checkpoint scans."))
    if refusal is None:
        device_at, refusal = required_device_at()
    if refusal is not None:
        return refusal
    lat, lon, accuracy = form_location()
    try:
        scan, created = patrol_service.scan_checkpoint(
            current_user, checkpoint, utcnow(), device_at=device_at,
            lat=lat, lon=lon, accuracy=accuracy,
            client_uuid=_uuid(request.form.get("client_uuid")))
    except TransitionError as exc:
        db.session.rollback()
        if exc.code == "conflict":
            return error_json(409, "resent_different",
                              _("This record was already sent for another checkpoint."))
        return error_json(409, "bad_state", _("This checkpoint sticker is no longer in use."))
    db.session.commit()
    return jsonify(id=scan.id, patrol=scan.patrol_id, compound=compound.id), \
        (201 if created else 200)


# --- pages ----------------------------------------------------------------------------------

@bp.get("/patrols/<int:patrol_id>")
@login_required
def show(patrol_id):
    patrol = load_or_404(Patrol, patrol_id, can_see_patrol)
    members = db.session.execute(
        db.select(PatrolMember, User).join(User, User.id == PatrolMember.user_id)
        .where(PatrolMember.patrol_id == patrol.id).order_by(PatrolMember.joined_at)).all()
    scans = db.session.execute(
        db.select(CheckpointScan, Checkpoint, User)
        .join(Checkpoint, Checkpoint.id == CheckpointScan.checkpoint_id)
        .join(User, User.id == CheckpointScan.user_id)
        .where(CheckpointScan.patrol_id == patrol.id)
        .order_by(db.func.coalesce(CheckpointScan.device_at, CheckpointScan.at))).all()
    far_gates = db.session.execute(
        db.select(Presence, User).join(User, User.id == Presence.user_id)
        .where(Presence.patrol_id == patrol.id, Presence.far.is_(True))
        .order_by(Presence.at)).all()
    events = db.session.execute(
        db.select(ItemEvent, Item).join(Item, Item.id == ItemEvent.item_id)
        .where(ItemEvent.patrol_id == patrol.id).order_by(ItemEvent.at, ItemEvent.id)).all()
    checkpoints = patrol_service.checkpoints_of(patrol.compound_id)
    scanned = patrol_service.scanned_checkpoint_ids(patrol)
    is_member = any(m.user_id == current_user.id for m, _u in members)
    return render_template(
        "patrols/show.html", patrol=patrol, members=members, scans=scans, far_gates=far_gates,
        reports=[(e, i) for e, i in events if e.action in ("report", "support")],
        checks=[(e, i) for e, i in events if e.action in ("verify", "reopen")],
        checkpoints=checkpoints, scanned=scanned,
        under_way=patrol.ended_by != "tapped" and patrol.ended_at is None,
        can_end=is_member and patrol.ended_by != "tapped")


@bp.get("/patrols/flagged")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.ADMIN)
def flagged():
    """位置不符: gate and checkpoint scans recorded far from their compound, in the
    communities the user manages."""
    rows = checkpoint_service.flagged_scans(permissions.managed_filter(current_user, Compound))
    return render_template("patrols/flagged.html", rows=rows,
                           radius_default=current_app.config["PRESENCE_DEFAULT_RADIUS_M"])
