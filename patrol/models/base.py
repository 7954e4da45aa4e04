import secrets

from ..clock import utcnow  # noqa: F401  (models use it as a column default)


def new_token(nbytes: int = 24) -> str:
    """URL-safe random token; 24 bytes = 192 bits."""
    return secrets.token_urlsafe(nbytes)
