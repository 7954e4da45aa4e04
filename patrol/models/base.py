import secrets
from datetime import datetime, timezone


def utcnow() -> datetime:
    """Naive UTC. Stored naive on both SQLite and PostgreSQL so comparisons never mix."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def new_token(nbytes: int = 24) -> str:
    """URL-safe random token; 24 bytes = 192 bits."""
    return secrets.token_urlsafe(nbytes)
