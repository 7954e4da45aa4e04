"""One way to make a volunteer: staff's 志愿者 page and `patrol create-user --role volunteer`
call accounts.create_volunteer, so both apply the same rules (name, phone, title,
community and team, a unique user name) and both refuse by creating nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.models import Invite, Team, User
from patrol.services import accounts
from tests.conftest import sign_in

LIFETIME = timedelta(hours=72)


def _count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_the_service_lists_every_problem_and_creates_nothing(app, world):
    with app.app_context():
        other_team = Team(name="B队", community_id=world.cb)
        db.session.add(other_team)
        db.session.flush()
        before = db.session.scalar(db.select(db.func.count()).select_from(User))
        with pytest.raises(accounts.VolunteerInvalid) as refused:
            accounts.create_volunteer(display_name=" ", phone="138abc", title="队长",
                                      community_id=world.ca, team=other_team,
                                      username="vol_a", created_by=None, lifetime=LIFETIME)
        assert refused.value.errors == {"display_name": "name", "phone": "phone",
                                        "title": "title", "team_id": "team",
                                        "username": "username_taken"}
        with pytest.raises(accounts.VolunteerInvalid) as refused:
            accounts.create_volunteer(display_name="王", created_by=None, lifetime=LIFETIME)
        assert refused.value.errors == {"team_id": "team"}   # no community at all
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == before


def test_the_service_makes_a_volunteer_with_an_invite(app, world):
    with app.app_context():
        team = db.session.get(Team, world.team)
        user, token = accounts.create_volunteer(display_name=" 王阿姨 ", phone="＋86 １３８-0000",
                                                team=team, created_by=None, lifetime=LIFETIME)
        db.session.commit()
        assert (user.display_name, user.phone, user.title, user.role, user.community_id,
                user.team_id) == ("王阿姨", "+86 138-0000", "志愿者", "volunteer", world.ca,
                                  world.team)
        assert user.username.startswith("v-") and user.password_hash is None
        assert accounts.find_invite(token).user_id == user.id


def test_staff_page_refuses_a_title_not_in_the_list(app, world):
    staff = sign_in(app.test_client(), world.staff_a)
    users = _count(app, User)
    resp = staff.post("/admin/volunteers", data={"display_name": "王", "title": "队长"})
    assert resp.status_code == 422 and _count(app, User) == users
    assert staff.post("/admin/volunteers", data={"display_name": "王", "title": "邻长"}
                      ).status_code == 302


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=["create-user", *args])


@pytest.fixture
def linked_app(app):
    app.config.update(BASE_URL="http://patrol.test", BASE_URL_SET=True)
    return app


def test_the_cli_applies_the_same_rules(linked_app, world):
    app = linked_app
    users, invites = _count(app, User), _count(app, Invite)
    for args, problem in [
        (["--username", "vol_a", "--name", "新人", "--community", "社区A"], "already taken"),
        (["--username", "v_new", "--name", "新人", "--community", "社区A", "--title", "队长"],
         "--title must be one of"),
        (["--username", "v_new", "--name", "x" * 61, "--community", "社区A"], "1 to 60"),
        (["--username", "v_new", "--name", "新人"], "needs --community"),
        (["--username", "v_new", "--name", "新人", "--community", "社区A",
          "--password", "long-enough-1"], "no --password"),
        (["--username", "v_new", "--name", "新人", "--community", "社区A",
          "--company", "物业X"], "no --company"),
    ]:
        result = _cli(app, *args, "--role", "volunteer")
        assert result.exit_code == 2, (args, result.output)
        assert problem in result.output, (args, result.output)
    assert (_count(app, User), _count(app, Invite)) == (users, invites)

    made = _cli(app, "--username", "v_new", "--name", "新人", "--community", "社区A",
                "--role", "volunteer")
    assert made.exit_code == 0, made.output
    assert made.output.startswith("http://patrol.test/invite/")
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "v_new")).scalar_one()
        assert (user.title, user.role, user.community_id) == ("志愿者", "volunteer", world.ca)
