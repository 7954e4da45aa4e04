"""Configuration. Every setting can be overridden by a PATROL_* environment variable."""
import os
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    BASE_URL = _env("BASE_URL", "http://127.0.0.1:5000")
    TIMEZONE = _env("TIMEZONE", "Asia/Shanghai")

    # Verification (回头看) must follow a scan of the compound's QR within this window.
    VERIFY_WINDOW = timedelta(minutes=int(_env("VERIFY_WINDOW_MINUTES", "120")))
    INVITE_LIFETIME = timedelta(hours=int(_env("INVITE_HOURS", "72")))
    DUE_SOON = timedelta(hours=int(_env("DUE_SOON_HOURS", "24")))
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

    RATELIMIT_STORAGE_URI = _env("RATELIMIT_STORAGE_URI", "memory://")
    LOGIN_RATE_LIMIT = _env("LOGIN_RATE_LIMIT", "10 per minute")
    RATELIMIT_HEADERS_ENABLED = False
