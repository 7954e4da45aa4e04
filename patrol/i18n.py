"""Locale choice: Simplified Chinese unless the user asked for English."""
from flask import current_app, request, session


def select_locale():
    lang = session.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        return lang
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone():
    return current_app.config["TIMEZONE"]


def current_lang() -> str:
    return select_locale() if request else "zh"
