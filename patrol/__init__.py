"""Patrol (小区巡查): volunteer patrols of residential compounds."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from . import settings
from .config import ROOT, Config
from .extensions import babel, compress, csrf, db, limiter, login_manager, migrate


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=str(ROOT / "static"),
                template_folder=str(ROOT / "templates"))
    app.config.from_object(Config)
    app.config.update(settings.load().flask_config())
    if config:
        app.config.update(config)
    configure_paths(app)
    if app.config.get("PROXY_HOPS"):
        hops = app.config["PROXY_HOPS"]
        # Werkzeug's documented way to wrap the WSGI app; mypy sees a method being replaced.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    load_form_definitions(app)
    register_extensions(app)
    register_blueprints(app)
    register_security(app)
    register_observability(app)
    register_template_helpers(app)
    register_commands(app)
    return app


def configure_paths(app: Flask):
    instance = Path(app.config["INSTANCE_DIR"])
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'patrol.db'}"
    if not app.config.get("PHOTO_DIR"):
        app.config["PHOTO_DIR"] = str(instance / "photos")
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance)


def _instance_secret(instance: Path) -> str:
    """A random key kept in the instance folder, so restarts keep sessions."""
    path = instance / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def load_form_definitions(app: Flask):
    """Forms are checked at start-up: a broken definition stops the app with every error."""
    from .formdefs import load_forms
    app.extensions["patrol.forms"] = load_forms(Path(app.config["FORMS_DIR"]))


COMPRESS_DEFAULTS = {
    "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                           "application/json", "text/csv", "text/xml", "image/svg+xml",
                           "application/manifest+json"],
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],
    "COMPRESS_BR_LEVEL": 5,
    "COMPRESS_LEVEL": 6,
    "COMPRESS_MIN_SIZE": 500,
}


def register_extensions(app: Flask):
    from . import models  # noqa: F401  (register tables)
    from .i18n import select_locale, select_timezone
    from .services.accounts import load_login

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    limiter.init_app(app)
    # Text answers go out compressed: brotli where the phone accepts it, else gzip (a
    # streamed one, like a static file or a CSV ledger, likewise). Photos, PDFs
    # and spreadsheets are compressed already and left alone.
    for key, value in COMPRESS_DEFAULTS.items():
        app.config.setdefault(key, value)
    from .web import static_files
    static_files.configure(app)  # versioned static files compressed once and kept
    compress.init_app(app)
    static_files.init_app(app)   # after Flask-Compress, so its hook runs first
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.user_loader(load_login)
    from .web.auth import unauthorized
    login_manager.unauthorized_handler(unauthorized)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL, a busy timeout and foreign keys for SQLite; nothing for other engines."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def register_blueprints(app: Flask):
    from .web import (admin, auth, compounds, district, health, items, lists, notifications,
                      offline, photos, ratings, reports)
    for module in (auth, compounds, items, lists, photos, admin, offline, reports, ratings,
                   notifications, district, health):
        app.register_blueprint(module.bp)
    from .web import audit as audit_page, places
    app.register_blueprint(places.bp)
    app.register_blueprint(audit_page.bp)
    from .web import handover, people
    app.register_blueprint(handover.bp)
    app.register_blueprint(people.bp)
    from .web import residents
    app.register_blueprint(residents.bp)
    from .web import committee, departments
    app.register_blueprint(departments.bp)
    app.register_blueprint(committee.bp)
    from .web import exports
    app.register_blueprint(exports.bp)
    from .web import api_tokens
    app.register_blueprint(api_tokens.bp)
    from . import api
    api.init_app(app)
    from .web import open311
    app.register_blueprint(open311.bp)
    from .web import monthly
    app.register_blueprint(monthly.bp)
    from .web import coverage, hours
    app.register_blueprint(coverage.bp)
    app.register_blueprint(hours.bp)
    from .web import patrols
    app.register_blueprint(patrols.bp)
    from .web import jobs
    app.register_blueprint(jobs.bp)


def register_security(app: Flask):
    from .web.security import install
    install(app)


def register_observability(app: Flask):
    from .observability import install
    install(app)


def register_template_helpers(app: Flask):
    from .web.helpers import install
    install(app)


def register_commands(app: Flask):
    from .cli import install
    install(app)
    from .cli_handover import install as install_handover
    install_handover(app)
    from .cli_backup import install as install_backup
    install_backup(app)
