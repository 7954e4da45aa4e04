"""Every setting an operator can change: typed, with a default and a description.

Each field is read from the environment variable PATROL_<NAME> (pydantic-settings). A
bad value stops the app with a message naming the variable. README.md's configuration
table is generated from these fields (`patrol settings --markdown`), and a test fails
when the two drift apart.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
# The public address when PATROL_BASE_URL is not set: `make run`'s default port here.
DEFAULT_BASE_URL = "http://127.0.0.1:5000"
PREFIX = "PATROL_"


class SettingsError(RuntimeError):
    """A setting in the environment has a bad value; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", frozen=True)

    # Where things are
    database_url: str | None = Field(
        None, description="Database URL; default `sqlite:///var/patrol.db`. "
        "PostgreSQL: `postgresql+psycopg://user:pw@host/patrol`")
    base_url: str | None = Field(
        None, description=f"Public address printed in QR codes and invite links (default "
        f"`{DEFAULT_BASE_URL}`). The CLI prints links and QR codes only when it is set")
    instance_dir: Path = Field(ROOT / "var", description="Folder for the SQLite database, "
                               "the secret key and photos (default `var/`)")
    photo_dir: Path | None = Field(None, description="Where photos are stored (default "
                                   "`var/photos`)")
    storage: Literal["local", "s3"] = Field("local", description="Where photos are kept: "
                                            "`local` (PATROL_PHOTO_DIR) or `s3`, an "
                                            "S3-compatible store (docs/storage.md)")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint, e.g. "
                                        "`http://127.0.0.1:9000` (MinIO), "
                                        "`https://oss-cn-hangzhou.aliyuncs.com`; none: AWS")
    s3_public_endpoint_url: str | None = Field(None, description="Endpoint in presigned "
                                               "photo links, when browsers reach the store "
                                               "at another address")
    s3_bucket: str | None = Field(None, description="Bucket for photos (needed with "
                                  "`PATROL_STORAGE=s3`)")
    s3_region: str | None = Field(None, description="Region of the bucket (default "
                                  "`us-east-1`)")
    s3_access_key_id: str | None = Field(None, description="Access key; none: boto3's own "
                                         "chain (AWS_* variables, instance role)")
    s3_secret_access_key: str | None = Field(None, description="Secret key of the access "
                                             "key")
    s3_prefix: str | None = Field(None, description="Key prefix inside the bucket, e.g. "
                                  "`patrol/` (default: none)")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="`path` for MinIO, `virtual` for Aliyun OSS and Tencent COS")
    photo_urls: Literal["app", "presigned"] = Field(
        "app", description="Photos sent by the app, or (S3 only) a redirect to a "
        "short-lived presigned link; permissions are checked first either way")
    presign_seconds: int = Field(300, ge=10, le=604800, description="Lifetime of a "
                                 "presigned photo link")
    forms_dir: Path = Field(ROOT / "forms", description="Form definitions (default `forms/`)")
    secret_key: str | None = Field(None, description="Session signing key (default: random, "
                                   "kept in `var/secret_key`)")
    timezone: str = Field("Asia/Shanghai", description="For deadlines, dates, weeks and the "
                          "pages' times")

    # The field loop
    verify_window_minutes: int = Field(120, ge=1, description="How long after a QR scan a "
                                       "volunteer may verify fixes there")
    offline_max_days: int = Field(2, ge=1, description="How old work queued on a phone "
                                  "without signal may be")
    invite_hours: int = Field(72, ge=1, description="Invite link lifetime")
    device_days: int = Field(180, ge=1, description="How long a phone stays signed in")
    due_soon_hours: int = Field(6, ge=0, description="\"Due soon\" in lists: the last hours "
                                "before a deadline")
    ack_escalate_hours: float = Field(12, gt=0, description="Reported but not acknowledged "
                                      "this long: on the staff's escalation list")
    rating_min_items: int = Field(5, ge=1, description="Fewer items than this in a period: "
                                  "\"insufficient data\" (docs/scoring.md)")
    lookback_escalate_days: float = Field(3, gt=0, description="A fix waiting this long "
                                          "for its on-the-spot check (回头看): on the staff's "
                                          "escalation list")
    resident_rate_limit: str = Field("60 per 10 minutes", description="Resident reports "
                                     "per address (generous: a compound's shared Wi-Fi)")
    resident_device_limit: int = Field(5, ge=1, description="Resident reports per device "
                                       "and compound a day; more collapse into the last one")
    # Patrols on record (docs/patrols.md)
    patrol_auto_start: bool = Field(False, description="A gate scan starts a patrol by "
                                    "itself (else the volunteer taps 开始巡查; a team "
                                    "member's scan always joins one under way)")
    patrol_quiet_minutes: int = Field(60, ge=5, description="A patrol with no scan, check "
                                      "or report this long has ended (at its last activity)")
    patrol_hours_cap_minutes: int = Field(240, ge=15, description="Most service time one "
                                          "patrol gives a volunteer")
    patrol_hours_round_minutes: int = Field(15, ge=1, description="Service time is rounded "
                                            "to the nearest multiple of this")
    presence_default_radius_m: int = Field(300, ge=20, description="A compound's radius for "
                                           "位置不符 when it has a position but no radius")
    presence_accuracy_allowance_m: int = Field(150, ge=0, description="Most of the phone's "
                                               "stated inaccuracy forgiven before a scan is "
                                               "位置不符")
    max_photos: int = Field(4, ge=1, description="Photos per item")
    max_photo_mb: int = Field(15, ge=1, description="Largest photo, in MB")
    max_upload_mb: int = Field(40, ge=1, description="Largest request, in MB")

    # Notifications
    webhook_timeout: float = Field(5, gt=0, description="Seconds before a receiver counts "
                                   "as down")
    webhook_allow_private: bool = Field(False, description="Allow webhook addresses on "
                                        "loopback or private networks")
    delivery_max_attempts: int = Field(8, ge=1, description="Tries before a notification "
                                       "is given up")
    delivery_backoff_seconds: int = Field(60, ge=1, description="First wait before a retry "
                                          "(doubles each time)")
    delivery_backoff_max_hours: int = Field(6, ge=1, description="Longest wait between "
                                            "retries")
    smtp_host: str | None = Field(None, description="Mail server; without it e-mail "
                                  "receivers cannot be added")
    smtp_port: int = Field(587, ge=1, le=65535, description="Mail server port (465: TLS)")
    smtp_user: str | None = Field(None, description="Mail server user")
    smtp_password: str | None = Field(None, description="Mail server password")
    smtp_starttls: bool = Field(True, description="STARTTLS on port 587")
    smtp_from: str = Field("patrol@localhost", description="Sender address of e-mails")

    # Jobs (docs/jobs.md)
    queue: Literal["embedded", "redis"] = Field(
        "embedded", description="Job queue (Huey): `embedded`, a SQLite file in the "
        "instance folder that `patrol worker` runs (what `make run` starts), or `redis` "
        "(PATROL_REDIS_URL) for several servers")
    redis_url: str | None = Field(None, description="Redis, e.g. `redis://127.0.0.1:6379/0`: "
                                  "the job queue with `PATROL_QUEUE=redis`, and the rate "
                                  "limits' store unless PATROL_RATELIMIT_STORAGE_URI says "
                                  "otherwise")
    queue_workers: int = Field(2, ge=1, le=64, description="Jobs `patrol worker` runs at "
                               "once (threads)")
    job_max_attempts: int = Field(4, ge=1, description="Tries before a job counts as "
                                  "failed (staff may retry it on /jobs)")
    job_backoff_seconds: int = Field(30, ge=1, description="First wait before a failed job "
                                     "is tried again (doubles each time)")
    job_keep_days: int = Field(7, ge=1, description="How long finished jobs and their "
                               "files are kept")

    # Security and operations
    secure_cookies: bool = Field(True, description="Keep `1` behind HTTPS; browsers treat "
                                 "`http://127.0.0.1` as secure, a phone on a LAN address "
                                 "over plain http does not")
    hsts: bool = Field(True, description="Send Strict-Transport-Security on HTTPS requests")
    compress: bool = Field(True, description="Compress pages, scripts and styles (brotli or "
                           "gzip, Flask-Compress); `0` when a proxy in front compresses")
    proxy_hops: int = Field(0, ge=0, description="Trusted reverse-proxy hops "
                            "(`X-Forwarded-For`), for rate limits and HTTPS detection")
    ratelimit_storage_uri: str | None = Field(None, description="Shared limiter store for "
                                              "several workers, e.g. "
                                              "`redis://localhost:6379`; default: "
                                              "PATROL_REDIS_URL if set, else `memory://` "
                                              "(one count per process)")
    login_rate_limit: str = Field("10 per minute", description="Sign-in attempts per "
                                  "address")
    log_level: str = Field("INFO", description="Logging level (one line per request, with "
                           "its request id)")
    sentry_dsn: str | None = Field(None, description="Report errors to Sentry "
                                   "(needs `pip install sentry-sdk`)")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> Settings:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("PATROL_STORAGE=s3 needs PATROL_S3_BUCKET")
        return self

    @model_validator(mode="after")
    def _redis_queue_needs_url(self) -> Settings:
        if self.queue == "redis" and not self.redis_url:
            raise ValueError("PATROL_QUEUE=redis needs PATROL_REDIS_URL")
        return self

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    def flask_config(self) -> dict[str, Any]:
        """These settings as Flask config keys (the names the code reads)."""
        return {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "BASE_URL": self.base_url or DEFAULT_BASE_URL,
            "BASE_URL_SET": bool(self.base_url),
            "INSTANCE_DIR": self.instance_dir,
            "PHOTO_DIR": str(self.photo_dir) if self.photo_dir else None,
            "FORMS_DIR": self.forms_dir,
            "STORAGE": self.storage,
            "S3_ENDPOINT_URL": self.s3_endpoint_url,
            "S3_PUBLIC_ENDPOINT_URL": self.s3_public_endpoint_url,
            "S3_BUCKET": self.s3_bucket,
            "S3_REGION": self.s3_region,
            "S3_ACCESS_KEY_ID": self.s3_access_key_id,
            "S3_SECRET_ACCESS_KEY": self.s3_secret_access_key,
            "S3_PREFIX": self.s3_prefix,
            "S3_ADDRESSING_STYLE": self.s3_addressing_style,
            "PHOTO_URLS": self.photo_urls,
            "PRESIGN_SECONDS": self.presign_seconds,
            "SECRET_KEY": self.secret_key,
            "TIMEZONE": self.timezone,
            "BABEL_DEFAULT_TIMEZONE": self.timezone,
            "VERIFY_WINDOW": timedelta(minutes=self.verify_window_minutes),
            "OFFLINE_MAX_AGE": timedelta(days=self.offline_max_days),
            "INVITE_LIFETIME": timedelta(hours=self.invite_hours),
            "REMEMBER_COOKIE_DURATION": timedelta(days=self.device_days),
            "DUE_SOON": timedelta(hours=self.due_soon_hours),
            "ACK_ESCALATE": timedelta(hours=self.ack_escalate_hours),
            "RATING_MIN_ITEMS": self.rating_min_items,
            "LOOKBACK_ESCALATE": timedelta(days=self.lookback_escalate_days),
            "RESIDENT_RATE_LIMIT": self.resident_rate_limit,
            "RESIDENT_DEVICE_LIMIT": self.resident_device_limit,
            "PATROL_AUTO_START": self.patrol_auto_start,
            "PATROL_QUIET": timedelta(minutes=self.patrol_quiet_minutes),
            "PATROL_HOURS_CAP_MINUTES": self.patrol_hours_cap_minutes,
            "PATROL_HOURS_ROUND_MINUTES": self.patrol_hours_round_minutes,
            "PRESENCE_DEFAULT_RADIUS_M": self.presence_default_radius_m,
            "PRESENCE_ACCURACY_ALLOWANCE_M": self.presence_accuracy_allowance_m,
            "MAX_PHOTOS": self.max_photos,
            "MAX_PHOTO_BYTES": self.max_photo_mb * 1024 * 1024,
            "MAX_CONTENT_LENGTH": self.max_upload_mb * 1024 * 1024,
            "WEBHOOK_TIMEOUT": self.webhook_timeout,
            "WEBHOOK_ALLOW_PRIVATE": self.webhook_allow_private,
            "DELIVERY_MAX_ATTEMPTS": self.delivery_max_attempts,
            "DELIVERY_BACKOFF": timedelta(seconds=self.delivery_backoff_seconds),
            "DELIVERY_BACKOFF_MAX": timedelta(hours=self.delivery_backoff_max_hours),
            "SMTP_HOST": self.smtp_host,
            "SMTP_PORT": self.smtp_port,
            "SMTP_USER": self.smtp_user,
            "SMTP_PASSWORD": self.smtp_password,
            "SMTP_STARTTLS": self.smtp_starttls,
            "SMTP_FROM": self.smtp_from,
            "SESSION_COOKIE_SECURE": self.secure_cookies,
            "REMEMBER_COOKIE_SECURE": self.secure_cookies,
            "HSTS": self.hsts,
            "COMPRESS_REGISTER": self.compress,
            "PROXY_HOPS": self.proxy_hops,
            "RATELIMIT_STORAGE_URI": self.ratelimit_storage_uri or self.redis_url
            or "memory://",
            "QUEUE": self.queue,
            "REDIS_URL": self.redis_url,
            "QUEUE_WORKERS": self.queue_workers,
            "JOB_MAX_ATTEMPTS": self.job_max_attempts,
            "JOB_BACKOFF": timedelta(seconds=self.job_backoff_seconds),
            "JOB_KEEP": timedelta(days=self.job_keep_days),
            "LOGIN_RATE_LIMIT": self.login_rate_limit,
            "LOG_LEVEL": self.log_level,
            "SENTRY_DSN": self.sentry_dsn,
        }


class _FromMapping(Settings):
    """Settings from a given mapping only, never the process environment (tests, checks)."""

    @classmethod
    def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: Any, env_settings: Any,
            dotenv_settings: Any, file_secret_settings: Any) -> tuple[Any, ...]:
        return (init_settings,)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from the environment (or `environ`); SettingsError names what is wrong."""
    try:
        if environ is None:
            return Settings()
        keys = {k[len(PREFIX):].lower(): v for k, v in environ.items() if k.startswith(PREFIX)}
        return _FromMapping.model_validate({k: v for k, v in keys.items()
                                            if k in Settings.model_fields})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:   # a rule across settings: its message names them
                problems.append(err["msg"])
                continue
            name = PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("Bad setting: " + "; ".join(problems)) from None


def _default_text(name: str, field: FieldInfo) -> str:
    if field.default is None:
        return "—"
    value = field.default
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, Path):
        try:
            value = value.relative_to(ROOT)
        except ValueError:
            pass
    return f"`{value}`"


def markdown_table() -> str:
    """README.md's configuration table."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        lines.append(f"| `{PREFIX}{name.upper()}` | {_default_text(name, field)} | "
                     f"{field.description} |")
    return "\n".join(lines)
