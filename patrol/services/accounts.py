"""Sign-in credentials: passwords for staff and managers, invites and devices for volunteers.

Flask-Login's session id names the sign-in: "d:<row>:<secret>" for every sign-in
(invite or password, see start_session); "u:<user>:<generation>" is still understood.
Revoking a row or bumping a generation signs that phone or browser out on its next
request, remember-cookie included.
"""
from __future__ import annotations

import secrets
import unicodedata
from datetime import timedelta
from typing import Any, cast

from sqlalchemy.engine import CursorResult

from ..extensions import db
from ..lifecycle import Role
from ..models import Device, Invite, User, utcnow
from ..models.people import TITLES, hash_secret
from . import row_locks

DEFAULT_TITLE = "志愿者"
NAME_MAX = 60
PHONE_MAX = 30


class InviteError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.code = code  # "unknown", "used", "expired"


class VolunteerInvalid(Exception):
    """The volunteer was not created; `errors` maps fields to codes: display_name "name",
    phone "phone", title "title", team_id "team" (no community, or a team outside it),
    username "username" (empty or too long) or "username_taken"."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def normal_phone(phone: str | None) -> str:
    """NFKC, so digits typed with a Chinese input method (１３８) are digits too."""
    return unicodedata.normalize("NFKC", phone or "").strip()


def create_volunteer(*, display_name: str, created_by, lifetime, community_id: int | None = None,
                     team=None, phone: str | None = None, title: str | None = None,
                     username: str | None = None) -> tuple[User, str]:
    """A volunteer and their first one-time sign-in link: (user, raw invite token).

    The one way to make a volunteer (staff's page and `patrol create-user` alike): a name
    of at most 60 characters; a phone number of digits (with +, - and spaces) or none; a
    title from TITLES (none: 志愿者); a community, given or the team's, and a team, if
    any, of that community. Volunteers never type a user name; without one a unique one
    is made. Raises VolunteerInvalid listing every problem; creates nothing then.
    """
    errors = {}
    name = (display_name or "").strip()
    if not name or len(name) > NAME_MAX:
        errors["display_name"] = "name"
    phone = normal_phone(phone)
    digits = phone.removeprefix("+").replace("-", "").replace(" ", "")  # "+86 138…" too
    if phone and (len(phone) > PHONE_MAX or not (digits.isascii() and digits.isdigit())):
        errors["phone"] = "phone"
    title = title or DEFAULT_TITLE
    if title not in TITLES:
        errors["title"] = "title"
    if community_id is None and team is not None:
        community_id = team.community_id
    if community_id is None or (team is not None and team.community_id != community_id):
        errors["team_id"] = "team"
    if username is not None:
        username = username.strip()
        if not username or len(username) > 60:
            errors["username"] = "username"
        elif db.session.execute(db.select(User.id).where(User.username == username)).first():
            errors["username"] = "username_taken"
    if errors:
        raise VolunteerInvalid(errors)
    user = User(username=username or f"v-{secrets.token_hex(5)}", display_name=name,
                phone=phone or None, role=Role.VOLUNTEER.value, title=title, community_id=community_id,
                team=team)
    db.session.add(user)
    row_locks.flush_or(VolunteerInvalid({"username": "username_taken"}))
    return user, create_invite(user, created_by, lifetime)


def create_invite(user: User, created_by, lifetime) -> str:
    """Return the raw token; only its hash is stored."""
    invite, token = Invite.new(user, created_by, lifetime)
    db.session.add(invite)
    db.session.flush()
    from . import audit
    audit.record(created_by, "invite.create", invite, None,
                 {"user": user.id, "expires_at": invite.expires_at}, utcnow())
    return token


def void_open_invites(user: User) -> int:
    """End every invite of `user` that is neither used nor expired (reprinted cards replace
    the old ones): they expire now, so an old card answers "expired". Returns how many."""
    now = utcnow()
    return cast("CursorResult[Any]", db.session.execute(
        db.update(Invite).where(Invite.user_id == user.id, Invite.used_at.is_(None),
                                Invite.expires_at > now)
        .values(expires_at=now - timedelta(seconds=1))
    )).rowcount


def find_invite(token: str) -> Invite:
    invite = db.session.execute(
        db.select(Invite).where(Invite.token_hash == hash_secret(token))
    ).scalar_one_or_none()
    if invite is None or not invite.user.active:
        raise InviteError("unknown")
    if invite.used_at is not None:
        raise InviteError("used")
    if invite.expires_at < utcnow():
        raise InviteError("expired")
    return invite


def redeem_invite(token: str, user_agent: str | None) -> tuple[User, str]:
    """Use an invite once: create a device and return (user, login id)."""
    invite = find_invite(token)
    # Conditional update: of two phones opening the same link at once, one wins.
    won = cast("CursorResult[Any]", db.session.execute(
        db.update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None))
        .values(used_at=utcnow())
    )).rowcount
    if not won:
        raise InviteError("used")
    return invite.user, start_session(invite.user, user_agent)


def start_session(user: User, user_agent: str | None) -> str:
    """Record a sign-in on the server and return its login id.

    A phone's invite and a password sign-in alike get a row (`Device`), so that
    signing out, or staff revoking a phone, ends that sign-in for good: Flask's
    session is a signed cookie, which a row can outlive but not outvote.
    """
    secret = secrets.token_urlsafe(24)
    device = Device(user_id=user.id, secret_hash=hash_secret(secret),
                    user_agent=(user_agent or "")[:300], last_seen_at=utcnow())
    db.session.add(device)
    db.session.flush()
    return f"d:{device.id}:{secret}"


def end_all_sessions(user: User):
    """Sign a user out everywhere (a new password): every row, and the generation
    that older `u:` ids carry."""
    user.session_gen += 1
    for device in db.session.execute(
            db.select(Device).where(Device.user_id == user.id, Device.revoked_at.is_(None))).scalars():
        revoke_device(device)


def load_login(login_id: str) -> User | None:
    """Flask-Login's user loader: resolve a credential id to an active user, or None."""
    try:
        kind, ident_text, secret = login_id.split(":", 2)
        ident = int(ident_text)
    except (ValueError, AttributeError):
        return None
    if kind == "u":
        user = db.session.get(User, ident)
        if user is None or str(user.session_gen) != secret:
            return None
    elif kind == "d":
        # One query for the row and its user: this runs on every signed-in request.
        # Nothing is cached between requests, so a revoked row signs out the next one.
        row = db.session.execute(
            db.select(Device, User).join(User, Device.user_id == User.id)
            .where(Device.id == ident)).one_or_none()
        if row is None:
            return None
        device, user = row
        if device.revoked_at is not None or not device.matches(secret):
            return None
        now = utcnow()
        if device.last_seen_at is None or (now - device.last_seen_at).total_seconds() > 3600:
            device.last_seen_at = now  # hourly is precise enough and spares writes
            db.session.commit()
    else:
        return None
    if not user.active:
        return None
    user._login_id = login_id
    return user


def revoke_device(device: Device, actor=None):
    """`actor`: whoever signs someone else's phone out (audited); None for one's own."""
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        if actor is not None:
            from . import audit
            audit.record(actor, "device.revoke", device, {"revoked_at": None},
                         {"revoked_at": device.revoked_at, "user": device.user_id}, utcnow())


def sign_out(login_id: str | None):
    """End the sign-in this browser used (the user's other browsers stay signed in). Its
    row is revoked, so a request still in flight at sign-out, whose answer carries the
    old session cookie, cannot bring it back."""
    kind, _, rest = (login_id or "").partition(":")
    if kind == "d":
        device = db.session.get(Device, int(rest.partition(":")[0]))
        if device is not None:
            revoke_device(device)
