"""patrol/display.py: the language is given, never taken from a faked request."""
from __future__ import annotations

from datetime import datetime

from flask import has_request_context, render_template_string, session
from flask_babel import gettext

from patrol import display
from patrol.services import weekly


def test_language_is_explicit_and_needs_no_request(app):
    with app.app_context():
        assert not has_request_context()
        assert display.current_lang() == app.config["BABEL_DEFAULT_LOCALE"] == "zh"
        assert display.category_label("flyers") == "小广告"
        with display.language("en"):
            assert not has_request_context()
            assert display.current_lang() == "en"
            assert display.category_label("flyers") == "Illegal flyers"
            assert gettext("Reported") == "Reported"
            assert render_template_string("{{ _('Reported') }}") == "Reported"
        assert display.category_label("flyers", "en") == "Illegal flyers"
        with display.language("zh"):
            assert gettext("Reported") == "已上报"
        with weekly.rendering_locale("en"):      # the CLI's way in
            assert not has_request_context() and display.category_label("flyers") == \
                "Illegal flyers"
        assert display.category_label("no_such_code", "en") == "no_such_code"
        assert display.local(datetime(2026, 3, 1, 16, 30)) == "2026-03-02 00:30"
        assert display.local(datetime(2026, 3, 1, 16, 30), "%H:%M", tz="UTC") == "16:30"
        assert display.local(None) == ""


def test_in_a_request_the_users_choice_unless_a_language_is_given(app):
    with app.test_request_context("/"):
        session["lang"] = "en"          # what the /lang form stores
        assert display.current_lang() == "en"
        assert display.category_label("flyers") == "Illegal flyers"
        with display.language("zh"):
            assert display.category_label("flyers") == "小广告"
        assert display.current_lang() == "en"
