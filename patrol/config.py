"""Configuration. Every setting can be overridden by a PATROL_* environment variable."""
import os
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The public address when PATROL_BASE_URL is not set: `make run`'s default port here.
DEFAULT_BASE_URL = "http://127.0.0.1:5000"


def _env(name, default):
    return os.environ.get(f"PATROL_{name}", default)


def _flag(name, default):
    return _env(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


class Config:
    SECRET_KEY = _env("SECRET_KEY", None)
    INSTANCE_DIR = Path(_env("INSTANCE_DIR", ROOT / "var"))
    SQLALCHEMY_DATABASE_URI = _env("DATABASE_URL", None)  # default set in create_app
    PHOTO_DIR = _env("PHOTO_DIR", None)  # default: <instance>/photos
    FORMS_DIR = Path(_env("FORMS_DIR", ROOT / "forms"))
    BASE_URL = _env("BASE_URL", DEFAULT_BASE_URL)
    # Whether PATROL_BASE_URL was given (`make run` exports it). The CLI prints links and
    # QR codes only for an address it was given: the default is a guess (see patrol/cli.py).
    BASE_URL_SET = bool(_env("BASE_URL", ""))
    TIMEZONE = _env("TIMEZONE", "Asia/Shanghai")

    # Verification (回头看) must follow a scan of the compound's QR within this window.
    VERIFY_WINDOW = timedelta(minutes=int(_env("VERIFY_WINDOW_MINUTES", "120")))
    # Queued offline work older than this is refused (the phone's clock is suspect).
    OFFLINE_MAX_AGE = timedelta(days=int(_env("OFFLINE_MAX_DAYS", "2")))
    INVITE_LIFETIME = timedelta(hours=int(_env("INVITE_HOURS", "72")))
    # "Due soon" in lists: the last hours before a deadline (a 24 h deadline is not
    # due soon the moment it is set).
    DUE_SOON = timedelta(hours=int(_env("DUE_SOON_HOURS", "6")))
    # Reported but not acknowledged this long → on the staff's escalation list.
    ACK_ESCALATE = timedelta(hours=float(_env("ACK_ESCALATE_HOURS", "12")))

    # Ratings (docs/scoring.md): fewer items than this in a period → "insufficient data".
    RATING_MIN_ITEMS = int(_env("RATING_MIN_ITEMS", "5"))

    # Notifications (docs/notifications.md). Queued in the request's transaction; sent by
    # `patrol deliver --watch` (started by `make run`) or cron's `patrol deliver`, which
    # also retry failures with backoff. Web workers never send, unless NOTIFY_IMMEDIATE
    # asks for a thread after each commit (single-process setups without the watcher).
    NOTIFY_IMMEDIATE = _flag("NOTIFY_IMMEDIATE", False)
    WEBHOOK_TIMEOUT = float(_env("WEBHOOK_TIMEOUT", "5"))
    # Refuse webhook URLs that resolve to loopback/private/link-local addresses.
    WEBHOOK_ALLOW_PRIVATE = _flag("WEBHOOK_ALLOW_PRIVATE", False)
    DELIVERY_MAX_ATTEMPTS = int(_env("DELIVERY_MAX_ATTEMPTS", "8"))
    DELIVERY_BACKOFF = timedelta(seconds=int(_env("DELIVERY_BACKOFF_SECONDS", "60")))
    DELIVERY_BACKOFF_MAX = timedelta(hours=int(_env("DELIVERY_BACKOFF_MAX_HOURS", "6")))
    SMTP_HOST = _env("SMTP_HOST", None)    # no host: e-mail receivers cannot be added
    SMTP_PORT = int(_env("SMTP_PORT", "587"))
    SMTP_USER = _env("SMTP_USER", None)
    SMTP_PASSWORD = _env("SMTP_PASSWORD", None)
    SMTP_STARTTLS = _flag("SMTP_STARTTLS", True)
    SMTP_FROM = _env("SMTP_FROM", "patrol@localhost")
    PAGE_SIZE = 20

    MAX_PHOTOS = int(_env("MAX_PHOTOS", "4"))
    MAX_CONTENT_LENGTH = int(_env("MAX_UPLOAD_MB", "40")) * 1024 * 1024
    MAX_PHOTO_BYTES = int(_env("MAX_PHOTO_MB", "15")) * 1024 * 1024

    # Sessions: Secure, HttpOnly, SameSite=Lax. Volunteers' phones stay signed in
    # through Flask-Login's remember cookie; "basic" protection because "strong"
    # logs phones out when they hop between Wi-Fi and mobile data.
    SESSION_COOKIE_SECURE = _flag("SECURE_COOKIES", True)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_DURATION = timedelta(days=int(_env("DEVICE_DAYS", "180")))
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)

    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session; see docs/security.md

    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "patrol" / "translations")
    LANGUAGES = ("zh", "en")

    # Behind a reverse proxy, how many X-Forwarded-For hops to trust (rate limits
    # key on the client address). Several gunicorn workers should share a
    # limiter store, e.g. PATROL_RATELIMIT_STORAGE_URI=redis://localhost:6379.
    PROXY_HOPS = int(_env("PROXY_HOPS", "0"))
    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
    LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", "10 per minute")
    RATELIMIT_HEADERS_ENABLED = False
