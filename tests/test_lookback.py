"""Nobody forgets a look-back (回头看): the 待回头看 list on a volunteer's home, the
"fixed" message to the team's group robot, and the escalation of a fix left unchecked
for longer than LOOKBACK_ESCALATE; the committee's 督办 and disputed items on the staff
escalation list. The clock is the suite's (time-machine), moved with time_machine."""
from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
import time_machine

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import (Compound, Delivery, Item, NotifyEndpoint, Team, User,
                           utcnow)
from patrol.services import escalation
from patrol.services import items as svc
from patrol.services import notify as notify_service
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

WINDOW = timedelta(hours=2)


def make_item(w, compound_id, *, category="flying_wire", at=None):
    vol = db.session.get(User, w.vol_a if compound_id != w.b1 else w.vol_b)
    item = svc.report(form=hazard_form(), compound=db.session.get(Compound, compound_id),
                      reporter=vol, clean={"category": category, "extra": {}}, now=at or utcnow(),
                      photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
    db.session.flush()
    return item


def fix(w, item, at):
    """Acknowledge and fix, as the compound's company's manager, at `at`."""
    mgr = db.session.get(User, w.mgr_x if item.company_id == w.x else w.mgr_y)
    svc.act(item, Action.ACKNOWLEDGE, mgr, at, svc.ActionInput(), form=hazard_form(),
            window=WINDOW)
    svc.act(item, Action.FIX, mgr, at, svc.ActionInput(
        note="已整改", photos=[save_upload(jpeg_bytes(color=(20, 160, 60)), uploader=mgr,
                                          kind="after")]), form=hazard_form(), window=WINDOW)
    db.session.commit()
    return item.id


@pytest.fixture
def w(app):
    """The world, plus a second team in community A that walks only A2 (vol_a2), and
    compound A3 that no team walks; vol_a's team walks A1 and A2."""
    with app.app_context():
        w = build_world()
        a1 = db.session.get(Compound, w.a1)
        a3 = Compound(name="小区A3", community_id=a1.community_id, company_id=w.x)
        db.session.add(a3)
        db.session.flush()
        team2 = Team(name="A二队", community_id=a1.community_id,
                     compounds=[db.session.get(Compound, w.a2)])
        db.session.add(team2)
        db.session.flush()
        vol2 = User(username="vol_a2", display_name="vol_a2", role="volunteer",
                    community_id=a1.community_id, team_id=team2.id)
        loner = User(username="vol_loner", display_name="vol_loner", role="volunteer",
                     community_id=a1.community_id)
        db.session.add_all([vol2, loner])
        db.session.commit()
        w.a3, w.team2, w.vol_a2, w.loner = a3.id, team2.id, vol2.id, loner.id
        return w


def lookback_ids(page: str) -> list[int]:
    section = page.split('id="lookback"', 1)[1].split("</section>", 1)[0]
    return [int(i) for i in re.findall(r'data-item="(\d+)"', section)]


def test_the_list_holds_the_teams_fixed_items_oldest_first(app, w, client):
    now = utcnow()
    with app.app_context():
        newer_a1 = fix(w, make_item(w, w.a1), now - timedelta(hours=5))
        older_a2 = fix(w, make_item(w, w.a2), now - timedelta(days=2))
        fix(w, make_item(w, w.a3), now - timedelta(days=1))   # no team of vol_a's walks A3
        fix(w, make_item(w, w.b1), now - timedelta(days=3))   # another community
        make_item(w, w.a1, category="fire_exit")              # open, not fixed yet
        db.session.commit()
    sign_in(client, w.vol_a)
    page = client.get("/compounds").get_data(as_text=True)
    assert lookback_ids(page) == [older_a2, newer_a1]
    assert re.search(r'id="lookback-count">2<', page)
    assert re.search(r'id="nav-lookback"[^>]*>2<', page)       # the badge in the menu
    section = page.split('id="lookback"', 1)[1].split("</section>", 1)[0]
    assert section.count("/thumb.jpg") == 4                    # before and after, each
    assert "扫小区门口的二维码" in section                       # the check needs the gate scan
    assert f'href="/compounds/{w.a1}"' in section and f'href="/items/{newer_a1}"' in section

    # Another team sees its own compound only; a volunteer without a team, the community's.
    sign_in(client, w.vol_a2)
    assert lookback_ids(client.get("/compounds").get_data(as_text=True)) == [older_a2]
    sign_in(client, w.loner)
    ids = lookback_ids(client.get("/compounds").get_data(as_text=True))
    assert len(ids) == 3 and ids[0] == older_a2
    # Verified: off the list.
    with app.app_context():
        item = db.session.get(Item, older_a2)
        vol = db.session.get(User, w.vol_a)
        svc.record_presence(vol, item.compound, utcnow())
        svc.act(item, Action.VERIFY, vol, utcnow(), svc.ActionInput(
            photos=[save_upload(jpeg_bytes(), uploader=vol, kind="check")], rating=4),
            form=hazard_form(), window=WINDOW)
        db.session.commit()
    sign_in(client, w.vol_a)
    page = client.get("/compounds").get_data(as_text=True)
    assert lookback_ids(page) == [newer_a1]


def test_home_of_a_volunteer_opens_the_list_and_nobody_else_gets_it(app, w, client):
    with app.app_context():
        fix(w, make_item(w, w.a1), utcnow())
    sign_in(client, w.vol_a)
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/compounds")
    sign_in(client, w.mgr_x)
    page = client.get("/inbox").get_data(as_text=True)
    assert 'id="nav-lookback"' not in page


def test_the_list_is_kept_for_offline_use(app, w, client):
    """/compounds (where the list is) and the waiting items' pages are on /sync/pages;
    the thumbnails go with the kept pages (sw.js keeps those a kept page shows)."""
    with app.app_context():
        item_id = fix(w, make_item(w, w.a1), utcnow())
    sign_in(client, w.vol_a)
    urls = client.get("/sync/pages").json["urls"]
    assert "/compounds" in urls and f"/items/{item_id}" in urls


def test_a_fix_reaches_the_teams_receiver(app, w):
    with app.app_context():
        team_ep = NotifyEndpoint(name="A队群", team_id=w.team, kind="json",
                                 target="https://team-a.invalid/hook",
                                 events=["fixed", "lookback_late"])
        other_team = NotifyEndpoint(name="A二队群", team_id=w.team2, kind="json",
                                    target="https://team-a2.invalid/hook",
                                    events=["fixed", "lookback_late"])
        db.session.add_all([team_ep, other_team])
        db.session.commit()
        item_id = fix(w, make_item(w, w.a1), utcnow())
        found = db.session.execute(db.select(Delivery).where(
            Delivery.event == "fixed")).scalars().all()
        assert [(d.endpoint_id, d.item_id) for d in found] == [(team_ep.id, item_id)]
        payload = found[0].payload
        assert payload["item"]["id"] == item_id and "回头看" in payload["title"]


def test_a_fix_left_unchecked_escalates_after_the_setting(app, w):
    limit = app.config["LOOKBACK_ESCALATE"]
    assert limit == timedelta(days=3)                 # the default setting
    with app.app_context():
        ep = NotifyEndpoint(name="A队群", team_id=w.team, kind="json",
                            target="https://team-a.invalid/hook", events=["lookback_late"])
        db.session.add(ep)
        db.session.commit()
        start = utcnow()
        item_id = fix(w, make_item(w, w.a1), start)
        scope = Item.community_id == w.ca

        def late_ids(now):
            found = escalation.groups(scope, now, ack_limit=app.config["ACK_ESCALATE"],
                                      horizon=app.config["DUE_SOON"])
            return [i.id for i in found["lookback_late"]]

        assert late_ids(utcnow()) == []
        assert notify_service.enqueue_lookback_late(utcnow()) == 0
        # The suite's clock, moved on: a day short of the limit, then past it.
        with time_machine.travel(start + limit - timedelta(hours=1), tick=False):
            now = utcnow()
            assert late_ids(now) == []
            assert not escalation.is_lookback_late("fixed", start, now, limit)
        with time_machine.travel(start + limit + timedelta(minutes=5), tick=False):
            now = utcnow()
            assert late_ids(now) == [item_id]
            item = db.session.get(Item, item_id)
            assert escalation.reasons(item, now, app.config["ACK_ESCALATE"]) == ["lookback_late"]
            assert escalation.is_lookback_late("fixed", start, now, limit)
            assert not escalation.is_lookback_late("verified", start, now, limit)
            # Told once per item and fix, however often the cron runs.
            assert notify_service.enqueue_lookback_late(now) == 1
            assert notify_service.enqueue_lookback_late(now) == 0
            db.session.commit()
            delivery = db.session.execute(db.select(Delivery).where(
                Delivery.event == "lookback_late")).scalar_one()
            assert delivery.endpoint_id == ep.id and delivery.item_id == item_id


def test_the_daily_run_and_the_escalation_page_show_late_flagged_and_disputed(app, w, client):
    with app.app_context():
        start = utcnow() - timedelta(days=4)
        late = fix(w, make_item(w, w.a1, at=start), start)
        flagged = make_item(w, w.a1, category="fire_exit")
        disputed = make_item(w, w.a2, category="flyers")
        db.session.commit()
        flagged, disputed = flagged.id, disputed.id
        now = utcnow()
        svc.act(db.session.get(Item, flagged), Action.FLAG, db.session.get(User, w.com_a1), now,
                svc.ActionInput(reason="safety", note="堵了一个月"), form=hazard_form(),
                window=WINDOW)
        svc.act(db.session.get(Item, disputed), Action.DISPUTE, db.session.get(User, w.mgr_y),
                now, svc.ActionInput(note="不属于物业职责"), form=hazard_form(), window=WINDOW)
        db.session.commit()
        community_ep = NotifyEndpoint(name="社区A", community_id=w.ca, kind="json",
                                      target="https://community-a.invalid/hook",
                                      events=["daily"])
        db.session.add(community_ep)
        db.session.commit()
        run = escalation.run_daily(utcnow(), deliver=False)
        groups = dict((c.id, g) for c, g in run.communities)[w.ca]
        assert [i.id for i in groups["lookback_late"]] == [late]
        assert [i.id for i in groups["flagged"]] == [flagged]
        assert [i.id for i in groups["disputed"]] == [disputed]
        # The company's reminder leaves the volunteers' look-back out.
        company_groups = dict((c.id, g) for c, g in run.companies)[w.x]
        assert "lookback_late" not in company_groups
        digest = db.session.execute(db.select(Delivery).where(
            Delivery.event == "daily")).scalar_one().payload
        assert digest["counts"]["lookback_late"] == 1 and digest["counts"]["flagged"] == 1
        assert digest["counts"]["disputed"] == 1
        assert any("督办" in line for line in digest["lines"])

    sign_in(client, w.staff_a)
    page = client.get("/escalations").get_data(as_text=True)
    for key, item_id in (("lookback_late", late), ("flagged", flagged),
                         ("disputed", disputed)):
        listed = page.split(f'id="list-{key}"', 1)[1].split("</ul>", 1)[0]
        assert f"/items/{item_id}" in listed, key
        assert re.search(rf'id="count-{key}">1<', page), key
    overview = client.get("/overview").get_data(as_text=True)
    assert re.search(r'id="escalated-flagged"[^>]*><b>1</b>', overview)
    # Another community's staff see none of it.
    sign_in(client, w.staff_b)
    page = client.get("/escalations").get_data(as_text=True)
    assert re.search(r'id="count-flagged">0<', page) and f"/items/{flagged}" not in page


def test_lifting_the_flag_or_deciding_the_dispute_takes_them_off(app, w, client):
    with app.app_context():
        item = make_item(w, w.a1)
        db.session.commit()
        now = utcnow()
        svc.act(item, Action.FLAG, db.session.get(User, w.com_a1), now,
                svc.ActionInput(reason="slow"), form=hazard_form(), window=WINDOW)
        svc.act(item, Action.DISPUTE, db.session.get(User, w.mgr_x), now,
                svc.ActionInput(note="不归我们"), form=hazard_form(), window=WINDOW)
        db.session.commit()
        staff = db.session.get(User, w.staff_a)
        svc.act(item, Action.UNFLAG, staff, now, svc.ActionInput(), form=hazard_form(),
                window=WINDOW)
        svc.act(item, Action.DECIDE_DISPUTE, staff, now, svc.ActionInput(reason="is_responsible"),
                form=hazard_form(), window=WINDOW)
        db.session.commit()
        found = escalation.groups(Item.community_id == w.ca, utcnow(),
                                  ack_limit=app.config["ACK_ESCALATE"],
                                  horizon=app.config["DUE_SOON"])
        assert found["flagged"] == [] and found["disputed"] == []


def closed_port_url():
    """A local address where nothing listens: a delivery there fails at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/hook"


def test_the_cli_deliver_queues_lookback_late(app, w):
    app.config.update(WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_TIMEOUT=1.0)
    with app.app_context():
        db.session.add(NotifyEndpoint(name="A队群", team_id=w.team, kind="json",
                                      target=closed_port_url(), events=["lookback_late"]))
        db.session.commit()
        start = utcnow() - timedelta(days=5)
        fix(w, make_item(w, w.a1, at=start), start)
    result = app.test_cli_runner().invoke(args=["deliver"])
    assert result.exit_code == 0, result.output
    assert "lookback_late queued 1;" in result.output
    result = app.test_cli_runner().invoke(args=["deliver"])
    assert "lookback_late" not in result.output


def test_the_list_shows_the_oldest_few_and_says_how_many_more(app, w, client, monkeypatch):
    """A phone gets the oldest LOOKBACK_SHOWN fixes, not every one: the count says all."""
    from patrol.web import compounds
    monkeypatch.setattr(compounds, "LOOKBACK_SHOWN", 3)
    now = utcnow()
    with app.app_context():
        ids = [fix(w, make_item(w, w.a1), now - timedelta(hours=10 - n)) for n in range(5)]
    sign_in(client, w.vol_a)
    page = client.get("/compounds").get_data(as_text=True)
    assert lookback_ids(page) == ids[:3]
    assert re.search(r'id="lookback-count">5<', page) and "另有 2 条未显示" in page
