"""Invite cards for a whole team, read back the way a phone would: each PDF page
rasterised with pdftoppm, every QR code decoded with zxing-cpp, and every decoded link
redeemed. Reprinting voids the old cards; names are printed as text, not markup.
"""
from __future__ import annotations

import re

import pytest

from patrol.display import local
from patrol.extensions import db
from patrol.lifecycle import Role
from patrol.models import Invite, Team, User
from tests.conftest import make_app, sign_in
from tests.factories import build_world
from tests.pdftools import (distinct_shapes, embedded_fonts, glyph_shapes, qr_texts,
                            require_poppler, run, write_pdf)

BASE_URL = "http://patrol.test"   # tests/conftest.make_app
INVITE = re.compile(re.escape(BASE_URL) + r"/invite/([A-Za-z0-9_-]{32})$")
NAMES = ["<b>&王", "李阿姨", "张师傅", "陈大姐", "刘老师", "赵叔", "钱奶奶", "孙伯伯",
         "周姐"]       # 9 volunteers: a full sheet of 8 and one more


@pytest.fixture(autouse=True)
def _poppler():
    require_poppler()


def add_team(app, world, names=NAMES) -> int:
    """Team A's volunteers: vol_a (片长) and `names` (their titles vary); one inactive
    volunteer and one of another team, who get no card."""
    with app.app_context():
        team = db.session.get(Team, world.team)
        for n, name in enumerate(names):
            db.session.add(User(username=f"v{n}", display_name=name, role=Role.VOLUNTEER.value,
                                title=["组长", None, "红色管家"][n % 3],
                                community_id=world.ca, team=team))
        db.session.add(User(username="gone", display_name="已停用", role=Role.VOLUNTEER.value,
                            community_id=world.ca, team=team, active=False))
        db.session.add(User(username="other", display_name="别队的", role=Role.VOLUNTEER.value,
                            community_id=world.ca))
        db.session.commit()
        return team.id


def print_cards(app, client, team_id):
    """The district page's way: the cards job, run by the worker, then its file."""
    from patrol.jobs import run_queued
    started = client.post(f"/district/teams/{team_id}/cards-job")
    assert started.status_code == 302 and re.fullmatch(r"/jobs/\d+", started.location)
    assert run_queued(app) == 1
    status = client.get(started.location + ".json").get_json()
    assert status["state"] == "done", status
    return client.get(status["result"])


def decoded_tokens(pdf: bytes, tmp_path, name) -> list[list[str]]:
    pages = qr_texts(write_pdf(pdf, tmp_path, name))
    out = []
    for page in pages:
        tokens = []
        for text in page:
            m = INVITE.match(text)
            assert m, text
            tokens.append(m.group(1))
        out.append(tokens)
    return out


def pdf_text(pdf: bytes, tmp_path, name) -> str:
    path = write_pdf(pdf, tmp_path, name + "-text")
    return run("pdftotext", "-enc", "UTF-8", "-raw", str(path), "-")


def redeems(app, token) -> int:
    return app.test_client().post(f"/invite/{token}").status_code


# --- the web ----------------------------------------------------------------------------

def test_staff_print_a_teams_cards_and_every_card_signs_its_volunteer_in(app, world, client,
                                                                          tmp_path):
    team_id = add_team(app, world)
    sign_in(client, world.staff_a)
    assert str(team_id) in client.get("/district/").text
    resp = print_cards(app, client, team_id)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert "attachment" in resp.headers["Content-Disposition"]
    assert resp.headers["Cache-Control"] == "no-store"
    pages = decoded_tokens(resp.data, tmp_path, "cards")
    assert [len(p) for p in pages] == [8, 2]          # 10 volunteers, 8 cards a sheet
    tokens = [t for page in pages for t in page]
    assert len(set(tokens)) == 10

    text = pdf_text(resp.data, tmp_path, "cards")
    assert text.count("用手机扫码登录") == 10
    for name in NAMES + ["vol_a"]:
        assert name in text, name
    assert "已停用" not in text and "别队的" not in text
    with app.app_context():
        invites = db.session.execute(db.select(Invite)).scalars().all()
        assert len(invites) == 10 and all(i.created_by_id == world.staff_a for i in invites)
        expiry = {local(i.expires_at) for i in invites}
    assert any(f"有效期至 {e}" in text for e in expiry), text   # the expiry is printed
    assert "社区A · A队" in text

    # Each decoded link is a working one-time sign-in for its own volunteer.
    owners = set()
    for token in tokens:
        phone = app.test_client()
        assert phone.post(f"/invite/{token}").status_code == 302
        with app.app_context():
            user_id = db.session.execute(db.select(Invite.user_id).where(
                Invite.used_at.is_not(None)).order_by(Invite.used_at.desc(), Invite.id.desc())
            ).scalars().first()
        owners.add(user_id)
        assert redeems(app, token) == 410                # once only
    assert len(owners) == 10


def test_printing_again_voids_the_old_unused_cards(app, world, client, tmp_path):
    team_id = add_team(app, world, names=["甲", "乙"])
    sign_in(client, world.staff_a)
    first = [t for p in decoded_tokens(print_cards(app, client, team_id).data, tmp_path, "one")
             for t in p]
    assert len(first) == 3
    assert redeems(app, first[0]) == 302                 # one card was used already
    second = [t for p in decoded_tokens(print_cards(app, client, team_id).data, tmp_path, "two")
              for t in p]
    assert len(second) == 3 and not set(first) & set(second)
    for token in first[1:]:
        assert redeems(app, token) == 410                # old unused cards stop working
        assert app.test_client().get(f"/invite/{token}").status_code == 410
    for token in second:
        assert redeems(app, token) == 302                # the new ones work, the used
    with app.app_context():                              # card's volunteer included
        assert db.session.scalar(db.select(db.func.count()).select_from(Invite)
                                 .where(Invite.used_at.is_not(None))) == 4


def test_names_are_printed_as_text_not_markup(app, world, client, tmp_path):
    team_id = add_team(app, world, names=['<b>&王</b>', '"><img src=x>'])
    with app.app_context():
        db.session.get(Team, team_id).name = "A队<i>&"
        db.session.commit()
    sign_in(client, world.staff_a)
    resp = print_cards(app, client, team_id)
    assert resp.status_code == 200
    text = " ".join(pdf_text(resp.data, tmp_path, "escape").split())   # names may wrap
    assert "<b>&王</b>" in text and '"><img src=x>' in text and "A队<i>&" in text
    assert "&amp;" not in text and "&lt;" not in text


def test_the_chinese_on_the_cards_is_drawn_with_an_embedded_cjk_font(app, world, client,
                                                                      tmp_path):
    team_id = add_team(app, world, names=[])
    sign_in(client, world.staff_a)
    path = write_pdf(print_cards(app, client, team_id).data, tmp_path, "font")
    fonts = embedded_fonts(path)
    cjk = {f: e for f, e in fonts.items() if re.search(r"Noto.?Sans.?CJK", f, re.I)}
    assert cjk and all(e == "yes" for e in cjk.values()), fonts
    assert distinct_shapes(glyph_shapes(path, "用手机扫码登录"))


def test_admins_print_any_teams_cards(app, world, client, tmp_path):
    team_id = add_team(app, world, names=["甲"])
    sign_in(client, world.admin)
    resp = print_cards(app, client, team_id)
    assert [len(p) for p in decoded_tokens(resp.data, tmp_path, "admin")] == [2]


# --- the district page: the cards made by the job queue -------------------------------

def cards_job(client, team_id):
    return client.post(f"/district/teams/{team_id}/cards-job")


def jobs_of(app) -> list:
    from patrol.models import Job
    with app.app_context():
        return [(j.kind, j.params, j.created_by_id) for j in
                db.session.execute(db.select(Job).order_by(Job.id)).scalars()]


def test_the_district_page_makes_a_teams_cards_as_a_job(app, world, client, tmp_path):
    from patrol.jobs import run_queued
    team_id = add_team(app, world)
    sign_in(client, world.staff_a)
    page = client.get("/district/").text
    assert f'action="/district/teams/{team_id}/cards-job"' in page   # the button
    assert f"/district/teams/{team_id}/cards.pdf" not in page
    resp = cards_job(client, team_id)
    assert resp.status_code == 302 and re.fullmatch(r"/jobs/\d+", resp.location), resp.location
    assert jobs_of(app) == [("invite_cards", {"team_id": team_id}, world.staff_a)]
    job_page = client.get(resp.location).text
    assert '<progress id="job-progress"' in job_page and "js/jobs.js" in job_page
    with app.app_context():                  # nothing was made in the web request
        assert db.session.scalar(db.select(db.func.count()).select_from(Invite)) == 0

    assert run_queued(app) == 1              # the worker
    status = client.get(resp.location + ".json").get_json()
    assert status["state"] == "done" and status["result"], status
    assert "只能下载一次" in client.get(resp.location).text
    # Another community's staff: not the job, not the file.
    other = sign_in(app.test_client(), world.staff_b)
    assert other.get(resp.location).status_code == 404
    assert other.get(status["result"]).status_code == 404
    pdf = client.get(status["result"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Cache-Control"] == "no-store"
    pages = decoded_tokens(pdf.data, tmp_path, "job")
    assert [len(p) for p in pages] == [8, 2]
    tokens = [t for p in pages for t in p]
    assert len(set(tokens)) == 10
    text = pdf_text(pdf.data, tmp_path, "job")
    assert text.count("用手机扫码登录") == 10 and "已停用" not in text
    with app.app_context():
        invites = db.session.execute(db.select(Invite)).scalars().all()
        assert len(invites) == 10 and all(i.created_by_id == world.staff_a for i in invites)
    assert redeems(app, tokens[0]) == 302 and redeems(app, tokens[0]) == 410
    # Live sign-in links: the file leaves the server with its first download.
    assert client.get(status["result"]).status_code == 404
    assert "已从服务器删除" in client.get(resp.location).text


@pytest.mark.parametrize("who, status", [("staff_b", 404), ("vol_a", 403), ("mgr_x", 403),
                                         ("com_a1", 403)])
def test_only_staff_of_the_team_or_admins_start_the_cards_job(app, world, client, who, status):
    team_id = add_team(app, world, names=["甲"])
    sign_in(client, getattr(world, who))
    assert cards_job(client, team_id).status_code == status
    assert jobs_of(app) == []


def test_admins_start_any_teams_cards_job_and_an_empty_team_gets_none(app, world, client):
    team_id = add_team(app, world, names=["甲"])
    sign_in(client, world.admin)
    assert cards_job(client, team_id).status_code == 302
    assert jobs_of(app) == [("invite_cards", {"team_id": team_id}, world.admin)]
    with app.app_context():
        team = Team(name="空队", community_id=world.ca)
        db.session.add(team)
        db.session.commit()
        empty = team.id
    resp = cards_job(client, empty)
    assert resp.status_code == 302 and resp.location.endswith("/district/")
    assert "空队 还没有志愿者" in client.get(resp.location).text
    assert len(jobs_of(app)) == 1


def test_the_cards_job_is_a_post_with_a_csrf_token(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.staff_a)
    assert client.get(f"/district/teams/{w.team}/cards-job").status_code == 405
    assert client.post(f"/district/teams/{w.team}/cards-job").status_code == 400
    assert jobs_of(app) == []


# --- the CLI ----------------------------------------------------------------------------

def test_cli_prints_a_teams_cards(tmp_path, db_app):
    with db_app.app_context():
        world = build_world()
    add_team(db_app, world, names=["甲", "乙"])
    db_app.config.update(BASE_URL=BASE_URL, BASE_URL_SET=True)
    out = tmp_path / "cards.pdf"
    result = db_app.test_cli_runner().invoke(args=["invite-cards", "--team", "A队", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 card(s)" in result.output
    first = [t for p in decoded_tokens(out.read_bytes(), tmp_path, "cli") for t in p]
    assert len(first) == 3
    again = db_app.test_cli_runner().invoke(args=["invite-cards", "--team", "A队", "-o", str(out)])
    assert again.exit_code == 0, again.output
    second = [t for p in decoded_tokens(out.read_bytes(), tmp_path, "cli2") for t in p]
    assert redeems(db_app, first[0]) == 410 and redeems(db_app, second[0]) == 302


def test_cli_refuses_without_patrol_base_url_and_creates_nothing(tmp_path):
    from patrol.config import DEFAULT_BASE_URL
    app = make_app(tmp_path, BASE_URL=DEFAULT_BASE_URL, BASE_URL_SET=False)
    with app.app_context():
        world = build_world()
    add_team(app, world, names=["甲"])
    out = tmp_path / "cards.pdf"
    result = app.test_cli_runner().invoke(args=["invite-cards", "--team", "A队", "-o", str(out)])
    assert result.exit_code != 0
    assert "PATROL_BASE_URL" in result.output
    assert not out.exists()
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Invite)) == 0


def test_cli_asks_which_team_when_two_communities_have_one_of_that_name(tmp_path):
    app = make_app(tmp_path, BASE_URL_SET=True)
    with app.app_context():
        world = build_world()
        db.session.add(Team(name="A队", community_id=world.cb))
        db.session.commit()
    add_team(app, world, names=["甲"])
    out = tmp_path / "cards.pdf"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["invite-cards", "--team", "A队", "-o", str(out)])
    assert result.exit_code != 0 and "--community" in result.output and not out.exists()
    result = runner.invoke(args=["invite-cards", "--team", "A队", "--community", "社区A",
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["invite-cards", "--team", "没有这个队", "-o", str(out)])
    assert result.exit_code != 0
