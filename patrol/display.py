"""Showing things to people: the form definitions in use, category labels, local times and
the language they are shown in.

Shared by the web views (web/helpers.py re-exports these for the blueprints and the
templates) and by the services that render documents or messages (weekly lists,
notifications), so services never import `web`. Needs an app context, never a request:
the language is passed in, or set for a block with `language(lang)`, and only inside a
request without either is it the user's own choice.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context
from flask_babel import force_locale

from . import i18n

_LANGUAGE: ContextVar[str | None] = ContextVar("patrol_display_language", default=None)


# --- forms ------------------------------------------------------------------------------

def hazard_form():
    return current_app.extensions["patrol.forms"]["hazard"]


def form_for(item):
    """The definition (and version) an item was made with; the current one if retired."""
    return current_app.extensions["patrol.forms"].for_item(item) or hazard_form()


# --- language ---------------------------------------------------------------------------

def current_lang() -> str:
    """The language being shown: the one set with `language()`, else (in a request) the
    user's choice, else the default."""
    lang = _LANGUAGE.get()
    if lang:
        return lang
    if has_request_context():
        return i18n.current_lang()
    return current_app.config["BABEL_DEFAULT_LOCALE"]


@contextmanager
def language(lang: str):
    """Show everything in `lang` within the block: translated messages (Flask-Babel's
    force_locale) and labels from the form definitions alike. An app context is enough."""
    token = _LANGUAGE.set(lang)
    try:
        with force_locale(lang):
            yield
    finally:
        _LANGUAGE.reset(token)


def category_label(code: str, lang: str | None = None, *, form=None) -> str:
    """A category's label in `lang` (default: current_lang()) from `form` (default: the
    current hazard form); the code itself if the form has no such category."""
    form = form or hazard_form()
    category = form.category(code)
    return form.label(category, lang or current_lang()) if category else code


def category_icon(code: str) -> str:
    category = hazard_form().category(code)
    return category.get("icon", "") if category else ""


# --- time -------------------------------------------------------------------------------

def local(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M", *, tz: str | None = None) -> str:
    """A naive-UTC time (as stored) in the configured time zone (or `tz`), formatted."""
    if dt is None:
        return ""
    zone = ZoneInfo(tz or current_app.config["TIMEZONE"])
    return dt.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).strftime(fmt)
