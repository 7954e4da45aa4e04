"""Patrol rules (pure) and the patrol service: joining, quiet end, hours, presence, links."""
from datetime import date, datetime, timedelta

import pytest

from patrol import patrols as rules
from patrol.extensions import db
from patrol.models import (Checkpoint, Compound, Patrol, PatrolMember, Presence, User,
                           utcnow)
from patrol.services import items as item_service
from patrol.services import patrols as patrol_service
from patrol.web.helpers import hazard_form
from tests.factories import build_world

# --- pure rules ---------------------------------------------------------------------------

GATE = (30.2741, 120.1551)   # 杭州 (any point will do)


def test_distance_is_metres():
    # 0.01° of latitude is 1,112 m.
    assert rules.distance_m(30.0, 120.0, 30.01, 120.0) == pytest.approx(1112, abs=2)
    assert rules.distance_m(*GATE, *GATE) == 0


def test_presence_verdict():
    lat, lon = GATE
    near = rules.presence_verdict(lat, lon, 200, lat + 0.001, lon, 20)      # ~111 m
    assert near == rules.Verdict(111, False)
    far = rules.presence_verdict(lat, lon, 200, lat + 0.018, lon, 20)       # ~2 km
    assert far.far and 1900 < far.distance_m < 2100
    # A phone claiming ±5 km cannot make 2 km away look like "here".
    assert rules.presence_verdict(lat, lon, 200, lat + 0.018, lon, 5000).far
    # No location, or a compound without a position: counts as always.
    assert rules.presence_verdict(lat, lon, 200, None, None, None) == rules.Verdict(None, False)
    assert rules.presence_verdict(None, None, None, lat, lon, 5) == rules.Verdict(None, False)
    # No radius: the rule's default.
    assert not rules.presence_verdict(lat, lon, None, lat + 0.002, lon, 0).far   # 222 m < 300
    assert rules.presence_verdict(lat, lon, None, lat + 0.004, lon, 0).far       # 445 m


@pytest.mark.parametrize("minutes,expected", [(0, 0), (7, 0), (8, 15), (52, 45), (53, 60),
                                              (600, 240)])
def test_served_minutes_capped_and_rounded(minutes, expected):
    start = datetime(2026, 11, 18, 2, 0)
    assert rules.served_minutes(start, start + timedelta(minutes=minutes)) == expected


def test_periods_and_reminder():
    wed = date(2026, 11, 18)
    week = rules.week_of(wed)
    assert (week.first, week.last) == (date(2026, 11, 16), date(2026, 11, 22))
    month = rules.month_of(date(2026, 12, 31))
    assert (month.first, month.end) == (date(2026, 12, 1), date(2027, 1, 1))
    assert rules.reminder_due(week, date(2026, 11, 21), done=1, due=2)       # Saturday
    assert not rules.reminder_due(week, date(2026, 11, 21), done=2, due=2)
    assert not rules.reminder_due(week, date(2026, 11, 20), done=1, due=2)
    assert rules.coverage(1, 2, week, date(2026, 11, 22)).state == "due"
    assert rules.coverage(1, 2, week, date(2026, 11, 23)).state == "missed"
    assert rules.coverage(2, 2, week, date(2026, 11, 23)).state == "met"


# --- the service --------------------------------------------------------------------------

@pytest.fixture
def w(db_app):
    with db_app.app_context():
        ids = build_world()
        c = db.session.get(Compound, ids.a1)
        c.lat, c.lon, c.radius_m = GATE[0], GATE[1], 200
        mate = User(username="vol_a2", display_name="王阿姨", role="volunteer",
                    community_id=ids.ca, team_id=ids.team, title="组长")
        db.session.add(mate)
        db.session.commit()
        ids.mate = mate.id
        yield ids


def _scan(user, compound, at, lat=None, lon=None):
    p = Presence(user_id=user.id, compound_id=compound.id, at=at, lat=lat, lon=lon)
    db.session.add(p)
    db.session.flush()
    patrol_service.judge_presence(p, compound)
    patrol_service.on_scan(user, compound, p)
    return p


def test_two_members_one_patrol_and_their_hours(w):
    now = utcnow()
    a, b = db.session.get(User, w.vol_a), db.session.get(User, w.mate)
    c = db.session.get(Compound, w.a1)
    patrol, started = patrol_service.start(a, c, now)
    assert started
    p = _scan(b, c, now + timedelta(minutes=10))
    assert p.patrol_id == patrol.id
    again, started = patrol_service.start(b, c, now + timedelta(minutes=11))
    assert again.id == patrol.id and not started
    patrol_service.end(patrol, a, now + timedelta(minutes=70), summary="none")
    minutes = {m.user_id: m.minutes for m in db.session.execute(
        db.select(PatrolMember).where(PatrolMember.patrol_id == patrol.id)).scalars()}
    assert minutes == {a.id: 75, b.id: 60}
    # Ended by a tap: a later scan does not join it.
    later = _scan(b, c, now + timedelta(minutes=80))
    assert later.patrol_id is None


def test_other_team_does_not_join(w):
    now = utcnow()
    a, staff = db.session.get(User, w.vol_a), db.session.get(User, w.staff_a)
    c = db.session.get(Compound, w.a1)
    patrol_service.start(a, c, now)
    assert _scan(staff, c, now + timedelta(minutes=1)).patrol_id is None


def test_quiet_end_and_a_late_offline_record_extends_it(w):
    now = utcnow()
    a = db.session.get(User, w.vol_a)
    c = db.session.get(Compound, w.a1)
    patrol, _ = patrol_service.start(a, c, now - timedelta(hours=5))
    assert patrol_service.close_quiet(now) == 1
    assert patrol.ended_by == "quiet" and patrol.ended_at == now - timedelta(hours=5)
    # A checkpoint scanned 40 min into the walk arrives now, from the outbox.
    cp = Checkpoint(compound_id=c.id, name="3栋")
    db.session.add(cp)
    db.session.flush()
    scan, created = patrol_service.scan_checkpoint(
        a, cp, now, device_at=now - timedelta(hours=5) + timedelta(minutes=40),
        client_uuid="11111111-1111-4111-8111-111111111111")
    assert created and scan.patrol_id == patrol.id
    assert patrol.ended_at == now - timedelta(hours=5) + timedelta(minutes=40)
    assert db.session.get(PatrolMember, (patrol.id, a.id)).minutes == 45
    # Sent again: the same scan.
    again, created = patrol_service.scan_checkpoint(
        a, cp, now, device_at=now - timedelta(hours=5) + timedelta(minutes=40),
        client_uuid="11111111-1111-4111-8111-111111111111")
    assert not created and again.id == scan.id


def test_far_scan_is_flagged_on_patrol_and_item(w, db_app):
    now = utcnow()
    a = db.session.get(User, w.vol_a)
    c = db.session.get(Compound, w.a1)
    patrol, _ = patrol_service.start(a, c, now)
    far = _scan(a, c, now, GATE[0] + 0.018, GATE[1])       # ~2 km
    near = _scan(a, c, now, GATE[0] + 0.0005, GATE[1])     # ~55 m
    none = _scan(a, c, now)
    assert far.far and 1900 < far.distance_m < 2100
    assert not near.far and not none.far and none.distance_m is None
    assert patrol.far_scans == 1
    db.session.commit()
    # A check made on the strength of the far scan marks the item.
    item = _reported_item(a, c, now, db_app)
    assert not item.location_mismatch
    ev = item_service._event(item, a, now, "comment", item.status, item.status, presence=far)
    assert ev.patrol_id == patrol.id and item.location_mismatch


def _reported_item(user, compound, now, app):
    return item_service.report(form=hazard_form(), compound=compound, reporter=user,
                               clean={"category": "flying_wire", "extra": {}}, photos=[], now=now)


def test_report_on_a_patrol_is_linked(w, db_app):
    now = utcnow()
    a = db.session.get(User, w.vol_a)
    c = db.session.get(Compound, w.a1)
    patrol, _ = patrol_service.start(a, c, now - timedelta(minutes=5))
    item = _reported_item(a, c, now, db_app)
    report = item.events[0]
    assert report.patrol_id == patrol.id
    assert patrol_service.items_found(patrol) == 1
    patrol_service.end(patrol, a, now + timedelta(minutes=1), summary="found")
    assert patrol.found_count == 1
    assert db.session.get(Patrol, patrol.id).summary == "found"
