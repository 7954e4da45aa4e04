"""Typed settings: defaults, bad values named, and the README's table in step."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from patrol import create_app, settings
from patrol.config import ROOT


def test_defaults_become_flask_config():
    cfg = settings.load({}).flask_config()
    assert cfg["VERIFY_WINDOW"] == timedelta(minutes=120)
    assert cfg["BABEL_DEFAULT_TIMEZONE"] == cfg["TIMEZONE"] == "Asia/Shanghai"
    assert cfg["SESSION_COOKIE_SECURE"] is True and cfg["QUEUE"] == "embedded"
    assert cfg["RATELIMIT_STORAGE_URI"] == "memory://"


def test_redis_is_the_queue_and_the_limits_store_when_set():
    cfg = settings.load({"PATROL_QUEUE": "redis",
                         "PATROL_REDIS_URL": "redis://127.0.0.1:6390/0"}).flask_config()
    assert cfg["QUEUE"] == "redis" and cfg["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6390/0"
    with pytest.raises(settings.SettingsError, match="PATROL_REDIS_URL"):
        settings.load({"PATROL_QUEUE": "redis"})
    assert cfg["BASE_URL"] == settings.DEFAULT_BASE_URL and cfg["BASE_URL_SET"] is False


def test_values_from_the_environment_are_typed():
    cfg = settings.load({"PATROL_VERIFY_WINDOW_MINUTES": "30", "PATROL_SECURE_COOKIES": "0",
                         "PATROL_TIMEZONE": "Asia/Urumqi", "PATROL_MAX_UPLOAD_MB": "8",
                         "PATROL_BASE_URL": "https://patrol.invalid"}).flask_config()
    assert cfg["VERIFY_WINDOW"] == timedelta(minutes=30)
    assert cfg["SESSION_COOKIE_SECURE"] is False
    assert cfg["BABEL_DEFAULT_TIMEZONE"] == "Asia/Urumqi"
    assert cfg["MAX_CONTENT_LENGTH"] == 8 * 1024 * 1024
    assert cfg["BASE_URL_SET"] is True


@pytest.mark.parametrize("name, value", [
    ("PATROL_VERIFY_WINDOW_MINUTES", "two hours"),
    ("PATROL_VERIFY_WINDOW_MINUTES", "0"),
    ("PATROL_SECURE_COOKIES", "maybe"),
    ("PATROL_TIMEZONE", "Mars/Olympus"),
    ("PATROL_SMTP_PORT", "70000"),
    ("PATROL_LOG_LEVEL", "loud"),
])
def test_a_bad_value_names_the_variable(name, value):
    with pytest.raises(settings.SettingsError) as info:
        settings.load({name: value})
    assert name in str(info.value) and repr(value) in str(info.value)


def test_the_app_refuses_to_start_with_a_bad_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("PATROL_DELIVERY_MAX_ATTEMPTS", "many")
    with pytest.raises(settings.SettingsError, match="PATROL_DELIVERY_MAX_ATTEMPTS"):
        create_app({"INSTANCE_DIR": tmp_path})


def test_readme_table_is_generated_from_the_settings():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block, "README.md lost its settings markers"
    assert block.group(1).strip() == settings.markdown_table(), \
        "README's configuration table is out of date: paste `patrol settings --markdown`"
    for name in settings.Settings.model_fields:
        assert f"`PATROL_{name.upper()}`" in block.group(1)


def test_every_patrol_variable_the_code_reads_is_a_setting():
    """No setting bypasses settings.py (os.environ reads of PATROL_* elsewhere)."""
    offenders = []
    for path in (ROOT / "patrol").rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"os\.environ|os\.getenv", text) and "PATROL_" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
