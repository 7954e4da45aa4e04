"""Schedules and coverage: with a fixed clock, a compound due twice a week and patrolled
once is reminded the day before the week ends (to the team's receiver, once however often
the command runs), then shows as missed (漏巡) on the coverage board and the staff
escalation list once the week is over; checkpoint schedules count the patrols that
scanned the checkpoint; schedules are their community's staff's to see and change."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from patrol.extensions import db
from patrol.models import (AuditEntry, Checkpoint, Compound, Delivery, NotifyEndpoint,
                           PatrolSchedule, Street, Team, User, utcnow)
from patrol.services import coverage
from patrol.services import patrols as patrol_service
from tests.conftest import sign_in
from tests.factories import build_world
from tests.test_notifications import Receiver, only_this_machine  # noqa: F401  (autouse)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    """A local (Shanghai) time as stored: naive UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(
        ZoneInfo("UTC")).replace(tzinfo=None)


# The suite's week: Monday 2026-11-16 to Sunday 2026-11-22 (the suite runs on Wednesday 18th).
TUESDAY = local("2026-11-17T09:00")
FRIDAY_EVENING = local("2026-11-20T20:00")
SATURDAY_EVENING = local("2026-11-21T18:00")     # the day before the week's last day
NEXT_MONDAY = local("2026-11-23T09:00")


@pytest.fixture
def w(db_app):
    with db_app.app_context():
        ids = build_world()
        a1 = db.session.get(Compound, ids.a1)
        checkpoint = Checkpoint(compound_id=ids.a1, name="3栋消防通道", kind="fire_exit")
        team2 = Team(name="A二队", community_id=ids.ca, compounds=[a1])
        db.session.add_all([checkpoint, team2])
        db.session.flush()
        mate = User(username="vol_a2", display_name="王阿姨", role="volunteer",
                    community_id=ids.ca, team_id=ids.team)
        other = User(username="vol_t2", display_name="李叔", role="volunteer",
                     community_id=ids.ca, team_id=team2.id)
        db.session.add_all([mate, other])
        db.session.commit()
        ids.checkpoint, ids.team2, ids.mate, ids.other = checkpoint.id, team2.id, mate.id, other.id
    return ids          # outside the app context: each request gets its own


def walk(user_id, compound_id, at, *, minutes=40, checkpoint_id=None):
    """One patrol, started at `at` and ended `minutes` later (scanning a checkpoint)."""
    user = db.session.get(User, user_id)
    patrol, _ = patrol_service.start(user, db.session.get(Compound, compound_id), at)
    if checkpoint_id is not None:
        patrol_service.scan_checkpoint(user, db.session.get(Checkpoint, checkpoint_id),
                                       at + timedelta(minutes=5))
    patrol_service.end(patrol, user, at + timedelta(minutes=minutes), summary="none")
    db.session.commit()
    return patrol.id


def schedule(team_id, compound_id, period, times, checkpoint_id=None):
    s = PatrolSchedule(team_id=team_id, compound_id=compound_id, period=period, times=times,
                       checkpoint_id=checkpoint_id)
    db.session.add(s)
    db.session.commit()
    return s.id


def board_page(client, *args) -> str:
    resp = client.get("/coverage" + (f"?{args[0]}" if args else ""))
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def card(page: str, compound_id: int) -> str:
    return page.split(f'id="compound-{compound_id}"', 1)[1].split("</li>\n", 1)[0]


def test_a_compound_patrolled_once_of_twice_is_reminded_then_missed(db_app, w):
    db_app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    receiver = Receiver()
    try:
        with db_app.app_context():
            schedule(w.team, w.a1, "week", 2)           # A队 walks 小区A1 twice a week
            schedule(w.team, w.a2, "week", 1)           # … and 小区A2 once: done below
            walk(w.vol_a, w.a1, TUESDAY)
            walk(w.vol_a, w.a2, TUESDAY + timedelta(hours=2))
            walk(w.other, w.a1, TUESDAY + timedelta(hours=5))   # another team's: not A队's
            team_ep = NotifyEndpoint(name="A队群", team_id=w.team, kind="json",
                                     target=receiver.url("/team-a"),
                                     events=["fixed", "lookback_late", "patrol_due"])
            other_team_ep = NotifyEndpoint(name="A二队群", team_id=w.team2, kind="json",
                                           target=receiver.url("/team-2"),
                                           events=["patrol_due"])
            community_ep = NotifyEndpoint(name="社区A", community_id=w.ca, kind="json",
                                          target=receiver.url("/community"),
                                          events=["daily", "patrol_due"])
            db.session.add_all([team_ep, other_team_ep, community_ep])
            db.session.commit()
        runner = db_app.test_cli_runner()
        client = db_app.test_client()

        # Friday: not yet the reminder day.
        with time_machine.travel(FRIDAY_EVENING, tick=False):
            result = runner.invoke(args=["patrols-remind"])
            assert result.exit_code == 0, result.output
            assert "queued 0" in result.output
        assert receiver.requests == []

        # Saturday, the day before the week's last day: one reminder, to A队's receiver.
        with time_machine.travel(SATURDAY_EVENING, tick=False):
            first = runner.invoke(args=["patrols-remind"])
            assert first.exit_code == 0, first.output
            assert "Patrol reminders 2026-11-21" in first.output and "queued 1" in first.output
            again = runner.invoke(args=["patrols-remind"])
            assert "queued 0" in again.output
            sign_in(client, w.staff_a)          # signed in on the moved clock
            page = board_page(client)
            a1 = card(page, w.a1)
            assert "1/2" in a1 and 'data-state="due"' in a1 and "Not done yet" not in a1
            assert "未完成" in a1                                    # words, not only colour
            assert 'data-state="met"' in card(page, w.a2) and "已完成" in card(page, w.a2)
            assert "小区A1" not in page.split('id="list-missed"', 1)[1].split("</ul>", 1)[0]
        assert [r["path"] for r in receiver.requests] == ["/team-a"]
        body = json.loads(receiver.requests[0]["body"])
        assert body["event"] == "patrol_due" and body["compound"] == "小区A1"
        assert body["due"] == [{"checkpoint": None, "done": 1, "due": 2}]
        assert "A队" in body["title"] and any("小区A1" in line for line in body["lines"])
        with db_app.app_context():
            assert db.session.scalar(db.select(db.func.count(Delivery.id)).where(
                Delivery.event == "patrol_due")) == 1

        # The week is over: 小区A1 is missed on the board and on the escalation list.
        with time_machine.travel(NEXT_MONDAY, tick=False):
            sign_in(client, w.staff_a)
            page = board_page(client)
            missed = page.split('id="list-missed"', 1)[1].split("</ul>", 1)[0]
            assert "小区A1" in missed and "漏巡" in missed
            assert "小区A2" not in missed
            assert re.search(r'id="count-missed">1<', page)
            # This new week nothing is done yet, but there is still time: not missed.
            assert 'data-state="due"' in card(page, w.a1) and "0/2" in card(page, w.a1)
            esc = client.get("/escalations").get_data(as_text=True)
            listed = esc.split('id="list-patrol_missed"', 1)[1].split("</ul>", 1)[0]
            assert "小区A1" in listed and "A队" in listed and "小区A2" not in listed
            assert re.search(r'id="count-patrol_missed">1<', esc)
            # Another community's staff see none of it.
            other = db_app.test_client()
            sign_in(other, w.staff_b)
            esc_b = other.get("/escalations").get_data(as_text=True)
            assert re.search(r'id="count-patrol_missed">0<', esc_b) and "小区A1" not in esc_b
            # The reminder is not sent again in the new week before its Saturday.
            assert "queued 0" in runner.invoke(args=["patrols-remind"]).output
        assert len(receiver.requests) == 1
    finally:
        receiver.close()


def test_the_service_counts_by_local_week_and_month(db_app, w):
    with db_app.app_context():
        schedule(w.team, w.a1, "week", 2)
        schedule(w.team, w.a1, "month", 3)
        # Sunday 23:30 local is still the week of the 16th; Monday 00:10 is the next.
        walk(w.vol_a, w.a1, local("2026-11-22T23:30"), minutes=20)
        walk(w.vol_a, w.a1, local("2026-11-23T00:10"), minutes=20)
        walk(w.vol_a, w.a1, local("2026-10-31T23:00"), minutes=20)   # October
        now = local("2026-11-30T12:00")
        tz = "Asia/Shanghai"
        week16 = coverage.rows([w.a1], "week", date(2026, 11, 18), tz, now=now)
        assert [(r.done, r.due, r.state) for r in week16] == [(1, 2, "missed")]
        assert week16[0].missing == 1
        assert week16[0].last_patrol_at == local("2026-11-23T00:10")
        week23 = coverage.rows([w.a1], "week", date(2026, 11, 23), tz, now=now)
        assert [(r.done, r.state) for r in week23] == [(1, "missed")]
        november = coverage.rows(Compound.id == w.a1, "month", date(2026, 11, 30), tz, now=now)
        assert [(r.done, r.due, r.state) for r in november] == [(2, 3, "due")]
        assert [(r.team_name, r.compound_name, r.checkpoint_id) for r in november] == \
            [("A队", "小区A1", None)]
        missed = coverage.missed_rows([w.a1, w.a2], date(2026, 12, 1), tz, now=now)
        assert [(r.period.kind, r.period.first) for r in missed] == \
            [("week", date(2026, 11, 23)), ("month", date(2026, 11, 1))]


def test_a_checkpoint_schedule_counts_the_patrols_that_scanned_it(db_app, w):
    with db_app.app_context():
        schedule(w.team, w.a1, "month", 2, checkpoint_id=w.checkpoint)
        walk(w.vol_a, w.a1, TUESDAY)                                       # no checkpoint
        walk(w.other, w.a1, TUESDAY + timedelta(hours=3), checkpoint_id=w.checkpoint)  # A二队
        now = utcnow()
        tz = "Asia/Shanghai"
        today = coverage.local_date(now, tz)
        rows = coverage.rows([w.a1], "month", today, tz, now=now)
        assert [(r.checkpoint_name, r.done, r.due, r.state) for r in rows] == \
            [("3栋消防通道", 0, 2, "due")]
        walk(w.mate, w.a1, TUESDAY + timedelta(hours=6), checkpoint_id=w.checkpoint)
        walk(w.vol_a, w.a1, TUESDAY + timedelta(days=1, hours=-12), checkpoint_id=w.checkpoint)
        rows = coverage.rows([w.a1], "month", today, tz, now=now)
        assert [(r.done, r.state) for r in rows] == [(2, "met")]
        # An archived checkpoint's schedule is no longer counted.
        db.session.get(Checkpoint, w.checkpoint).archived_at = now
        db.session.commit()
        assert coverage.rows([w.a1], "month", today, tz, now=now) == []


def test_staff_set_and_delete_schedules_of_their_community_only(db_app, w):
    staff = db_app.test_client()
    sign_in(staff, w.staff_a)
    page = staff.get(f"/coverage/schedules?community={w.ca}").get_data(as_text=True)
    assert 'id="schedule-form"' in page and "3栋消防通道" in page
    resp = staff.post(f"/coverage/schedules?community={w.ca}", data={
        "team_id": w.team, "compound_id": w.a1, "checkpoint_id": "", "period": "week",
        "times": "2"})
    assert resp.status_code == 302
    # The same target again: the number changes, no second schedule.
    resp = staff.post(f"/coverage/schedules?community={w.ca}", data={
        "team_id": w.team, "compound_id": w.a1, "period": "week", "times": "3"})
    assert resp.status_code == 302
    assert staff.post(f"/coverage/schedules?community={w.ca}", data={
        "team_id": w.team, "compound_id": w.a1, "checkpoint_id": w.checkpoint,
        "period": "month", "times": "1"}).status_code == 302
    # Out of range, or a compound of another community: refused, nothing saved.
    assert staff.post(f"/coverage/schedules?community={w.ca}", data={
        "team_id": w.team, "compound_id": w.a1, "period": "week", "times": "0"}).status_code == 400
    assert staff.post(f"/coverage/schedules?community={w.ca}", data={
        "team_id": w.team, "compound_id": w.b1, "period": "week", "times": "1"}).status_code == 400
    with db_app.app_context():
        found = db.session.execute(db.select(PatrolSchedule).order_by(PatrolSchedule.id)
                                   ).scalars().all()
        assert [(s.compound_id, s.checkpoint_id, s.period, s.times) for s in found] == \
            [(w.a1, None, "week", 3), (w.a1, w.checkpoint, "month", 1)]
        schedule_id = found[0].id
        actions = db.session.execute(db.select(AuditEntry.action, AuditEntry.before,
                                               AuditEntry.after).order_by(AuditEntry.id)).all()
        assert [a for a, _b, _a in actions] == ["patrol_schedule.create", "patrol_schedule.update",
                                                "patrol_schedule.create"]
        assert actions[1][1] == {"times": 2} and actions[1][2] == {"times": 3}

    # Another community's staff: not found, whatever they try; a volunteer: forbidden.
    other = db_app.test_client()
    sign_in(other, w.staff_b)
    assert other.get(f"/coverage/schedules?community={w.ca}").status_code == 404
    assert other.get(f"/coverage?community={w.ca}").status_code == 404
    assert other.post(f"/coverage/schedules?community={w.ca}", data={
        "team_id": w.team, "compound_id": w.a1, "period": "week", "times": "5"}).status_code == 404
    assert other.post(f"/coverage/schedules/{schedule_id}/delete").status_code == 404
    # Their own community, with A's team and compound: refused too.
    assert other.post(f"/coverage/schedules?community={w.cb}", data={
        "team_id": w.team, "compound_id": w.a1, "period": "week", "times": "5"}).status_code == 400
    board_b = other.get("/coverage").get_data(as_text=True)
    assert "小区A1" not in board_b and "小区B1" in board_b
    vol = db_app.test_client()
    sign_in(vol, w.vol_a)
    assert vol.get("/coverage").status_code == 403
    assert vol.get("/coverage/schedules").status_code == 403
    with db_app.app_context():
        assert db.session.get(PatrolSchedule, schedule_id).times == 3

    resp = staff.post(f"/coverage/schedules/{schedule_id}/delete")
    assert resp.status_code == 302
    with db_app.app_context():
        assert db.session.get(PatrolSchedule, schedule_id) is None
        entry = db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id.desc())
                                   ).scalars().first()
        assert entry.action == "patrol_schedule.delete" and entry.before["times"] == 3
        assert entry.community_id == w.ca


def test_street_staff_see_their_streets_board_and_compounds_without_a_schedule(db_app, w):
    with db_app.app_context():
        street = Street(name="街道一")
        db.session.add(street)
        db.session.flush()
        from patrol.models import Community
        db.session.get(Community, w.ca).street_id = street.id
        street_staff = User(username="street-1", display_name="街道", role="street_staff",
                            street_id=street.id)
        db.session.add(street_staff)
        db.session.commit()
        schedule(w.team, w.a1, "week", 1)
        ss_id, street_id = street_staff.id, street.id
    client = db_app.test_client()
    sign_in(client, ss_id)
    page = board_page(client)
    assert "街道一" in page and "小区A1" in page and "小区B1" not in page
    a2 = card(page, w.a2)
    assert 'data-state="none"' in a2 and "无计划" in a2          # no schedule: not missed
    assert re.search(r'id="count-unscheduled">1<', page)
    assert client.get(f"/coverage?street={street_id}").status_code == 200
    assert client.get(f"/coverage?community={w.cb}").status_code == 404
    staff = db_app.test_client()
    sign_in(staff, w.staff_a)
    assert staff.get(f"/coverage?street={street_id}").status_code == 404
