"""Residents (业主/居民): report without an account, keep a receipt link, rate the result;
and the triage queue where staff and volunteer leaders handle their reports.

The use cases are services/residents.py; this module reads requests, sets the device
cookie, applies the rate limits and draws the pages.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import uuid

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user

from .. import labels, permissions
from ..extensions import db, limiter
from ..lifecycle import Role, Status, TransitionError
from ..models import Compound, Item, ResidentReport, utcnow
from ..models.workflow import DECLINE_REASONS
from ..services import qr
from ..services import items as item_service
from ..services import residents as service
from .helpers import get_or_404, hazard_form, load_or_404, roles_required

bp = Blueprint("residents", __name__)

DEVICE_COOKIE = "patrol_device"
DEVICE_COOKIE_AGE = 2 * 365 * 24 * 3600
# Every send from one device (or, without the cookie, one address): a flood from one
# phone is refused early, without touching its neighbours behind the same Wi-Fi.
DEVICE_RATE_LIMIT = "10 per minute"
RESIDENT_ERROR = {
    "bad_phone": lambda: _("A phone number has only digits, spaces, + and -."),
    "archived": lambda: _("This compound is no longer on the patrol list."),
}


# --- the device cookie and the limits ---------------------------------------------------

def _device_id() -> str | None:
    value = request.cookies.get(DEVICE_COOKIE, "")
    return value if 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum() \
        else None


def _ensure_device() -> str:
    """This phone's random id (a long-lived HttpOnly cookie), made on first sight."""
    device = _device_id() or g.get("new_device")
    if device is None:
        device = g.new_device = secrets.token_urlsafe(24)
    return device


@bp.after_app_request
def _set_device_cookie(resp):
    if g.get("new_device"):
        resp.set_cookie(DEVICE_COOKIE, g.new_device, max_age=DEVICE_COOKIE_AGE, httponly=True,
                        samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
    return resp


def _device_key() -> str:
    device = _device_id()
    if device:
        return "resident-device:" + hashlib.sha256(device.encode()).hexdigest()
    return "resident-nodevice:" + get_remote_address()


def _address_key() -> str:
    return "resident-address:" + get_remote_address()


def _new_row(response) -> bool:
    """The per-address limit counts new rows in the triage queue, not every send: a
    phone's repeats collapse into its last report and cost its neighbours nothing."""
    return bool(g.get("resident_new_row"))


@bp.errorhandler(429)
def too_many(e):
    return render_template("error.html", code=429, title=_("Please wait a little"), message=_(
        "Many reports were sent from here just now. Please wait a few minutes and try "
        "again. Thank you for your patience.")), 429


def _compound(token) -> Compound:
    compound = db.session.execute(
        db.select(Compound).where(Compound.qr_token == token)).scalar_one_or_none()
    if compound is None:
        abort(404)
    return compound


def landing(compound):
    """The gate QR's page for a signed-out phone: residents report; volunteers sign in."""
    if compound.archived_at is not None:
        return render_template("compounds/archived.html", compound=compound), 410
    _ensure_device()
    return render_template("residents/landing.html", compound=compound)


# --- the resident's form ------------------------------------------------------------------

def _limits() -> service.Limits:
    cfg = current_app.config
    return service.Limits(device_limit=cfg["RESIDENT_DEVICE_LIMIT"],
                          max_photos=cfg["MAX_PHOTOS"], secret=cfg["SECRET_KEY"])


@bp.route("/c/<token>/report", methods=["GET", "POST"])
@limiter.limit(DEVICE_RATE_LIMIT, methods=["POST"], key_func=_device_key)
@limiter.limit(lambda: current_app.config["RESIDENT_RATE_LIMIT"], methods=["POST"],
               key_func=_address_key, deduct_when=_new_row)
def report(token):
    compound = _compound(token)
    if compound.archived_at is not None:
        return render_template("compounds/archived.html", compound=compound), 410
    device = _ensure_device()
    form = hazard_form()
    values: dict = {}
    out = service.SubmitOutcome()
    if request.method == "POST":
        values = request.form.to_dict()
        uploads = [service.Upload(f.filename or "", f.read())
                   for f in request.files.getlist("photos")[:current_app.config["MAX_PHOTOS"] + 1]]
        out = service.submit(compound, values, uploads, device, request.remote_addr, utcnow(),
                             _limits(), form=form)
        g.resident_new_row = out.created
        if out.conflict:
            return render_template("error.html", code=409, title=_("Conflict"), message=_(
                "A different report was already sent with this form. Please open the form "
                "again.")), 409
        if out.report is not None and out.token:
            return redirect(url_for("residents.receipt", token=out.token, new=1))
        if out.collapsed:
            return render_template("residents/collapsed.html", compound=compound)
    return render_template(
        "residents/report.html", compound=compound, form=form, values=values,
        client_uuid=service._uuid(values.get("client_uuid")) or str(uuid.uuid4()),
        errors=out.errors, photo_errors=[labels.PHOTO_ERROR.get(code, code)
                                         for _name, code in out.photo_errors],
        field_error=_field_errors(), max_photos=current_app.config["MAX_PHOTOS"],
        note_max=service.NOTE_MAX, phone_max=service.PHONE_MAX), \
        (422 if out.errors or out.photo_errors else 200)


def _field_errors() -> dict:
    return {**labels.FIELD_ERROR, **{k: v() for k, v in RESIDENT_ERROR.items()}}


# --- the receipt ----------------------------------------------------------------------------

def _receipt(token) -> ResidentReport:
    report = service.find_by_token(token)
    if report is None:
        abort(404)
    return report


@bp.route("/r/<token>", methods=["GET", "POST"])
@limiter.limit("60 per minute", key_func=_address_key)
def receipt(token):
    """Only this report: its status and public history in plain words, never a name or a
    phone number; a rating once its item is closed."""
    report = _receipt(token)
    if request.method == "POST":
        try:
            stars = int(request.form.get("stars", ""))
            service.rate(report, stars, utcnow())
            db.session.commit()
            flash(_("Thank you for your rating."), "ok")
        except (ValueError, TransitionError):
            db.session.rollback()
            flash(_("This rating could not be recorded."), "error")
        return redirect(url_for("residents.receipt", token=token))
    link = url_for("residents.receipt", token=token, _external=True)
    base = current_app.config.get("BASE_URL")
    if base:
        link = base.rstrip("/") + url_for("residents.receipt", token=token)
    item = service.final_item(report)
    return render_template(
        "residents/receipt.html", report=report, item=item, link=link,
        qr_svg=base64.b64encode(qr.svg(link)).decode(), new=request.args.get("new") == "1",
        steps=service.public_history(report), closed=service.closed(report),
        can_rate=service.can_rate(report), step_label=_step_label), \
        200


def _step_label(code: str) -> str:
    if code == "received":
        return _("Received")
    if code in labels.RESIDENT_STATUS:
        return str(labels.RESIDENT_STATUS[code])
    return str(labels.STATUS.get(code, code))


# --- the triage queue ---------------------------------------------------------------------

TRIAGERS = (Role.VOLUNTEER, Role.STAFF, Role.STREET_STAFF, Role.ADMIN)


def _triager():
    """Volunteers triage only as leaders (片长/组长); the role gate does the rest."""
    if current_user.role == Role.VOLUNTEER and \
            (current_user.title or "") not in permissions.LEADER_TITLES:
        abort(403)


@bp.get("/triage")
@roles_required(*TRIAGERS)
def queue():
    _triager()
    reports = db.session.execute(service.queue_query(current_user).limit(200)).scalars().all()
    return render_template("residents/triage.html", reports=reports,
                           reasons=DECLINE_REASONS)


@bp.get("/triage/<int:report_id>")
@roles_required(*TRIAGERS)
def show(report_id):
    _triager()
    report = load_or_404(ResidentReport, report_id, permissions.can_triage)
    return render_template("residents/triage_show.html", report=report,
                           candidates=service.open_items_like(report) if report.status == "pending" else [],
                           reasons=DECLINE_REASONS)


def _handle(report_id, do):
    _triager()
    report = load_or_404(ResidentReport, report_id, permissions.can_triage)
    try:
        message, target = do(report)
        db.session.commit()
    except TransitionError as exc:
        db.session.rollback()
        flash(str(labels.TRANSITION_ERROR.get(exc.code, labels.TRANSITION_ERROR["unknown"])),
              "error")
        return redirect(url_for("residents.show", report_id=report_id))
    except item_service.ConflictError:      # the chosen item changed at the same moment
        db.session.rollback()
        flash(_("The item you chose has just been changed by someone else. Please choose "
                "again."), "error")
        return redirect(url_for("residents.show", report_id=report_id))
    flash(message, "ok")
    return redirect(target)


@bp.post("/triage/<int:report_id>/accept")
@roles_required(*TRIAGERS)
def accept(report_id):
    def do(report):
        item = service.accept(report, current_user, utcnow(), hazard_form())
        return (_("Accepted: item No. %(id)s was created.", id=item.id),
                url_for("residents.queue"))
    return _handle(report_id, do)


@bp.post("/triage/<int:report_id>/support")
@roles_required(*TRIAGERS)
def support(report_id):
    def do(report):
        item = get_or_404(Item, request.form.get("item_id", type=int) or 0)
        service.support(report, item, current_user, utcnow(), form=hazard_form(),
                        window=current_app.config["VERIFY_WINDOW"])
        return (_("Added to item No. %(id)s as a supporting report.", id=item.id),
                url_for("residents.queue"))
    return _handle(report_id, do)


@bp.post("/triage/<int:report_id>/decline")
@roles_required(*TRIAGERS)
def decline(report_id):
    def do(report):
        service.decline(report, current_user, request.form.get("reason", ""), utcnow())
        return _("Declined."), url_for("residents.queue")
    return _handle(report_id, do)


@bp.app_context_processor
def _triage_helpers():
    def triage_count():
        """Pending residents' reports the signed-in user may triage (None: not a triager)."""
        if not current_user.is_authenticated or current_user.role not in TRIAGERS:
            return None
        if current_user.role == Role.VOLUNTEER and \
                (current_user.title or "") not in permissions.LEADER_TITLES:
            return None
        return service.queue_count(current_user)
    return {"triage_count": triage_count, "resident_status_label":
            lambda s: labels.RESIDENT_STATUS.get(s, s),
            "is_open_status": lambda s: Status(s).is_open}
