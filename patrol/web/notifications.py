"""Notification receivers (webhooks, WeCom group robots, e-mail) and their deliveries.

Staff manage their community's receivers and its patrol teams' (a team's group robot
hears of fixes waiting for its look-back), managers their company's, committee members
their compound's, department users their department's, admins all
(permissions.MANAGE_ENDPOINTS).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import labels, notify, permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import (Community, Company, Compound, Delivery, Department, NotifyEndpoint, Team,
                      utcnow)
from ..services import receivers
from .helpers import load_or_404, roles_required

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
bp.add_app_template_global(lambda k: labels.NOTIFY_KIND.get(k, k), "kind_label")
bp.add_app_template_global(lambda e: labels.NOTIFY_EVENT.get(e, e), "event_label")
bp.add_app_template_global(lambda s: labels.DELIVERY_STATUS.get(s, s), "delivery_status_label")


OWNER_MODELS: dict[str, Any] = {"community": Community, "company": Company, "compound": Compound,
                "dept": Department, "team": Team}
# Roles with one owner of their own: a receiver they add is that owner's (staff may
# choose one of their community's teams instead).
OWN_OWNER = {Role.STAFF: "community", Role.MANAGER: "company", Role.COMMITTEE: "compound",
             Role.DEPARTMENT: "dept"}
MANAGERS = (Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.COMMITTEE, Role.DEPARTMENT,
            Role.ADMIN)


def _owners() -> dict:
    """{kind: the communities, companies, compounds, departments or teams the user may
    attach a receiver to}."""
    return {kind: db.session.execute(
        db.select(model).where(permissions.endpoint_owner_filter(current_user, kind, model))
        .order_by(model.name)).scalars().all()
        for kind, model in OWNER_MODELS.items()}


def owner_name(endpoint) -> str:
    """Whose receiver it is, for the list."""
    owners: tuple = (endpoint.community, endpoint.company, endpoint.compound,
                     endpoint.department, endpoint.team)
    for owner in owners:
        if owner is not None:
            return owner.name
    return ""


bp.add_app_template_global(owner_name, "endpoint_owner_name")


def _receiver_error(code: str) -> str:
    if code == "name":
        return _("Please enter a name (at most 60 characters).")
    if code == "no_events":
        return _("Choose at least one kind of message.")
    if code == "bad_owner":
        code = "bad_kind"  # "Please choose one of the options."
    return str(labels.TARGET_ERROR[code])


def _parse_owner(value: str, owners: dict):
    kind, _sep, ident = (value or "").partition(":")
    return kind, next((o for o in owners.get(kind, ()) if str(o.id) == ident), None)


@bp.route("", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def index():
    if not permissions.can_manage_endpoints(current_user):
        abort(403)  # staff without a community, a manager without a company, …
    owners = _owners()
    cfg = current_app.config
    errors, values = {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        name = values.get("name", "").strip()
        kind = values.get("kind", "")
        events = [e for e in request.form.getlist("events") if e in notify.EVENTS]
        owner_kind, owner = _parse_owner(values.get("owner"), owners)
        own = OWN_OWNER.get(Role(current_user.role))
        if own and (owner is None or owner_kind != "team"):  # their own, whatever was sent
            owner_kind, owner = own, next(iter(owners[own]), None)
        try:
            receivers.add_receiver(actor=current_user, name=name, kind=kind,
                                   target=values.get("target", ""), events=events, owner=owner,
                                   email_enabled=bool(cfg.get("SMTP_HOST")))
        except receivers.ReceiverInvalid as exc:
            errors = {field: _receiver_error(code) for field, code in exc.errors.items()}
        else:
            db.session.commit()
            flash(_("Receiver “%(name)s” added.", name=name), "ok")
            return redirect(url_for("notifications.index"))
    scope = permissions.endpoint_filter(current_user, NotifyEndpoint)
    endpoints = db.session.execute(
        db.select(NotifyEndpoint).where(scope).order_by(NotifyEndpoint.id)).scalars().all()
    deliveries = db.session.execute(
        db.select(Delivery).join(NotifyEndpoint).where(scope)
        .order_by(Delivery.id.desc()).limit(50)).scalars().all()
    choices = [(f"{kind}:{o.id}", kind, o) for kind in OWNER_MODELS if kind != "team"
               for o in owners[kind]]
    return render_template(
        "notifications/index.html", endpoints=endpoints, deliveries=deliveries, errors=errors,
        values=values, choices=choices, teams=owners["team"], events=notify.EVENTS,
        team_events=receivers.TEAM_EVENTS,
        kinds=[k for k in notify.KINDS if k != "email" or cfg.get("SMTP_HOST")],
        mask=notify.mask_url, now=utcnow()), (422 if errors else 200)


def _managed(endpoint_id) -> NotifyEndpoint:
    return load_or_404(NotifyEndpoint, endpoint_id, permissions.can_manage_endpoint)


@bp.post("/<int:endpoint_id>/delete")
@roles_required(*MANAGERS)
def delete(endpoint_id):
    endpoint = _managed(endpoint_id)
    name = endpoint.name
    receivers.remove_receiver(endpoint, actor=current_user)
    db.session.commit()
    flash(_("Receiver “%(name)s” removed.", name=name), "ok")
    return redirect(url_for("notifications.index"))


@bp.post("/<int:endpoint_id>/test")
@roles_required(*MANAGERS)
def test(endpoint_id):
    """Queue a test message; it is sent after this request, like every notification."""
    endpoint = _managed(endpoint_id)
    cfg = current_app.config
    receivers.queue_test_message(endpoint, actor=current_user, now=utcnow(),
                                 base_url=cfg["BASE_URL"], locale=cfg["BABEL_DEFAULT_LOCALE"])
    db.session.commit()
    flash(_("Test message queued. Its result appears below in a moment."), "ok")
    return redirect(url_for("notifications.index"))
