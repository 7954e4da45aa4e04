"""The owners' committee (业委会督查): 督办 and replies on its compound's items, its
compound's weekly list (督办 marked), the monthly rating, its compound's receivers; and
refusals everywhere else. Also department and team receivers."""
from __future__ import annotations

from datetime import date, timedelta

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import (CommitteeRating, Community, Compound, Department, Item,
                           NotifyEndpoint, User, utcnow)
from patrol.services import items as svc
from patrol.services import weekly
from patrol.services.committee import rating_month
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world

import pytest


@pytest.fixture
def w(app):
    with app.app_context():
        w = build_world()
        items = {}
        for name, reporter in (("a1", w.vol_a), ("a2", w.vol_a), ("b1", w.vol_b)):
            items[name] = svc.report(
                form=hazard_form(), compound=db.session.get(Compound, getattr(w, name)),
                reporter=db.session.get(User, reporter), clean={"category": "flyers", "extra": {}},
                photos=[], now=utcnow()).id
        db.session.commit()
        w.items = items
        return w


def _post(client, item_id, **data):
    data.setdefault("version", str(db.session.get(Item, item_id).version))
    return client.post(f"/items/{item_id}/act", data=data)


def test_committee_flags_and_replies_on_its_own_compound_only(app, w):
    client = sign_in(app.test_client(), w.com_a1)
    with app.app_context():
        assert _post(client, w.items["a1"], action="flag", reason="repeated").status_code == 302
        assert _post(client, w.items["a1"], action="comment", note="请尽快").status_code == 302
        for name in ("a2", "b1"):
            assert _post(client, w.items[name], action="flag", reason="slow").status_code == 403
            assert _post(client, w.items[name], action="comment", note="x").status_code == 403
            assert db.session.get(Item, w.items[name]).flagged_at is None
        # Acting on the item itself stays the company's and staff's.
        for action in ("acknowledge", "reject", "route", "unflag"):
            assert _post(client, w.items["a1"], action=action,
                         reason="not_a_hazard").status_code == 403, action
        item = db.session.get(Item, w.items["a1"])
        assert (item.status, item.flag_reason) == ("reported", "repeated")
        assert [e.action for e in item.events] == ["report", "flag", "comment"]


def test_committee_downloads_its_compounds_weekly_list_only(app, w):
    client = sign_in(app.test_client(), w.com_a1)
    page = client.get("/reports/weekly")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "小区A1" in html and "小区A2" not in html and "社区A" not in html
    pdf = client.get(f"/reports/weekly.pdf?scope=compound&id={w.a1}")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    for scope, ident in (("compound", w.a2), ("compound", w.b1), ("community", w.ca),
                         ("company", w.x)):
        assert client.get(f"/reports/weekly.pdf?scope={scope}&id={ident}").status_code == 404


def test_flagged_items_are_marked_in_the_weekly_list(app, w):
    with app.app_context():
        now = utcnow()
        item = db.session.get(Item, w.items["a1"])
        svc.act(item, Action.FLAG, db.session.get(User, w.com_a1), now,
                svc.ActionInput(reason="safety"), form=hazard_form(), window=timedelta(minutes=30))
        db.session.commit()
        week = weekly.Week.containing(now, app.config["TIMEZONE"])
        report = weekly.build("community", db.session.get(Community, w.ca), week,
                              now=now + timedelta(seconds=1), tz=app.config["TIMEZONE"],
                              form=hazard_form())
        marks = {e.item.id: e.supervised for e in report.entries}
        assert marks == {w.items["a1"]: True, w.items["a2"]: False}
        # Replayed: before the flag it was not supervised; lifted, it is no longer.
        events = item.events
        assert not weekly.supervised(events, now - timedelta(seconds=1))
        unflag = weekly.Ev(at=now + timedelta(hours=1), action="unflag", to_status="reported")
        assert not weekly.supervised([*events, unflag], now + timedelta(hours=2))
        closed = weekly.Ev(at=now + timedelta(hours=1), action="reject", to_status="rejected")
        assert not weekly.supervised([*events, closed], now + timedelta(hours=2))


def test_monthly_rating_once_per_month(app, w):
    client = sign_in(app.test_client(), w.com_a1)
    page = client.get("/committee/rating")
    assert page.status_code == 200 and 'id="rating-form"' in page.get_data(as_text=True)
    assert "物业X" in page.get_data(as_text=True)
    assert client.post("/committee/rating", data={"stars": "9"}).status_code == 422
    assert client.post("/committee/rating", data={"stars": "4", "note": "<b>好</b>"}).status_code == 302
    again = client.post("/committee/rating", data={"stars": "1"})
    assert again.status_code == 409
    with app.app_context():
        rows = db.session.execute(db.select(CommitteeRating)).scalars().all()
        assert [(r.user_id, r.compound_id, r.company_id, r.stars) for r in rows] == [
            (w.com_a1, w.a1, w.x, 4)]
        assert rows[0].month == rating_month(utcnow(), app.config["TIMEZONE"])
        assert rows[0].month.day == 1
    html = client.get("/committee/rating").get_data(as_text=True)
    assert 'id="rated"' in html and "&lt;b&gt;好&lt;/b&gt;" in html
    # Other roles have no rating page.
    for user in (w.staff_a, w.mgr_x, w.vol_a, w.admin):
        assert sign_in(app.test_client(), user).get("/committee/rating").status_code == 403


def test_rating_month_is_the_local_month():
    # 2026-11-30 17:00 UTC is 12-01 01:00 in Shanghai.
    from datetime import datetime
    assert rating_month(datetime(2026, 11, 30, 17, 0), "Asia/Shanghai") == date(2026, 12, 1)
    assert rating_month(datetime(2026, 11, 30, 15, 0), "Asia/Shanghai") == date(2026, 11, 1)


def _add_receiver(client, **data):
    data = {"name": "接收方甲", "kind": "json", "target": "https://hooks.example.invalid/h",
            **data}
    return client.post("/notifications", data=data)


def test_committee_and_department_receivers(app, w):
    com = sign_in(app.test_client(), w.com_a1)
    assert com.get("/notifications").status_code == 200
    # Whatever owner is sent, a committee member's receiver is their compound's.
    assert _add_receiver(com, events=["comment", "flagged"],
                         owner=f"community:{w.ca}").status_code == 302
    with app.app_context():
        dept = Department(name="供水", kind="water", community_id=w.ca)
        db.session.add(dept)
        db.session.flush()
        water = User(username="water", display_name="供水", role="department",
                     department_id=dept.id)
        db.session.add(water)
        db.session.commit()
        water_id, dept_id = water.id, dept.id
        ep = db.session.execute(db.select(NotifyEndpoint)).scalar_one()
        assert (ep.compound_id, ep.community_id, ep.events) == (w.a1, None, ["comment", "flagged"])
        ep_id = ep.id
    dep = sign_in(app.test_client(), water_id)
    assert _add_receiver(dep, events=["routed"]).status_code == 302
    with app.app_context():
        mine = db.session.execute(db.select(NotifyEndpoint).where(
            NotifyEndpoint.department_id == dept_id)).scalar_one()
        assert mine.events == ["routed"]
    # Neither sees nor removes the other's; another compound's committee neither.
    for user in (water_id, w.com_a2, w.staff_b, w.mgr_y):
        client = sign_in(app.test_client(), user)
        assert client.post(f"/notifications/{ep_id}/delete").status_code == 404, user
        assert f"endpoint-{ep_id}\"" not in client.get("/notifications").get_data(as_text=True)
    assert com.post(f"/notifications/{ep_id}/delete").status_code == 302


def test_staff_add_a_receiver_for_a_team_of_their_community(app, w):
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get("/notifications").get_data(as_text=True)
    assert 'id="add-team-endpoint"' in page and "A队" in page
    assert _add_receiver(staff, form="team", owner=f"team:{w.team}").status_code == 302
    with app.app_context():
        ep = db.session.execute(db.select(NotifyEndpoint)).scalar_one()
        assert (ep.team_id, ep.community_id, ep.events) == (
            w.team, None, ["fixed", "lookback_late", "patrol_due"])
        ep_id = ep.id
    # Another community's staff cannot pick it: their own community's receiver instead.
    other = sign_in(app.test_client(), w.staff_b)
    assert _add_receiver(other, form="team", owner=f"team:{w.team}", events=["daily"]).status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(NotifyEndpoint).where(
            NotifyEndpoint.team_id.is_not(None))) == 1
        assert db.session.execute(db.select(NotifyEndpoint).where(
            NotifyEndpoint.community_id == w.cb)).scalar_one()
    assert other.post(f"/notifications/{ep_id}/delete").status_code == 404
    assert staff.post(f"/notifications/{ep_id}/test").status_code == 302
