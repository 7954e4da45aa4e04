"""Fixed Flask configuration. What an operator may change lives in settings.py (typed,
read from PATROL_* environment variables), which create_app applies on top of this."""
from datetime import timedelta

from .settings import DEFAULT_BASE_URL, ROOT  # noqa: F401  (imported from here elsewhere)


class Config:
    """Defaults that are not settings; patrol/settings.py overrides the ones that are."""
    PAGE_SIZE = 20
    # Sessions: Secure, HttpOnly, SameSite=Lax. Volunteers' phones stay signed in
    # through Flask-Login's remember cookie; "basic" protection because "strong"
    # logs phones out when they hop between Wi-Fi and mobile data.
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    MAX_CONTENT_LENGTH = 40 * 1024 * 1024  # settings: PATROL_MAX_UPLOAD_MB

    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session; see docs/security.md

    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "patrol" / "translations")
    LANGUAGES = ("zh", "en")
    RATELIMIT_HEADERS_ENABLED = False
