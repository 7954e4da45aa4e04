"""Notifications: queue in the caller's transaction, send outside any request.

How a notification travels (docs/notifications.md):

1. A service that causes an event (a new item, a reopened item; the overdue scan of
   `patrol deliver` / `patrol daily`) calls `notify_item()`, which adds one Delivery
   row per matching endpoint to the *same* transaction. If the report rolls back, no
   notification exists; if it commits, the notification cannot be lost.
2. After the commit, the deliveries' ids go on the job queue (patrol/jobs/, Huey):
   `patrol worker`, which `make run` starts beside gunicorn, sends them at once. Web
   workers never send, and start no thread: a sender inside a web worker competed with
   reports for SQLite's one write lock (a load test traced 500s to it).
3. The worker's periodic sweep (every minute; `patrol deliver` from cron does the same)
   sends whatever is due: rows whose message was lost (the queue was down), and failed
   ones whose backoff has elapsed. A row is claimed by moving `next_attempt_at` forward
   in one UPDATE, so a message delivered twice, the sweep and cron never send the same
   row twice, and a sender that dies mid-way leaves a row that is simply tried again
   when the lease ends.
"""
from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
import http.client
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast


from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import event as sa_event, or_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from .. import lifecycle, notify
from ..extensions import db
from ..models import Delivery, Item, NotifyEndpoint, utcnow

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
KICK_KEY = "patrol.notify.kick"


# --- queueing --------------------------------------------------------------------

def endpoints_for(event: str, *, community_id=None, company_id=None, department_id=None,
                  compound_id=None, team_ids=(),
                  teams_of_compound: int | None = None) -> list[NotifyEndpoint]:
    """Active endpoints of these owners that subscribe to `event`: the community's, the
    company's, the department's, the compound's (its owners' committee) and its teams'
    (`team_ids`, or the teams assigned to `teams_of_compound`, looked up in the same
    statement)."""
    owners = []
    for column, value in ((NotifyEndpoint.community_id, community_id),
                          (NotifyEndpoint.company_id, company_id),
                          (NotifyEndpoint.department_id, department_id),
                          (NotifyEndpoint.compound_id, compound_id)):
        if value is not None:
            owners.append(column == value)
    if team_ids:
        owners.append(NotifyEndpoint.team_id.in_(list(team_ids)))
    if teams_of_compound is not None:
        from ..models import TeamCompound
        owners.append(NotifyEndpoint.team_id.in_(
            db.select(TeamCompound.team_id)
            .where(TeamCompound.compound_id == teams_of_compound)))
    if not owners:
        return []
    endpoints = db.session.execute(
        db.select(NotifyEndpoint).where(NotifyEndpoint.active.is_(True), or_(*owners))
        .order_by(NotifyEndpoint.id)).scalars().all()
    return [e for e in endpoints if event in (e.events or ())]


def compound_team_ids(compound_id: int) -> list[int]:
    """The patrol teams assigned to a compound (their group robots hear of its fixes)."""
    from ..models import TeamCompound
    return list(db.session.scalars(db.select(TeamCompound.team_id).where(
        TeamCompound.compound_id == compound_id)))


def enqueue(endpoint, event, payload, *, now, dedupe_key, item_id=None, kick=True):
    """Queue one delivery, unless this endpoint already has this event (same key)."""
    exists = db.session.execute(
        db.select(Delivery.id).where(Delivery.endpoint_id == endpoint.id,
                                     Delivery.dedupe_key == dedupe_key)).first()
    if exists:
        return None
    delivery = Delivery(endpoint_id=endpoint.id, event=event, item_id=item_id,
                        dedupe_key=dedupe_key[:120], payload=payload, status="pending",
                        attempts=0, next_attempt_at=now, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    if kick:
        _remember_for_commit(delivery.id)
    return delivery


def notify_item(event: str, item: Item, now: datetime, *, key_suffix="", extra_lines=(),
                kick=True) -> list[Delivery]:
    """Queue `event` about `item` for every party's endpoints that subscribe to it: its
    community's, company's, department's, compound's (committee) and teams'."""
    endpoints = endpoints_for(event, community_id=item.community_id, company_id=item.company_id,
                              department_id=item.department_id, compound_id=item.compound_id,
                              teams_of_compound=item.compound_id)
    if not endpoints:
        return []
    payload = item_payload(event, item, now, extra_lines=extra_lines)
    key = f"{event}:{item.id}" + (f":{key_suffix}" if key_suffix else "")
    queued = [enqueue(e, event, payload, now=now, dedupe_key=key, item_id=item.id, kick=kick)
              for e in endpoints]
    return [d for d in queued if d is not None]


def notify_action(event: str, item: Item, ev, now: datetime) -> list[Delivery]:
    """A lifecycle action that others should hear of (services/items.ACTION_EVENTS),
    with its note or reason as the message's last line."""
    from .. import labels
    lines = []
    with _zh():
        if ev.reason:
            lines.append(_("Reason: %(reason)s", reason=str(labels.REASON.get(ev.reason,
                                                                               ev.reason))))
        if ev.note:
            lines.append(ev.note[:300])
    return notify_item(event, item, now, key_suffix=str(ev.id), extra_lines=lines)


def notify_reopened(item: Item, ev, now: datetime) -> list[Delivery]:
    from .. import labels
    with _zh():
        why = _("Reason: %(reason)s", reason=str(labels.REASON.get(ev.reason, ev.reason or "")))
    return notify_item("reopened", item, now, key_suffix=str(ev.id), extra_lines=[why])


def _zh():
    return force_locale(current_app.config["BABEL_DEFAULT_LOCALE"])


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="seconds") + "Z" if dt else None


def _local(dt):
    from ..display import local
    return local(dt)


def item_url(item_id: int) -> str:
    return f"{current_app.config['BASE_URL'].rstrip('/')}/items/{item_id}"


def _category_label(item) -> str:
    from ..display import category_label, form_for
    return category_label(item.category, current_app.config["BABEL_DEFAULT_LOCALE"],
                          form=form_for(item))


def item_payload(event: str, item: Item, now: datetime, *, extra_lines=()) -> dict:
    """The generic payload (also the JSON webhook body), in the default language (zh)."""
    from .. import labels
    with _zh():
        titles = {"new_item": _("[Patrol] New hazard reported"),
                  "overdue": _("[Patrol] Hazard overdue"),
                  "reopened": _("[Patrol] Check failed: item reopened"),
                  "fixed": _("[Patrol] Fixed: please check it on the spot (回头看)"),
                  "lookback_late": _("[Patrol] A fix has waited too long for its look-back")}
        category = _category_label(item)
        where = " ".join(x for x in (item.compound.name, item.building.name if item.building
                                     else "", item.unit or "", item.floor or "") if x)
        lines = [_("No.%(id)s %(category)s", id=item.id, category=category),
                 _("Where: %(where)s", where=where)]
        if item.company:
            lines.append(_("Property company: %(name)s", name=item.company.name))
        if item.deadline and lifecycle.Status(item.status) in lifecycle.OWED:
            lines.append(_("Deadline: %(when)s", when=_local(item.deadline)))
        lines.extend(str(x) for x in extra_lines)
        if item.note:
            note = item.note if len(item.note) <= 200 else item.note[:199] + "…"
            lines.append(_("Note: %(note)s", note=note))
        payload = {
            "event": event,
            "title": titles.get(event) or "[Patrol] " + str(labels.NOTIFY_EVENT.get(event, event)),
            "lines": lines,
            "url": item_url(item.id),
            "link_text": _("Open the item"),
            "at": _iso(now),
            "item": {
                "id": item.id, "category": item.category, "category_label": category,
                "status": item.status, "status_label": str(labels.STATUS.get(item.status, "")),
                "compound": item.compound.name, "community_id": item.community_id,
                "company": item.company.name if item.company else None,
                "building": item.building.name if item.building else None,
                "unit": item.unit, "floor": item.floor, "note": item.note,
                "deadline": _iso(item.deadline), "created_at": _iso(item.created_at),
            },
        }
    return payload


def digest_payload(scope_name: str, day: str, groups: dict[str, list[Item]], now) -> dict:
    """The daily reminder for one endpoint: overdue, not acknowledged in time, due soon
    (and, when there are any, fixes late for their look-back, 督办 and disputes)."""
    from .. import labels
    with _zh():
        names = {"overdue": _("Overdue"), "ack_late": _("Not acknowledged in time"),
                 "due_soon": _("Due soon")}
        # The staff's further groups (services/escalation.py) only when there is one.
        groups = {k: v for k, v in groups.items() if k in names or v}
        names.update({k: str(labels.ESCALATION[k]) for k in groups if k not in names})
        lines = [_("%(what)s: %(n)s", what=names[k], n=len(v)) for k, v in groups.items()]
        for key, items in groups.items():
            for item in items[:10]:
                lines.append(f"{names[key]} · " + _("No.%(id)s %(category)s", id=item.id,
                                                     category=_category_label(item))
                             + f" · {item.compound.name}")
        return {
            "event": "daily",
            "title": _("[Patrol] Daily reminder for %(name)s, %(day)s", name=scope_name, day=day),
            "lines": lines,
            "url": f"{current_app.config['BASE_URL'].rstrip('/')}/escalations",
            "link_text": _("Open the escalation list"),
            "at": _iso(now),
            "date": day,
            "counts": {k: len(v) for k, v in groups.items()},
            "items": [{"id": i.id, "reason": k, "url": item_url(i.id),
                       "category": i.category, "compound": i.compound.name,
                       "deadline": _iso(i.deadline)}
                      for k, v in groups.items() for i in v[:50]],
        }


# --- after-commit: onto the job queue ----------------------------------------------

def _remember_for_commit(delivery_id: int):
    session = db.session()
    # current_app is a LocalProxy; Flask's annotation calls it a Flask, which has no such method.
    app, ids = session.info.get(
        KICK_KEY, (current_app._get_current_object(), []))  # type: ignore[attr-defined]
    ids.append(delivery_id)
    session.info[KICK_KEY] = (app, ids)


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session):
    pending = session.info.pop(KICK_KEY, None)
    if pending:
        app, ids = pending
        from ..jobs import enqueue_deliveries
        enqueue_deliveries(app, ids)    # a message only; never sends here


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session):
    session.info.pop(KICK_KEY, None)


# --- sending ---------------------------------------------------------------------

class SendError(Exception):
    pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a 3xx is reported as an HTTP error, never followed


def _vetted_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None):
    """socket.create_connection that refuses private and local addresses.

    The addresses are checked and connected to from one DNS answer: a host that
    answers "public" to a check and "private" to the connect (DNS rebinding) gets
    nowhere, because there is no second lookup.
    """
    host, port = address
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SendError(f"cannot resolve host: {exc}") from None
    if not infos or not all(notify.is_public_address(info[4][0]) for info in infos):
        raise SendError("refused: the host resolves to a private or local address")
    error = None
    for family, kind, proto, _canonname, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error


class _VettedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _vetted_connection  # set per instance by http.client


class _VettedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):  # TLS still checks the certificate's host name
        super().__init__(*args, **kwargs)
        self._create_connection = _vetted_connection


class _VettedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_VettedHTTPConnection, req)


class _VettedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_VettedHTTPSConnection, req, context=self._context)


def _opener(allow_private: bool):
    # No proxy from the environment: the address checked must be the one connected to.
    handlers: list[urllib.request.BaseHandler | type[urllib.request.BaseHandler]] = [
        urllib.request.ProxyHandler({}), _NoRedirect]
    if not allow_private:
        handlers += [_VettedHTTPHandler, _VettedHTTPSHandler]
    return urllib.request.build_opener(*handlers)


def post_webhook(endpoint: NotifyEndpoint, delivery: Delivery, cfg) -> tuple[int | None, str | None]:
    url = notify.validate_url(endpoint.target)
    req = notify.render(endpoint.kind, delivery.payload)
    headers = {"Content-Type": req.content_type, "User-Agent": "patrol-notify/1",
               "X-Patrol-Event": delivery.event, "X-Patrol-Delivery": str(delivery.id)}
    if endpoint.kind == "json":
        headers["X-Patrol-Signature"] = notify.signature(endpoint.secret, req.body)
    request = urllib.request.Request(url, data=req.body, method="POST", headers=headers)
    opener = _opener(bool(cfg.get("WEBHOOK_ALLOW_PRIVATE")))
    try:
        with opener.open(request, timeout=cfg["WEBHOOK_TIMEOUT"]) as resp:
            status, body = resp.status, resp.read(65536)
    except SendError:
        raise
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(65536) if exc.fp else b""
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        # HTTPException covers malformed answers (BadStatusLine, IncompleteRead, …).
        reason = getattr(exc, "reason", exc)
        raise SendError(f"{type(exc).__name__}: {reason}") from None
    return status, notify.response_error(endpoint.kind, status, body)


def send_email(endpoint: NotifyEndpoint, delivery: Delivery, cfg):
    if not cfg.get("SMTP_HOST"):
        raise SendError("e-mail is not configured (PATROL_SMTP_HOST)")
    msg = EmailMessage()
    msg["Subject"] = delivery.payload.get("title", "Patrol")
    msg["From"] = cfg["SMTP_FROM"]
    msg["To"] = endpoint.target
    msg.set_content(notify.plain_text(delivery.payload))
    smtp_class = smtplib.SMTP_SSL if cfg["SMTP_PORT"] == 465 else smtplib.SMTP
    try:
        with smtp_class(cfg["SMTP_HOST"], cfg["SMTP_PORT"], timeout=cfg["WEBHOOK_TIMEOUT"]) as smtp:
            if smtp_class is smtplib.SMTP and cfg.get("SMTP_STARTTLS"):
                smtp.starttls(context=ssl.create_default_context())
            if cfg.get("SMTP_USER"):
                smtp.login(cfg["SMTP_USER"], cfg.get("SMTP_PASSWORD") or "")
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from None


def send(endpoint, delivery, cfg) -> tuple[int | None, str | None]:
    """(response status, error or None). Never raises for receiver trouble."""
    try:
        if endpoint.kind == "email":
            send_email(endpoint, delivery, cfg)
            return None, None
        return post_webhook(endpoint, delivery, cfg)
    except notify.InvalidTarget as exc:
        return None, f"invalid target: {exc.code}"
    except SendError as exc:
        return None, str(exc)[:300]
    except Exception as exc:  # a receiver must never break the sender
        log.exception("unexpected error sending delivery %s", delivery.id)
        return None, f"{type(exc).__name__}: {exc}"[:300]


def attempt(delivery_id: int, now: datetime) -> str | None:
    """Claim one due delivery and try it. Returns 'sent', 'retry', 'failed' or None
    (not due, or another sender has it)."""
    cfg = current_app.config
    claimed = cast("CursorResult[Any]", db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "pending",
               Delivery.next_attempt_at <= now)
        .values(attempts=Delivery.attempts + 1, last_attempt_at=now,
                next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False))).rowcount
    db.session.commit()
    if not claimed:
        return None
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None:        # deleted (with its endpoint) since the claim
        return None
    endpoint = delivery.endpoint
    status: int | None
    error: str | None
    if endpoint is None or not endpoint.active:
        status, error = None, "endpoint removed or disabled"
    else:
        status, error = send(endpoint, delivery, cfg)
    delivery.response_status = status
    if error is None:
        delivery.status, delivery.sent_at, delivery.last_error = "sent", utcnow(), None
        outcome = "sent"
    else:
        delivery.last_error = error[:300]
        if delivery.attempts >= cfg["DELIVERY_MAX_ATTEMPTS"]:
            delivery.status = "failed"
            outcome = "failed"
        else:
            delivery.next_attempt_at = now + notify.backoff(
                delivery.attempts, cfg["DELIVERY_BACKOFF"], cfg["DELIVERY_BACKOFF_MAX"])
            outcome = "retry"
        log.warning("delivery %s to endpoint %s failed (attempt %s): %s", delivery.id,
                    delivery.endpoint_id, delivery.attempts, error)
    db.session.commit()
    return outcome


def deliver_due(now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send every pending delivery whose time has come (cron: `patrol deliver`)."""
    now = now or utcnow()
    ids = db.session.execute(
        db.select(Delivery.id).where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)).scalars().all()
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for delivery_id in ids:
        try:
            outcome = attempt(delivery_id, now)
        except Exception:  # one bad delivery must not stop the batch
            db.session.rollback()
            log.exception("delivery %s could not be attempted", delivery_id)
            continue
        if outcome:
            counts[outcome] += 1
    return counts


def watch(every: float, *, rounds: int | None = None, stop: threading.Event | None = None):
    """`patrol deliver --watch`: a sender of its own, beside the web server, so web
    workers never send (a sender inside a web worker holds SQLite's write lock while
    reports wait for it). Each round queues 'overdue' and sends what is due; one round's
    failure is logged and the next round tries again. Ends on SIGTERM/SIGINT."""
    import signal
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    done = 0
    while not stop.is_set() and (rounds is None or done < rounds):
        try:
            now = utcnow()
            enqueue_overdue(now)
            enqueue_lookback_late(now)
            db.session.commit()
            counts = deliver_due(now)
            if any(counts.values()):
                log.info("delivered: %s", counts)
        except Exception:  # the database restarting, say: try again next round
            db.session.rollback()
            log.exception("delivery round failed")
        finally:
            db.session.remove()
        done += 1
        if rounds is None or done < rounds:
            stop.wait(every)


def enqueue_overdue(now: datetime) -> int:
    """Queue 'overdue' once per item and deadline (an extended deadline can fire again)."""
    endpoints = db.session.execute(
        db.select(NotifyEndpoint).where(NotifyEndpoint.active.is_(True))).scalars().all()
    endpoints = [e for e in endpoints if "overdue" in (e.events or ())]
    if not endpoints:
        return 0
    owed = [s.value for s in lifecycle.OWED]
    items = db.session.execute(
        db.select(Item).where(Item.status.in_(owed), Item.deadline < now)
        .order_by(Item.deadline)).scalars().all()
    queued = 0
    for item in items:
        with _zh():
            late = _("Overdue since %(when)s", when=_local(item.deadline))
        queued += len(notify_item("overdue", item, now, kick=False, extra_lines=[late],
                                  key_suffix=item.deadline.isoformat(timespec="seconds")))
    return queued


def enqueue_lookback_late(now: datetime, limit: timedelta | None = None) -> int:
    """Queue 'lookback_late' once per item and fix, for the compound's teams' receivers
    (their group robots) and its community's (staff): a fix that has waited longer than
    LOOKBACK_ESCALATE for its on-the-spot check. A fix after a reopen can fire again."""
    from .escalation import lookback_late_cond
    limit = current_app.config["LOOKBACK_ESCALATE"] if limit is None else limit
    if not any("lookback_late" in (e.events or ()) for e in db.session.execute(
            db.select(NotifyEndpoint).where(NotifyEndpoint.active.is_(True))).scalars()):
        return 0
    items = db.session.execute(
        db.select(Item).where(lookback_late_cond(now, limit))
        .order_by(Item.fixed_at, Item.id)).scalars().all()
    queued = 0
    for item in items:
        endpoints = endpoints_for("lookback_late", community_id=item.community_id,
                                  team_ids=compound_team_ids(item.compound_id))
        if not endpoints:
            continue
        with _zh():
            waiting = _("Fixed %(when)s, not checked on the spot yet", when=_local(item.fixed_at))
        payload = item_payload("lookback_late", item, now, extra_lines=[waiting])
        key = f"lookback_late:{item.id}:{item.fixed_at.isoformat(timespec='seconds')}"
        queued += sum(1 for e in endpoints
                      if enqueue(e, "lookback_late", payload, now=now, dedupe_key=key,
                                 item_id=item.id, kick=False) is not None)
    return queued
