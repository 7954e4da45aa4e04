"""Reporting hazards and acting on items. Views parse, check access, call services, commit."""
from __future__ import annotations

import math
import uuid
from datetime import timedelta

from flask import (Blueprint, abort, current_app, flash, jsonify, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from .. import labels, lifecycle, permissions
from ..extensions import db
from ..i18n import current_lang
from ..lifecycle import Action, Role, TransitionError
from ..models import Compound, Department, Item, utcnow
from ..services import items as item_service
from .helpers import authorise, form_for, hazard_form, load_or_404, parse_local
from .sync import error_json, parse_device_at, wants_json

bp = Blueprint("items", __name__)


@bp.app_template_global()
def item_answers(item) -> list[tuple[str, str]]:
    """The item's extra answers as (label, text), labelled by the form version it was
    made with (the item page and the weekly list show them; autoescaped)."""
    return form_for(item).answer_rows(item.answers, current_lang())


def _float(name):
    try:
        value = float(request.form.get(name, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None  # NaN or ∞ is no location


def _photo_send(field: str) -> item_service.PhotoSend:
    """The photos this request brings for `field`: uploads, and the ids of photos kept
    from an earlier, refused send (`kept_<field>`)."""
    return item_service.PhotoSend(
        uploads=[f for f in request.files.getlist(field)
                 if f and (f.filename or f.content_length)],
        kept_ids=[int(i) for i in request.form.getlist(f"kept_{field}")
                  if i.isascii() and i.isdigit() and len(i) < 10])


def _photo_messages(refused) -> list[str]:
    """(field, file name, code) refusals → "p.jpg: The photo is too large." """
    return [f"{name or _('photo')}: {labels.PHOTO_ERROR[code]}" for _field, name, code in refused]


def _report_send(values) -> item_service.ReportSend:
    try:
        device_at = parse_device_at(values)
    except TransitionError:  # a report is worth keeping even if the phone's clock is off
        device_at = None
    return item_service.ReportSend(
        values=values, client_uuid=_uuid(values.get("client_uuid")),
        photos=_photo_send("photos"), after_photos=_photo_send("after_photos"),
        lat=_float("lat"), lon=_float("lon"), device_at=device_at)


@bp.route("/compounds/<int:compound_id>/report", methods=["GET", "POST"])
@login_required
def report(compound_id):
    compound = load_or_404(Compound, compound_id, permissions.can_report)
    form = hazard_form()
    values, out = {}, item_service.ReportOutcome()
    if request.method == "POST":
        values = request.form.to_dict()
        cfg = current_app.config
        out = item_service.submit_report(
            form=form, compound=compound, reporter=current_user, sent=_report_send(values),
            now=utcnow(), max_photos=cfg["MAX_PHOTOS"], window=cfg["VERIFY_WINDOW"])
        if wants_json():
            return report_json(out, compound_id)
        if out.conflict:
            return _conflict()
        if out.item:
            flash(_("Reported. Thank you! Item No. %(id)s.", id=out.item.id), "ok")
            return redirect(url_for("compounds.show", compound_id=compound.id))
    return render_template("items/report.html", compound=compound, form=form, values=values,
                           client_uuid=_uuid(values.get("client_uuid")) or str(uuid.uuid4()),
                           errors=out.errors, photo_errors=_photo_messages(out.photo_errors),
                           kept=out.kept,
                           kept_after=out.kept_after, max_photos=current_app.config["MAX_PHOTOS"],
                           field_error=labels.FIELD_ERROR,
                           open_items=suggestions(compound)), \
        (422 if out.errors or out.photo_errors else 200)


def report_json(out: item_service.ReportOutcome, compound_id: int):
    if out.conflict:
        return error_json(409, "resent_different",
                          _("A different report was already sent with this form."))
    if out.item:
        # The item's id from its identity, and its compound the one reported in (a resend
        # found in another is a conflict): rows the commit expired are not read again.
        item_id = db.inspect(out.item).identity[0]
        flash(_("Reported. Thank you! Item No. %(id)s.", id=item_id), "ok")
        return jsonify(id=item_id, duplicate=out.duplicate,
                       url=url_for("compounds.show", compound_id=compound_id)), \
            (200 if out.duplicate else 201)
    messages = {name: str(labels.FIELD_ERROR.get(code, labels.FIELD_ERROR["required"]))
                for name, code in out.errors.items()}
    if out.errors.get("fixed_on_spot") == "presence":
        messages["fixed_on_spot"] = _("To record a fix on the spot, first scan the QR code at "
                                      "this compound's gate.")
    photo_errors = _photo_messages(out.photo_errors)
    fields = dict(messages)
    for name in ("photos", "after_photos"):
        refused = _photo_messages(r for r in out.photo_errors if r[0] == name)
        if refused:
            fields[name] = " ".join([*filter(None, [fields.get(name)]), *refused])
    return error_json(422, "invalid", " ".join([*messages.values(), *photo_errors]),
                      fields=fields, errors=messages, photo_errors=photo_errors)


def _uuid(value):
    try:
        return str(uuid.UUID(value)) if value else None
    except ValueError:
        return None


def _conflict():
    return render_template("error.html", code=409, title=_("Conflict"), message=_(
        "A different report was already sent with this form. Please open the report page "
        "again.")), 409


def _item_for(item_id):
    return load_or_404(Item, item_id, permissions.can_see_item)


def _page(item, *, status=200, error=None, kept=(), values=None):
    cfg = current_app.config
    now = utcnow()
    actions = _offered_actions(item)
    route_departments = []
    if "route" in actions:
        route_departments = [d for d in db.session.execute(
            db.select(Department).where(Department.active.is_(True)).order_by(Department.name)
        ).scalars() if d.id != item.department_id and item_service.department_in_reach(d, item)]
        if not route_departments and not (item.department_id and item.company_id):
            actions.remove("route")     # nowhere to send it
    presence = None
    if {"verify", "reopen"} & set(actions):
        presence = item_service.on_the_spot(current_user, item.compound_id, now=now,
                                            device_at=None, window=cfg["VERIFY_WINDOW"])
    merge_targets = []
    if "merge" in actions:
        merge_targets = db.session.execute(
            db.select(Item).where(Item.compound_id == item.compound_id, Item.id != item.id,
                                  Item.status.in_([s.value for s in lifecycle.OPEN]))
            .order_by(Item.id.desc()).limit(50)).scalars().all()
    form = form_for(item)
    category = form.category(item.category)
    default_deadline = item_service.default_deadline(item, form, now)
    return render_template(
        "items/show.html", item=item, actions=actions, presence=presence, now=now,
        error=error, kept=kept, values=values or {}, merge_targets=merge_targets,
        default_deadline=default_deadline, category=category,
        # in the words of the form version the item was reported with
        category_name=form.label(category, current_lang()) if category else item.category,
        reopen_reasons=lifecycle.REOPEN_REASONS, reject_reasons=lifecycle.REJECT_REASONS,
        extend_reasons=lifecycle.EXTEND_REASONS, route_reasons=lifecycle.ROUTE_REASONS,
        dispute_decisions=lifecycle.DISPUTE_DECISIONS, flag_reasons=lifecycle.FLAG_REASONS,
        route_departments=route_departments, last_event=_last_event(item),
        departments=_departments_named(item),
        window_minutes=int(cfg["VERIFY_WINDOW"] / timedelta(minutes=1)),
    ), status


# The actions the item page offers as forms (fix on the spot is the report form's;
# supporting reports come from the report form's duplicate suggestion and triage).
NOT_ON_PAGE = frozenset({Action.FIX_ON_SPOT, Action.SUPPORT})


def _offered_actions(item) -> list[str]:
    """What the signed-in user may do to this item now: the lifecycle table's actions for
    the item's state and the user's role, each through its own object check
    (services/items.OBJECT_CHECK), the responsible party's actions only for that party,
    and nothing a precondition of services/items.act() would refuse."""
    user = current_user
    offered = []
    for action in lifecycle.allowed_actions(item.status, user.role):
        if action in NOT_ON_PAGE:
            continue
        if not item_service.OBJECT_CHECK.get(action, permissions.can_act_on_item)(user, item):
            continue
        if (action.value in permissions.RESPONSIBLE_ACTIONS
                and Role(user.role) in (Role.MANAGER, Role.DEPARTMENT)
                and not permissions.is_responsible(user, item)):
            continue
        if action == Action.DECIDE_DISPUTE and item.disputed_at is None:
            continue
        if action == Action.DISPUTE and item.disputed_at is not None:
            continue
        if action == Action.FLAG and item.flagged_at is not None:
            continue
        if action == Action.UNFLAG and item.flagged_at is None:
            continue
        if action == Action.APPROVE_ANSWER and not any(
                e.action == Action.ANSWER.value for e in item.events):
            continue
        offered.append(action.value)
    return offered


def _last_event(item):
    """{action: its latest history entry}, for the dispute and 督办 banners and the answer."""
    latest = {}
    for ev in item.events:
        latest[ev.action] = ev
    return latest


def _departments_named(item) -> dict:
    """The departments the history's hand-overs name, by id."""
    ids = {ev.data.get("department_id") for ev in item.events if ev.action == "route"}
    ids = {i for i in ids if isinstance(i, int)}
    if item.department_id:
        ids.add(item.department_id)
    if not ids:
        return {}
    return {d.id: d for d in db.session.execute(
        db.select(Department).where(Department.id.in_(ids))).scalars()}


@bp.get("/items/<int:item_id>")
@login_required
def show(item_id):
    return _page(_item_for(item_id))


@bp.post("/items/<int:item_id>/act")
@login_required
def act(item_id):
    item = _item_for(item_id)
    try:
        action = Action(request.form.get("action", ""))
    except ValueError:
        abort(400)
    # The committee replies and flags without acting otherwise: each action's own check.
    authorise(item_service.OBJECT_CHECK.get(action, permissions.can_act_on_item), item)
    if action == Action.FIX_ON_SPOT:
        abort(400)  # only while reporting: it closes the reporter's own new item
    photos, refused = item_service.store_photos(_photo_send("photos"), uploader=current_user,
                                                kind="after", lat=_float("lat"), lon=_float("lon"))
    db.session.commit()  # photos survive whatever happens next
    values = request.form.to_dict()
    if refused:
        message = " ".join(_photo_messages(("photos", *r) for r in refused))
        return _refused(item, 422, "photo_rejected", message, photos, values,
                        fields={"photos": message})
    given = item_service.ActionInput(
        note=values.get("note"), reason=values.get("reason"),
        deadline=parse_local(values.get("deadline")),
        target_id=request.form.get("target_id", type=int), photos=photos,
        version=request.form.get("version", type=int), rating=request.form.get("rating", type=int),
        client_uuid=_uuid(values.get("client_uuid")),
        department_id=_party_department(values),
        to_company=values.get("to_company") == "1" or values.get("party") == "company")
    try:
        given.device_at = parse_device_at(values)
        item_service.act_once(item, action, current_user, utcnow(), given, form=form_for(item),
                              window=current_app.config["VERIFY_WINDOW"])
    except item_service.ConflictError:
        db.session.rollback()
        return _refused(db.session.get(Item, item_id), 409, "stale", _(
            "Someone else has just updated this item. Its current state is shown below; "
            "please check it before trying again."), photos, {})
    except TransitionError as exc:
        db.session.rollback()
        message = str(labels.TRANSITION_ERROR.get(exc.code, exc.code))
        if exc.code == "missing_evidence":
            needed = [str(labels.EVIDENCE[e]) for e in exc.detail.split(",")]
            message = _("Still needed: %(what)s.", what=_(", ").join(needed))
        return _refused(db.session.get(Item, item_id), 409 if exc.code == "bad_state" else 422,
                        exc.code, message, photos, values)
    flash(_("Saved: %(action)s.", action=labels.ACTION[action.value]), "ok")
    if action in (Action.VERIFY, Action.REOPEN) and current_user.role == Role.VOLUNTEER:
        target = url_for("compounds.show", compound_id=item.compound_id)
    else:
        target = url_for("items.show", item_id=item.id)
    if wants_json():
        return jsonify(id=item.id, status=item.status, url=target)
    return redirect(target)


def _party_department(values) -> int | None:
    """Route's destination: `department_id`, or the page's one radio group `party`
    (a department's id, or "company" for back to the property company)."""
    for key in ("department_id", "party"):
        value = values.get(key) or ""
        if value.isascii() and value.isdigit() and len(value) < 10:
            return int(value)
    return None


def _refused(item, status, code, message, photos, values, fields=None):
    if wants_json():
        return error_json(status, code, message, fields=fields)
    return _page(item, status=status, error=message, kept=photos, values=values)


# --- the same problem again (N 人反映) ----------------------------------------------

SUGGESTED = 200   # open items embedded in the report page for the duplicate suggestion


def suggestions(compound) -> list[dict]:
    """The compound's open items, embedded in the report page (kept for offline use) so
    the form can ask "是同一个问题吗？" without signal: id, category, building, thumbnail."""
    rows = db.session.execute(
        db.select(Item).where(Item.compound_id == compound.id,
                              Item.status.in_([s.value for s in lifecycle.OPEN]))
        .order_by(Item.created_at.desc(), Item.id.desc()).limit(SUGGESTED)
        .options(selectinload(Item.photos))).scalars().all()
    out = []
    for item in rows:
        before = next((p for p in item.photos if p.kind == "before"), None)
        out.append({"id": item.id, "category": item.category, "building": item.building_id,
                    "thumb": url_for("photos.serve", photo_id=before.id, size="thumb")
                    if before else None,
                    "reports": item.support_count + 1,
                    "status": str(labels.STATUS.get(item.status, item.status))})
    return out


@bp.post("/items/<int:item_id>/support")
@login_required
def support(item_id):
    """"同一个": a supporting report of an open item, from the report form (its photos and
    note), instead of a new item. Sent by the outbox like a report: idempotent by the
    form's client_uuid."""
    item = _item_for(item_id)
    authorise(permissions.can_report, item.compound)   # who may report there may support
    if item.compound.archived_at is not None:
        abort(403)
    photos, refused = item_service.store_photos(_photo_send("photos"), uploader=current_user,
                                                kind="before", lat=_float("lat"),
                                                lon=_float("lon"))
    db.session.commit()  # photos survive whatever happens next
    values = request.form.to_dict()
    if refused:
        message = " ".join(_photo_messages(("photos", *r) for r in refused))
        return _support_refused(item, 422, "photo_rejected", message, fields={"photos": message})
    note = (values.get("note") or "").strip()[:500] or None
    given = item_service.ActionInput(note=note, photos=photos,
                                     client_uuid=_uuid(values.get("client_uuid")))
    try:
        given.device_at = parse_device_at(values)
    except TransitionError:
        given.device_at = None      # a report is worth keeping even if the clock is off
    try:
        # The same form sent again (a lost answer) gets the first send's success.
        duplicate = item_service.find_repeated(given.client_uuid, item=item,
                                               actor=current_user,
                                               action=Action.SUPPORT) is not None
        item_service.act_once(item, Action.SUPPORT, current_user, utcnow(), given,
                              form=form_for(item), window=current_app.config["VERIFY_WINDOW"])
    except item_service.ConflictError:
        db.session.rollback()
        return _support_refused(item, 409, "resent_different", _(
            "A different report was already sent with this form."))
    except TransitionError as exc:
        db.session.rollback()
        status = 403 if exc.code.startswith("forbidden") else (
            409 if exc.code == "bad_state" else 422)
        if exc.code == "bad_state":
            message = _("This problem has just been closed. Please report it as a new one.")
        else:
            message = str(labels.TRANSITION_ERROR.get(exc.code, exc.code))
        return _support_refused(item, status, exc.code, message)
    item = db.session.get(Item, item_id)
    target = url_for("compounds.show", compound_id=item.compound_id)
    message = _("Added to No.%(id)s: %(n)s reports of this problem.", id=item.id,
                n=item.support_count + 1)
    if wants_json():
        flash(message, "ok")
        return jsonify(id=item.id, support_count=item.support_count,
                       reports=item.support_count + 1, url=target), (200 if duplicate else 201)
    flash(message, "ok")
    return redirect(target)


def _support_refused(item, status, code, message, fields=None):
    if wants_json():
        return error_json(status, code, message, fields=fields)
    return render_template("error.html", code=status, title=_("Not added"),
                           message=message), status
