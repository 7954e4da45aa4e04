"""Reporting hazards and acting on items. Views parse, check access, call services, commit."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from .. import labels, lifecycle, permissions
from ..extensions import db
from ..formdefs.submission import validate_submission
from ..lifecycle import Action, TransitionError
from ..models import Compound, Item, Photo, utcnow
from ..services import items as item_service
from ..services.photo_store import save_upload
from ..services.photos import PhotoRejected
from .helpers import form_for, get_or_404, hazard_form, parse_local, parse_time

bp = Blueprint("items", __name__)


def _float(name):
    try:
        value = float(request.form.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None  # NaN or ∞ is no location


def count_photos(field: str) -> int:
    """How many photos this request brings for `field`, without reading them (kept ids
    counted as collect_photos takes them: valid and each once)."""
    return len(set(_kept_ids(field))) + sum(1 for f in request.files.getlist(field)
                                            if f and f.filename)


def _kept_ids(field: str) -> list[int]:
    return [int(i) for i in request.form.getlist(f"kept_{field}")
            if i.isascii() and i.isdigit() and len(i) < 10]


def collect_photos(field: str, kind: str):
    """Store this request's uploads (kept even if the form has other errors).

    Returns (photos, [error messages]). Photos the user sent in an earlier,
    failed attempt come back as `kept_<field>` ids and are reused, so a retry
    never asks for a photo twice.
    """
    photos, errors = [], []
    kept_ids = _kept_ids(field)
    if kept_ids:
        photos.extend(db.session.execute(
            db.select(Photo).where(Photo.id.in_(kept_ids), Photo.uploader_id == current_user.id,
                                   Photo.item_id.is_(None))).scalars())
    lat, lon = _float("lat"), _float("lon")
    for upload in request.files.getlist(field):
        if not upload or not upload.filename and not upload.content_length:
            continue
        data = upload.read()
        if not data and not upload.filename:
            continue
        try:
            photos.append(save_upload(data, uploader=current_user, kind=kind, lat=lat, lon=lon))
        except PhotoRejected as exc:
            errors.append(f"{upload.filename or _('photo')}: {labels.PHOTO_ERROR[exc.code]}")
    if photos:
        db.session.flush()
    return photos, errors


@dataclass
class ReportOutcome:
    item: Item | None = None
    duplicate: bool = False
    conflict: bool = False
    errors: dict = field(default_factory=dict)
    photo_errors: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    kept_after: list = field(default_factory=list)


def sync_mode() -> bool:
    """The page's offline queue sends forms in the background and wants JSON back."""
    return request.headers.get("X-Patrol-Sync") == "1"


def parse_device_at(form) -> datetime | None:
    """When the phone says the user acted (`device_at`), on the server's clock.

    The outbox also sends the phone's clock at sending (`sent_at`); the difference
    to our clock corrects a phone that runs fast or slow. None when the form has no
    device time; TransitionError("device_time") when it is malformed or implausible.
    """
    if not form.get("device_at"):
        return None
    now = utcnow()
    acted, sent = parse_time(form.get("device_at"), "UTC"), parse_time(form.get("sent_at"), "UTC")
    if acted is None:
        raise TransitionError("device_time", "malformed device time")
    if sent is not None and acted <= sent:
        acted += now - sent
    return item_service.device_time(acted, now, current_app.config["OFFLINE_MAX_AGE"])


def _earlier_send(compound, form, values, client_uuid) -> ReportOutcome | None:
    """The answer for a resend of a form that already arrived (its item, or a conflict)."""
    try:
        earlier = item_service.find_resent(
            client_uuid, reporter=current_user, compound=compound,
            clean=validate_submission(form, values, building_ids={b.id for b in compound.buildings},
                                      photo_count=0, max_photos=current_app.config["MAX_PHOTOS"])[0],
            photo_count=count_photos("photos"))
    except item_service.ConflictError:
        return ReportOutcome(conflict=True)
    return ReportOutcome(item=earlier, duplicate=True) if earlier else None


def submit_report(compound, form, values) -> ReportOutcome:
    cfg = current_app.config
    client_uuid = _uuid(values.get("client_uuid"))
    earlier = _earlier_send(compound, form, values, client_uuid)
    if earlier:
        return earlier
    out = ReportOutcome()
    photos, out.photo_errors = collect_photos("photos", "before")
    on_spot = values.get("fixed_on_spot") == "1"
    after, after_errors = collect_photos("after_photos", "after") if on_spot else ([], [])
    out.photo_errors += after_errors
    clean, out.errors = validate_submission(
        form, values, building_ids={b.id for b in compound.buildings},
        photo_count=len(photos), max_photos=cfg["MAX_PHOTOS"])
    now = utcnow()
    try:
        device_at = parse_device_at(values)
    except TransitionError:  # a report is worth keeping even if the phone's clock is off
        device_at = None
    if on_spot:
        if not after:
            out.errors["after_photos"] = "required_photo"
        if not item_service.latest_presence(current_user, compound.id, device_at or now,
                                            cfg["VERIFY_WINDOW"]):
            out.errors["fixed_on_spot"] = "presence"
    if out.errors or out.photo_errors:
        # Two sends of one form at once: the other may have arrived since we looked, and
        # claimed the kept photos (so this one found none). It is the duplicate it is.
        earlier = _earlier_send(compound, form, values, client_uuid)
        if earlier:
            db.session.rollback()
            return earlier
        db.session.commit()  # keep the photos already received for the retry
        out.kept, out.kept_after = photos, after
        return out
    try:
        out.item, out.duplicate = _report_once(form, compound, clean, photos, after, on_spot,
                                               now, client_uuid, device_at)
    except item_service.ConflictError:
        db.session.rollback()
        return ReportOutcome(conflict=True)
    return out


@bp.route("/compounds/<int:compound_id>/report", methods=["GET", "POST"])
@login_required
def report(compound_id):
    compound = get_or_404(Compound, compound_id)
    if not permissions.can_report(current_user, compound):
        abort(403)
    form = hazard_form()
    values, out = {}, ReportOutcome()
    if request.method == "POST":
        values = request.form.to_dict()
        out = submit_report(compound, form, values)
        if sync_mode():
            return report_json(out)
        if out.conflict:
            return _conflict()
        if out.item:
            flash(_("Reported. Thank you! Item No. %(id)s.", id=out.item.id), "ok")
            return redirect(url_for("compounds.show", compound_id=compound.id))
    return render_template("items/report.html", compound=compound, form=form, values=values,
                           client_uuid=_uuid(values.get("client_uuid")) or str(uuid.uuid4()),
                           errors=out.errors, photo_errors=out.photo_errors, kept=out.kept,
                           kept_after=out.kept_after, max_photos=current_app.config["MAX_PHOTOS"],
                           field_error=labels.FIELD_ERROR), \
        (422 if out.errors or out.photo_errors else 200)


def report_json(out: ReportOutcome):
    if out.conflict:
        return jsonify(error=_("A different report was already sent with this form.")), 409
    if out.item:
        flash(_("Reported. Thank you! Item No. %(id)s.", id=out.item.id), "ok")
        return jsonify(id=out.item.id, duplicate=out.duplicate,
                       url=url_for("compounds.show", compound_id=out.item.compound_id)), \
            (200 if out.duplicate else 201)
    messages = {name: str(labels.FIELD_ERROR.get(code, labels.FIELD_ERROR["required"]))
                for name, code in out.errors.items()}
    if out.errors.get("fixed_on_spot") == "presence":
        messages["fixed_on_spot"] = _("To record a fix on the spot, first scan the QR code at "
                                      "this compound's gate.")
    return jsonify(errors=messages, photo_errors=out.photo_errors,
                   error=" ".join([*messages.values(), *out.photo_errors])), 422


def _uuid(value):
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _conflict():
    return render_template("error.html", code=409, title=_("Conflict"), message=_(
        "A different report was already sent with this form. Please open the report page "
        "again.")), 409


def _report_once(form, compound, clean, photos, after, on_spot, now, client_uuid, device_at):
    """Create the item; if the same form arrives twice at once, the unique key decides.

    Returns (item, duplicate)."""
    cfg = current_app.config
    try:
        item = item_service.report(form=form, compound=compound, reporter=current_user,
                                   clean=clean, photos=photos, now=now, client_uuid=client_uuid,
                                   device_at=device_at)
        if on_spot:
            item_service.act(item, Action.FIX_ON_SPOT, current_user, now,
                             item_service.ActionInput(photos=after, device_at=device_at),
                             form=form, window=cfg["VERIFY_WINDOW"])
        db.session.commit()
    except IntegrityError:  # the same form arrived twice at the same moment
        db.session.rollback()
        item = item_service.find_resent(client_uuid, reporter=current_user, compound=compound,
                                        clean=clean, photo_count=len(photos))
        if item is None:
            raise
        return item, True
    return item, False


def _item_for(user, item_id):
    item = get_or_404(Item, item_id)
    if not permissions.can_see_item(user, item):
        abort(403)
    return item


def _page(item, *, status=200, error=None, kept=(), values=None):
    cfg = current_app.config
    now = utcnow()
    actions = []
    if permissions.can_act_on_item(current_user, item):
        actions = [a.value for a in lifecycle.allowed_actions(item.status, current_user.role)
                   if a != Action.FIX_ON_SPOT]
    presence = None
    if {"verify", "reopen"} & set(actions):
        presence = item_service.latest_presence(current_user, item.compound_id, now,
                                                cfg["VERIFY_WINDOW"])
    merge_targets = []
    if "merge" in actions:
        merge_targets = db.session.execute(
            db.select(Item).where(Item.compound_id == item.compound_id, Item.id != item.id,
                                  Item.status.in_([s.value for s in lifecycle.OPEN]))
            .order_by(Item.id.desc()).limit(50)).scalars().all()
    form = form_for(item)
    category = form.category(item.category)
    default_deadline = item_service._default_deadline(item, form, now)
    return render_template(
        "items/show.html", item=item, actions=actions, presence=presence, now=now,
        error=error, kept=kept, values=values or {}, merge_targets=merge_targets,
        default_deadline=default_deadline, category=category,
        reopen_reasons=lifecycle.REOPEN_REASONS, reject_reasons=lifecycle.REJECT_REASONS,
        extend_reasons=lifecycle.EXTEND_REASONS,
        window_minutes=int(cfg["VERIFY_WINDOW"] / timedelta(minutes=1)),
    ), status


@bp.get("/items/<int:item_id>")
@login_required
def show(item_id):
    return _page(_item_for(current_user, item_id))


@bp.post("/items/<int:item_id>/act")
@login_required
def act(item_id):
    item = _item_for(current_user, item_id)
    if not permissions.can_act_on_item(current_user, item):
        abort(403)
    try:
        action = Action(request.form.get("action", ""))
    except ValueError:
        abort(400)
    if action == Action.FIX_ON_SPOT:
        abort(400)  # only while reporting: it closes the reporter's own new item
    photos, photo_errors = collect_photos("photos", "after")
    db.session.commit()  # photos survive whatever happens next
    values = request.form.to_dict()
    if photo_errors:
        return _refused(item, 422, " ".join(photo_errors), photos, values)
    given = item_service.ActionInput(
        note=values.get("note"), reason=values.get("reason"),
        deadline=parse_local(values.get("deadline")),
        target_id=request.form.get("target_id", type=int), photos=photos,
        version=request.form.get("version", type=int), rating=request.form.get("rating", type=int),
        client_uuid=_uuid(values.get("client_uuid")))
    try:
        given.device_at = parse_device_at(values)
        _act_once(item, action, given)
    except item_service.ConflictError:
        db.session.rollback()
        return _refused(db.session.get(Item, item_id), 409, _(
            "Someone else has just updated this item. Its current state is shown below; "
            "please check it before trying again."), photos, {})
    except TransitionError as exc:
        db.session.rollback()
        message = str(labels.TRANSITION_ERROR.get(exc.code, exc.code))
        if exc.code == "missing_evidence":
            needed = [str(labels.EVIDENCE[e]) for e in exc.detail.split(",")]
            message = _("Still needed: %(what)s.", what=_(", ").join(needed))
        return _refused(db.session.get(Item, item_id), 409 if exc.code == "bad_state" else 422,
                        message, photos, values)
    flash(_("Saved: %(action)s.", action=labels.ACTION[action.value]), "ok")
    if action in (Action.VERIFY, Action.REOPEN) and current_user.role == "volunteer":
        target = url_for("compounds.show", compound_id=item.compound_id)
    else:
        target = url_for("items.show", item_id=item.id)
    if sync_mode():
        return jsonify(id=item.id, status=item.status, url=target)
    return redirect(target)


def _act_once(item, action, given):
    """Apply the action; if the same form arrives twice at once, the unique key decides."""
    try:
        item_service.act(item, action, current_user, utcnow(), given, form=form_for(item),
                         window=current_app.config["VERIFY_WINDOW"])
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        item = db.session.get(Item, item.id)
        if not item_service.find_repeated(given.client_uuid, item=item, actor=current_user,
                                          action=action):
            raise


def _refused(item, status, message, photos, values):
    if sync_mode():
        return jsonify(error=message), status
    return _page(item, status=status, error=message, kept=photos, values=values)
