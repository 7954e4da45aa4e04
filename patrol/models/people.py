from datetime import datetime
import hashlib
import hmac

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, CheckConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..lifecycle import Role
from .base import new_token, utcnow

TITLES = ("片长", "组长", "邻长", "红色管家", "和事佬", "志愿者")
# Generated from the enum, like every CHECK on a coded column: a new role changes this
# text, and tests/test_enum_constraints.py then asks for the migration that goes with it.
_ROLE_CHECK = "role in ({})".format(",".join(f"'{r.value}'" for r in Role))


def hash_secret(secret: str) -> str:
    """Invite and device secrets are random, so a plain SHA-256 is enough."""
    return hashlib.sha256(secret.encode()).hexdigest()


class User(UserMixin, db.Model):
    __table_args__ = (
        CheckConstraint(_ROLE_CHECK, name="ck_user_role"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    phone: Mapped[str | None] = mapped_column(String(30))
    role: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(20))  # volunteers: 片长/组长/…
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # Bumped to sign a password user out everywhere (it is part of the session id).
    session_gen: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("community.id"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("street.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id"), index=True)
    compound_id: Mapped[int | None] = mapped_column(ForeignKey("compound.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    community = relationship("Community")
    street = relationship("Street")
    company = relationship("Company")
    compound = relationship("Compound")
    team = relationship("Team", back_populates="members")
    department = relationship("Department")
    devices = relationship("Device", back_populates="user", order_by="Device.id.desc()")

    # Set by the login loader: which credential this request signed in with.
    _login_id = None

    @property
    def street_community_ids(self) -> tuple | None:
        """Street staff's binding (permissions.STREET): their street's communities."""
        if self.street_id is None:
            return None
        from .places import Community
        return tuple(db.session.scalars(
            db.select(Community.id).where(Community.street_id == self.street_id)))

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def set_password(self, password: str):
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        if not self.password_hash:
            return False
        return check_password_hash(self.password_hash, password)

    def get_id(self):
        return self._login_id or f"u:{self.id}:{self.session_gen}"

    @property
    def is_active(self):
        return self.active


class Team(db.Model):
    """A patrol team (巡查队) of volunteers, assigned to compounds."""
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    community = relationship("Community")
    members = relationship("User", back_populates="team")
    compounds = relationship("Compound", secondary="team_compound")


class TeamCompound(db.Model):
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"), primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compound.id"), primary_key=True)


class Invite(db.Model):
    """A one-time sign-in link for a volunteer's phone. Only the hash is stored."""
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    user = relationship("User", foreign_keys=[user_id])

    @staticmethod
    def new(user, created_by, lifetime):
        token = new_token(24)
        invite = Invite(user=user, token_hash=hash_secret(token),
                        created_by_id=getattr(created_by, "id", None),
                        expires_at=utcnow() + lifetime)
        return invite, token


class Device(db.Model):
    """One sign-in: a phone through an invite, or a browser through a password.
    Revoking it signs that phone or browser out (services/accounts.start_session)."""
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    user = relationship("User", back_populates="devices")

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))
