"""Notification receivers (webhooks, WeCom group robots, e-mail): adding, removing and
testing one. Who may manage which receivers is permissions.py's; sending is notify.py's.

Changes models and flushes; the caller commits.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import force_locale, gettext as _

from .. import notify
from ..extensions import db
from ..models import Community, Company, Compound, Delivery, Department, NotifyEndpoint, Team
from ..clock import utcnow
from . import audit, notify as notify_service

NAME_MAX = 60
# The owner kinds a receiver may have, by the column that records it (exactly one).
OWNER_COLUMNS = {Community: "community_id", Company: "company_id", Compound: "compound_id",
                 Department: "department_id", Team: "team_id"}
# A team's group robot hears of fixes waiting for the team's look-back (回头看), and of
# its patrols still due the day before a week or month ends, unless other kinds of
# message are chosen.
TEAM_EVENTS = ("fixed", "lookback_late", "patrol_due")


class ReceiverInvalid(Exception):
    """The receiver was not added; `errors` maps form fields to codes: name "name",
    events "no_events", owner "bad_owner", kind "bad_kind" or "no_smtp", and target
    the code of notify.validate_target (e.g. "bad_url")."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def add_receiver(*, actor, name: str, kind: str, target: str, events: list[str],
                 owner: Community | Company | Compound | Department | Team | None,
                 email_enabled: bool) -> NotifyEndpoint:
    """A new receiver for `owner` (a community, company, compound (its owners'
    committee), department or patrol team the actor may manage: the caller chose it
    among permissions.endpoint_owner_filter's), or ReceiverInvalid listing every problem."""
    name = (name or "").strip()
    events = [e for e in events if e in notify.EVENTS]
    if not events and isinstance(owner, Team):
        events = list(TEAM_EVENTS)
    errors = {}
    if not name or len(name) > NAME_MAX:
        errors["name"] = "name"
    if kind not in notify.KINDS:
        errors["kind"] = "bad_kind"
    elif kind == "email" and not email_enabled:
        errors["kind"] = "no_smtp"
    else:
        try:
            target = notify.validate_target(kind, target or "")
        except notify.InvalidTarget as exc:
            errors["target"] = exc.code
    if not events:
        errors["events"] = "no_events"
    if owner is None or type(owner) not in OWNER_COLUMNS:
        errors["owner"] = "bad_owner"
    if errors or owner is None:
        raise ReceiverInvalid(errors)
    endpoint = NotifyEndpoint(name=name, kind=kind, target=target, events=events,
                              created_by_id=actor.id,
                              **{OWNER_COLUMNS[type(owner)]: owner.id})
    db.session.add(endpoint)
    db.session.flush()
    # The address is left out: a webhook's URL carries its key.
    audit.record(actor, "receiver.create", endpoint, None,
                 {"name": name, "kind": kind, "events": events}, utcnow())
    return endpoint


def remove_receiver(endpoint: NotifyEndpoint, actor=None) -> None:
    audit.record(actor, "receiver.delete", endpoint,
                 {"name": endpoint.name, "kind": endpoint.kind, "events": endpoint.events},
                 None, utcnow())
    db.session.delete(endpoint)
    db.session.flush()


def queue_test_message(endpoint: NotifyEndpoint, *, actor, now: datetime, base_url: str,
                       locale: str) -> Delivery | None:
    """Queue a test message (in the receivers' language, `locale`); it is sent after the
    commit, like every notification."""
    with force_locale(locale):
        payload = {"event": "test", "title": _("[Patrol] Test message"),
                   "lines": [_("If you can read this, the receiver “%(name)s” works.",
                               name=endpoint.name)],
                   "url": base_url, "at": now.isoformat() + "Z"}
    return notify_service.enqueue(endpoint, "test", payload, now=now,
                                  dedupe_key=f"test:{now.isoformat()}:{actor.id}")
