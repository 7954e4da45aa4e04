"""Sign-in: passwords for staff and managers, one-time invite links for volunteers."""
import hashlib
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, has_request_context, redirect,
                   render_template, request, session, url_for)
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from limits import parse
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db, limiter
from ..models import User
from ..services import accounts
from .sync import error_json, wants_json

bp = Blueprint("auth", __name__)

INVITE_ERRORS = {
    "unknown": lambda: _("This sign-in link is not valid. Ask your community staff for a new one."),
    "used": lambda: _("This sign-in link has already been used. Ask your community staff for a new one."),
    "expired": lambda: _("This sign-in link has expired. Ask your community staff for a new one."),
}


def _fresh_session():
    """New sign-in, new session (no fixation); the language choice survives."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _safe_next(target):
    """Only same-site paths, never another host. Browsers drop tabs and newlines in
    URLs ("/\t/evil" becomes "//evil"), so any control character or space is refused."""
    if (target and target.startswith("/") and "\\" not in target
            and not any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and not target.startswith("//"):
            return target
    return url_for("lists.home")


def _forget_browser_cache(resp):
    """A new person on this phone must not see the last one's cached photos."""
    resp.headers["Clear-Site-Data"] = '"cache"'
    return resp


def _login_username():
    return request.form.get("username", "").strip().lower()[:60]


def _login_key():
    return f"login:{_login_username()}"


def _login_failed(response):
    return response.status_code == 401


# An address stays "clean" for an account until it has failed to sign in to it this often.
# The per-account limit below never applies to a clean address: many addresses guessing
# at one account are slowed down, but they cannot lock its owner out, who signs in from
# an address of their own (a phone, an office) that has not been guessing.
CLEAN_UNTIL = parse("3 per 15 minutes")


def _failed_here_key():
    return f"{get_remote_address()}|{_login_username()}"


def _clean_address():
    return request.method != "POST" or \
        limiter.limiter.test(CLEAN_UNTIL, "login-failed", _failed_here_key())


def _note_failed_login():
    if limiter.enabled:
        limiter.limiter.hit(CLEAN_UNTIL, "login-failed", _failed_here_key())


def _invite_key():
    """Per invite, by the token's hash (the limiter's store never holds a live token)."""
    token = (request.view_args or {}).get("token", "")
    return "invite:" + hashlib.sha256(token.encode()).hexdigest()


def _redeem_failed(response):
    return response.status_code == 410   # unknown, used or expired: what a guess gets


# Verifying a password takes the same time whether or not the user exists.
_DUMMY_HASH = generate_password_hash("not a password")


@bp.route("/login", methods=["GET", "POST"])
# Per address, every attempt: one address guessing at one or many accounts.
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
# Per account, failed attempts from addresses that are not clean for it (see CLEAN_UNTIL):
# many addresses, one target.
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               key_func=_login_key, deduct_when=_login_failed, exempt_when=_clean_address)
def login():
    error = None
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        user = db.session.execute(
            db.select(User).where(User.username == username)).scalar_one_or_none()
        password = request.form.get("password", "")
        if user is None or not user.password_hash:
            check_password_hash(_DUMMY_HASH, password)
        elif user.active and user.check_password(password):
            _fresh_session()
            user._login_id = accounts.start_session(user, request.headers.get("User-Agent"))
            db.session.commit()
            login_user(user)
            return _forget_browser_cache(redirect(_safe_next(request.args.get("next"))))
        error = _("Wrong user name or password.")
        _note_failed_login()
    return render_template("auth/login.html", error=error, username=username), \
        (401 if error else 200)


@bp.post("/logout")
@login_required
def logout():
    accounts.sign_out(current_user.get_id())
    db.session.commit()
    logout_user()
    _fresh_session()
    return _forget_browser_cache(redirect(url_for("auth.login")))


@bp.get("/invite/<token>")
def invite(token):
    # GET never uses the link: WeChat and other apps prefetch links for previews.
    try:
        inv = accounts.find_invite(token)
    except accounts.InviteError as exc:
        return render_template("auth/invite.html", error=INVITE_ERRORS[exc.code]()), 410
    return render_template("auth/invite.html", invite=inv, token=token)


@bp.post("/invite/<token>")
# Per address, failed redeems only: guessing is throttled, while the volunteers behind one
# address (a community office's Wi-Fi) each redeem their own invite.
@limiter.limit("20 per minute", deduct_when=_redeem_failed)
@limiter.limit("10 per minute", key_func=_invite_key)   # per invite: one link, many tries
def redeem(token):
    try:
        user, login_id = accounts.redeem_invite(token, request.headers.get("User-Agent"))
    except accounts.InviteError as exc:
        db.session.rollback()
        return render_template("auth/invite.html", error=INVITE_ERRORS[exc.code]()), 410
    db.session.commit()
    _fresh_session()
    user._login_id = login_id
    login_user(user, remember=True, duration=current_app.config["REMEMBER_COOKIE_DURATION"])
    flash(_("This phone is now signed in. You can scan compound QR codes."), "ok")
    return _forget_browser_cache(redirect(url_for("lists.home")))


@bp.post("/lang")
def set_lang():
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))


def unauthorized():
    """Pages send people to sign in; the background queue gets a 401 it can show."""
    if wants_json():
        return error_json(401, "login_required", _("Please sign in again."), login=True)
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


@bp.app_context_processor
def inject_user():
    # `quiet`: a page the service worker fetches to keep for later must not use up a
    # message flashed for the page the user is about to see (sw.js sends the header).
    quiet = has_request_context() and request.headers.get("X-Patrol-Precache") == "1"
    return {"me": current_user, "quiet": quiet}
