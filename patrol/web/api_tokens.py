"""Personal API tokens: made by their owner, shown once, revocable, with expiry and last use."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..clock import utcnow
from ..extensions import db
from ..lifecycle import Role
from ..models import ApiToken
from ..models.api import TOKEN_SCOPES
from .helpers import get_or_404, roles_required

bp = Blueprint("api_tokens", __name__, url_prefix="/tokens")
ROLES = (Role.STAFF, Role.STREET_STAFF, Role.MANAGER, Role.DEPARTMENT, Role.ADMIN)
EXPIRY_DAYS = (30, 90, 365)


@bp.app_context_processor
def _links():
    """The footer links the API tokens page for the roles that may have tokens."""
    return {"has_api_tokens": lambda user: getattr(user, "role", None) in
            {r.value for r in ROLES}}


def _own(token_id: int) -> ApiToken:
    token = get_or_404(ApiToken, token_id)
    if token.user_id != current_user.id:
        from flask import abort
        abort(404)       # someone else's token: as if it did not exist
    return token


@bp.get("/")
@roles_required(*ROLES)
def index():
    tokens = db.session.execute(db.select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.id.desc())).scalars().all()
    return render_template("api/tokens.html", tokens=tokens, now=utcnow(),
                           scopes=TOKEN_SCOPES, expiry_days=EXPIRY_DAYS, secret=None)


@bp.post("/")
@roles_required(*ROLES)
def create():
    name = (request.form.get("name") or "").strip()[:60]
    scope = request.form.get("scope", "read")
    days = request.form.get("days", type=int)
    if not name or scope not in TOKEN_SCOPES or days not in (*EXPIRY_DAYS, 0):
        flash(_("Give the token a name, and choose its rights and lifetime."), "error")
        return redirect(url_for(".index"))
    now = utcnow()
    token, secret = ApiToken.new(current_user, name, scope,
                                 now + timedelta(days=days) if days else None, now)
    db.session.add(token)
    db.session.commit()
    tokens = db.session.execute(db.select(ApiToken).where(ApiToken.user_id == current_user.id)
                                .order_by(ApiToken.id.desc())).scalars().all()
    # Shown this once: only its hash is kept.
    response = render_template("api/tokens.html", tokens=tokens, now=now, scopes=TOKEN_SCOPES,
                               expiry_days=EXPIRY_DAYS, secret=secret)
    return response, 201, {"Cache-Control": "no-store"}


@bp.post("/<int:token_id>/revoke")
@roles_required(*ROLES)
def revoke(token_id):
    token = _own(token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    flash(_("Token revoked."), "ok")
    return redirect(url_for(".index"))
