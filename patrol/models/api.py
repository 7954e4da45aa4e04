"""Personal API tokens (/api/v1): made by a user in the app, shown once, stored hashed."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import new_token, utcnow
from .items import _one_of
from .people import hash_secret

# read: GET only; act: the user's own rights (report, and the lifecycle actions).
TOKEN_SCOPES = ("read", "act")
TOKEN_PREFIX = "pt_"


class ApiToken(db.Model):
    __tablename__ = "api_token"
    __table_args__ = (CheckConstraint(_one_of("scope", TOKEN_SCOPES), name="ck_api_token_scope"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(12))       # the first characters, to tell apart
    scope: Mapped[str] = mapped_column(String(8), default="read")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    user = relationship("User")

    @staticmethod
    def new(user, name: str, scope: str, expires_at: datetime | None, now: datetime):
        """(row, the secret to show once)."""
        secret = TOKEN_PREFIX + new_token(30)
        return ApiToken(user_id=user.id, name=name, token_hash=hash_secret(secret),
                        hint=secret[:10], scope=scope, created_at=now,
                        expires_at=expires_at), secret

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    @staticmethod
    def find(secret: str) -> "ApiToken | None":
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
            return None
        return db.session.execute(db.select(ApiToken).where(
            ApiToken.token_hash == hash_secret(secret))).scalar_one_or_none()
