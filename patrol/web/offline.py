"""Offline support: the service worker, the sync endpoints the page's queue uses,
and the list of pages a phone keeps for use without signal. See docs/offline.md."""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin, current_user, login_required
from flask_wtf.csrf import generate_csrf
from sqlalchemy import case

from .. import permissions
from ..extensions import db, limiter
from ..lifecycle import Status
from ..models import Checkpoint, Compound, Item, Presence, TeamCompound, utcnow
from ..services import items as item_service
from ..services import patrols as patrol_service
from .sync import error_json, form_location, refuse_offline_scan, required_device_at

bp = Blueprint("offline", __name__)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
PRECACHE_COMPOUNDS = 30
PRECACHE_ITEMS = 100


# Must match SHELL_URLS in static/js/sw.js (tests/test_offline_sw.py checks this).
SHELL_FILES = ("css/app.css", "js/app.js", "js/photos.js", "js/offline.js",
               "manifest.webmanifest", "icons/icon-192.png")
# The fallback page is cached in the shell too: its templates (and the translations)
# count for the version.
SHELL_TEMPLATES = ("offline.html", "base.html")
SW_VERSION_LINE = 'var VERSION = "dev";'


def service_worker_source(static_folder: str) -> str:
    """sw.js with its version set to a digest of itself and the shell files it caches.

    Browsers install a new worker only when sw.js changes byte for byte; without this a
    deploy would never reach a phone that already holds the shell (cache first)."""
    static = Path(static_folder)
    source = (static / "js/sw.js").read_text(encoding="utf-8")
    h = hashlib.sha256(source.encode())
    for name in SHELL_FILES:
        h.update((static / name).read_bytes())
    assert current_app.template_folder is not None      # create_app sets it
    templates = Path(current_app.root_path, current_app.template_folder)
    for name in SHELL_TEMPLATES:
        h.update((templates / name).read_bytes())
    for catalogue in sorted(Path(current_app.root_path, "translations").glob("*/LC_MESSAGES/*.po")):
        h.update(catalogue.read_bytes())  # the fallback page's words
    return source.replace(SW_VERSION_LINE, f'var VERSION = "{h.hexdigest()[:16]}";', 1)


@bp.get("/sw.js")
def service_worker():
    resp = current_app.response_class(service_worker_source(current_app.static_folder),
                                      mimetype="application/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    resp.add_etag()
    resp.make_conditional(request)
    resp.headers["Service-Worker-Allowed"] = "/"
    return resp


@bp.get("/offline")
def fallback():
    """Shown by the service worker for a page it has not kept.

    The worker keeps one copy for whoever uses the phone next, so it is rendered for
    nobody: no name, no menu, no outbox owner, no CSRF token, no flashed message."""
    return render_template("offline.html", me=AnonymousUserMixin(), quiet=True, for_nobody=True)


@bp.before_app_request
def same_user():
    """The outbox sends with the page's own CSRF token and names the page's user
    (`X-Patrol-User`). Sign-in starts a new session, so another user's page token is
    refused anyway; this makes it explicit: a send for anyone but the signed-in user is
    refused like a stale token (400 `csrf`), and the outbox then asks /sync/token, sees
    someone else, and keeps the record for its owner."""
    claimed = request.headers.get("X-Patrol-User")
    if claimed is None or request.method != "POST" or not current_user.is_authenticated:
        return None
    if claimed == str(current_user.id):
        return None
    return error_json(400, "csrf", _("The form had expired; it will be sent again."), retry=True)


@bp.get("/sync/token")
@login_required
def token():
    """A fresh CSRF token when the page's own one is refused (the session changed since
    the page was made), and who is signed in, so the outbox sends a record only for its
    own user. Same-origin only: a cross-site page cannot read this response."""
    resp = jsonify(csrf=generate_csrf(), user=current_user.id)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/sync/presence")
@login_required
@limiter.limit("60 per minute")
def presence():
    """A QR scan made without signal: the gate token and the phone's time of the scan."""
    compound = db.session.execute(
        db.select(Compound).where(Compound.qr_token == request.form.get("token", ""))
    ).scalar_one_or_none()
    if compound is None:
        return error_json(404, "unknown_compound", _("This QR code does not belong to any "
                                                     "compound. Scan the poster at the gate "
                                                     "again."))
    refusal = refuse_offline_scan(
        compound, _("Only volunteers and community staff record gate scans."))
    if refusal is None:
        device_at, refusal = required_device_at()
    if refusal is not None:
        return refusal
    lat, lon, _accuracy = form_location()
    p, created = item_service.record_offline_scan(
        current_user, compound, utcnow(), device_at=device_at, lat=lat, lon=lon)
    if created:
        patrol_service.judge_presence(p, compound)
        patrol_service.on_scan(current_user, compound, p)
    db.session.commit()
    return jsonify(id=p.id, compound=compound.id), (201 if created else 200)


@bp.get("/sync/pages")
@login_required
def pages():
    """What this phone should keep for offline use: its compounds (team's first, then the
    most recently scanned), their report forms, and items waiting for an on-the-spot check."""
    if not permissions.can_patrol(current_user):
        return jsonify(urls=[], aliases={}, checkpoints={})
    team_first = case((Compound.id.in_(
        db.select(TeamCompound.compound_id).where(TeamCompound.team_id == current_user.team_id)
    ), 0), else_=1)
    last_scan = (db.select(db.func.max(Presence.at)).where(
        Presence.compound_id == Compound.id, Presence.user_id == current_user.id)
        .correlate(Compound).scalar_subquery())
    compounds = db.session.execute(
        db.select(Compound).where(permissions.compound_filter(current_user, Compound),
                                  Compound.archived_at.is_(None))
        .order_by(team_first, last_scan.desc().nulls_last(), Compound.name)
        .limit(PRECACHE_COMPOUNDS)).scalars().all()
    items = db.session.execute(
        db.select(Item.id).where(Item.compound_id.in_([c.id for c in compounds]),
                                 Item.status == Status.FIXED.value)
        .order_by(Item.updated_at.desc()).limit(PRECACHE_ITEMS)).scalars().all()
    urls = ["/compounds"]
    for c in compounds:
        urls += [f"/compounds/{c.id}", f"/compounds/{c.id}/report"]
    urls += [f"/items/{i}" for i in items]
    # Gate tokens are the proof of being at the gate, so the phone gets only their
    # hashes: enough to recognise a scanned poster offline, useless to fake a scan.
    # Checkpoint stickers (/k/<token>) of the same compounds, the same way: a sticker
    # scanned without signal opens the kept compound page, which queues the scan.
    stickers = db.session.execute(
        db.select(Checkpoint.qr_token, Checkpoint.compound_id)
        .where(Checkpoint.compound_id.in_([c.id for c in compounds]),
               Checkpoint.archived_at.is_(None))).all()
    resp = jsonify(urls=urls, aliases={token_digest(c.qr_token): f"/compounds/{c.id}"
                                       for c in compounds},
                   checkpoints={token_digest(t): f"/compounds/{cid}" for t, cid in stickers})
    resp.headers["Cache-Control"] = "no-store"
    return resp
