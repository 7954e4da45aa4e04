"""Notification receivers (webhooks, WeCom group robots, e-mail) and their deliveries.

Staff manage their community's receivers, managers their company's, admins all.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from .. import labels, notify, permissions
from ..extensions import db
from ..lifecycle import Role
from ..models import Community, Company, Delivery, NotifyEndpoint, utcnow
from ..services import receivers
from .helpers import load_or_404, roles_required

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
bp.add_app_template_global(lambda k: labels.NOTIFY_KIND.get(k, k), "kind_label")
bp.add_app_template_global(lambda e: labels.NOTIFY_EVENT.get(e, e), "event_label")
bp.add_app_template_global(lambda s: labels.DELIVERY_STATUS.get(s, s), "delivery_status_label")


def _owners():
    """The communities and companies the user may attach a receiver to."""
    return tuple(db.session.execute(
        db.select(model).where(permissions.endpoint_owner_filter(current_user, kind, model))
        .order_by(model.name)).scalars().all()
        for kind, model in (("community", Community), ("company", Company)))


def _receiver_error(code: str) -> str:
    if code == "name":
        return _("Please enter a name (at most 60 characters).")
    if code == "no_events":
        return _("Choose at least one kind of message.")
    if code == "bad_owner":
        code = "bad_kind"  # "Please choose one of the options."
    return str(labels.TARGET_ERROR[code])


def _parse_owner(value: str, communities, companies):
    kind, _sep, ident = (value or "").partition(":")
    pool = communities if kind == "community" else companies if kind == "company" else []
    return kind, next((o for o in pool if o and str(o.id) == ident), None)


@bp.route("", methods=["GET", "POST"])
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)
def index():
    if not permissions.can_manage_endpoints(current_user):
        abort(403)  # staff without a community, a manager without a company
    communities, companies = _owners()
    cfg = current_app.config
    errors, values = {}, {}
    if request.method == "POST":
        values = request.form.to_dict()
        name = values.get("name", "").strip()
        kind = values.get("kind", "")
        events = [e for e in request.form.getlist("events") if e in notify.EVENTS]
        if current_user.role == Role.STAFF:      # their own community, whatever was sent
            owner_kind, owner = "community", communities[0]
        elif current_user.role == Role.MANAGER:  # their own company
            owner_kind, owner = "company", companies[0]
        else:
            owner_kind, owner = _parse_owner(values.get("owner"), communities, companies)
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
    return render_template(
        "notifications/index.html", endpoints=endpoints, deliveries=deliveries, errors=errors,
        values=values, communities=[c for c in communities if c],
        companies=[c for c in companies if c], events=notify.EVENTS,
        kinds=[k for k in notify.KINDS if k != "email" or cfg.get("SMTP_HOST")],
        mask=notify.mask_url, now=utcnow()), (422 if errors else 200)


def _managed(endpoint_id) -> NotifyEndpoint:
    return load_or_404(NotifyEndpoint, endpoint_id, permissions.can_manage_endpoint)


@bp.post("/<int:endpoint_id>/delete")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)
def delete(endpoint_id):
    endpoint = _managed(endpoint_id)
    name = endpoint.name
    receivers.remove_receiver(endpoint, actor=current_user)
    db.session.commit()
    flash(_("Receiver “%(name)s” removed.", name=name), "ok")
    return redirect(url_for("notifications.index"))


@bp.post("/<int:endpoint_id>/test")
@roles_required(Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.ADMIN)
def test(endpoint_id):
    """Queue a test message; it is sent after this request, like every notification."""
    endpoint = _managed(endpoint_id)
    cfg = current_app.config
    receivers.queue_test_message(endpoint, actor=current_user, now=utcnow(),
                                 base_url=cfg["BASE_URL"], locale=cfg["BABEL_DEFAULT_LOCALE"])
    db.session.commit()
    flash(_("Test message queued. Its result appears below in a moment."), "ok")
    return redirect(url_for("notifications.index"))
