"""The CLI prints links and QR codes only for an address it was given.

`PORT=5101 make run` serves on 5101; `patrol invite` in another shell used to print
http://127.0.0.1:5000/invite/… (the built-in default) and `patrol posters` to print
posters whose QR codes open a dead address. Without PATROL_BASE_URL the commands that
print links or QR codes refuse, before they create anything, and say what to set.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from patrol.config import DEFAULT_BASE_URL
from patrol.extensions import db
from patrol.models import Invite, User
from tests.conftest import PG_URL, make_app
from tests.factories import build_world


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def engine_url(request, tmp_path):
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("no PostgreSQL server (run `make test`)")
    return PG_URL if request.param == "postgresql" else None


def cli_app(tmp_path, url, **config):
    app = make_app(tmp_path, url, **config)
    with app.app_context():
        world = build_world()
    return app, world


def count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def dispose(app):
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# Every command that prints a link or a QR code.
LINK_COMMANDS = {
    "invite": lambda out: ["invite", "vol_a"],
    "create-user": lambda out: ["create-user", "--username", "vol_new", "--name", "新志愿者",
                                "--role", "volunteer", "--community", "社区A"],
    "posters": lambda out: ["posters", "--community", "社区A", "-o", str(out / "posters.pdf")],
    "weekly": lambda out: ["weekly", "--compound", "小区A1", "-o", str(out / "weekly")],
}


@pytest.mark.parametrize("command", sorted(LINK_COMMANDS))
def test_without_patrol_base_url_link_commands_refuse_and_create_nothing(tmp_path, engine_url,
                                                                         command):
    # What Config gives when PATROL_BASE_URL is not in the environment.
    app, _ = cli_app(tmp_path, engine_url, BASE_URL=DEFAULT_BASE_URL, BASE_URL_SET=False)
    try:
        out = tmp_path / "out"
        out.mkdir()
        users, invites = count(app, User), count(app, Invite)
        result = app.test_cli_runner().invoke(args=LINK_COMMANDS[command](out))
        assert result.exit_code == 1, result.output
        assert "PATROL_BASE_URL" in result.output and "/invite/" not in result.output
        assert (count(app, User), count(app, Invite)) == (users, invites)
        assert list(out.iterdir()) == []
    finally:
        dispose(app)


def test_commands_without_links_need_no_base_url(tmp_path):
    app, _ = cli_app(tmp_path, None, BASE_URL=DEFAULT_BASE_URL, BASE_URL_SET=False)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "--username", "staff_new", "--name", "新干部",
                                 "--role", "staff", "--community", "社区A",
                                 "--password", "long-enough-1"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["set-password", "staff_new", "--password",
                               "long-enough-2"]).exit_code == 0
    assert runner.invoke(args=["photos-orphans"]).exit_code == 0
    dispose(app)


@pytest.mark.parametrize("base", ["http://127.0.0.1:5101", DEFAULT_BASE_URL + "/"])
def test_a_given_base_url_is_used_even_the_default_one(tmp_path, engine_url, base):
    """Given (PATROL_BASE_URL), the address is trusted: also http://127.0.0.1:5000 itself."""
    app, world = cli_app(tmp_path, engine_url, BASE_URL=base, BASE_URL_SET=True)
    try:
        runner = app.test_cli_runner()
        result = runner.invoke(args=["invite", "vol_a"])
        assert result.exit_code == 0, result.output
        assert re.fullmatch(re.escape(base.rstrip("/")) + r"/invite/[\w-]+\n", result.output)
        made = runner.invoke(args=LINK_COMMANDS["create-user"](tmp_path))
        assert made.exit_code == 0, made.output
        assert made.output.startswith(base.rstrip("/") + "/invite/")
        out = tmp_path / "posters.pdf"
        assert runner.invoke(args=LINK_COMMANDS["posters"](tmp_path)).exit_code == 0
        assert out.stat().st_size > 0
    finally:
        dispose(app)


def test_the_real_command_reads_patrol_base_url_from_the_environment(tmp_path):
    """End to end, as in `PORT=5101 make run` plus `.venv/bin/patrol invite` in another
    shell: the setting comes from the environment the process was started with."""
    app, _ = cli_app(tmp_path, None)
    dispose(app)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PATROL_", "FLASK_"))}
    env.update(PATROL_INSTANCE_DIR=str(tmp_path), PATROL_SECRET_KEY="test-secret",
               PATROL_DATABASE_URL=f"sqlite:///{tmp_path / 'test.db'}")

    def patrol(*args, **extra):
        return subprocess.run([sys.executable, "-c", "from patrol.cli import main; main()",
                               *args], env={**env, **extra}, capture_output=True, text=True,
                              timeout=120)

    refused = patrol("invite", "vol_a")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "PATROL_BASE_URL" in refused.stderr and "/invite/" not in refused.stdout
    given = patrol("invite", "vol_a", PATROL_BASE_URL="http://127.0.0.1:5101")
    assert given.returncode == 0, given.stderr
    assert re.fullmatch(r"http://127\.0\.0\.1:5101/invite/[\w-]+\n", given.stdout)
