"""Volunteer service hours: the XLSX sheet (its columns, and a total equal to the patrols'
members' minutes counted straight from the database), corrections with a reason in the
audit log, a volunteer's own month and year, and nobody else's volunteers."""
from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from patrol.extensions import db
from patrol.models import AuditEntry, Compound, Patrol, PatrolMember, User
from patrol.services import items as item_service
from patrol.services import patrols as patrol_service
from patrol.services import service_hours
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world

SHANGHAI, UTC = ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC")
HEADERS = ["姓名", "手机号", "服务日期", "服务时长", "服务内容", "服务地点"]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).astimezone(UTC).replace(tzinfo=None)


@pytest.fixture
def w(db_app):
    """Team A's 张阿姨 (vol_a) and 王阿姨 walk 小区A1 together on Tuesday 17 November (one
    report on the way) and 张阿姨 alone on the 1st of November 07:30 local (still October
    in UTC) and on 31 October (not November); 社区B's vol_b walks 小区B1."""
    with db_app.app_context():
        ids = build_world()
        vol_a = db.session.get(User, ids.vol_a)
        vol_a.display_name, vol_a.phone = "张阿姨", "13800000001"
        mate = User(username="vol_a2", display_name="=王阿姨", role="volunteer", phone="13800000002",
                    community_id=ids.ca, team_id=ids.team)
        db.session.add(mate)
        db.session.commit()
        a1, b1 = db.session.get(Compound, ids.a1), db.session.get(Compound, ids.b1)
        vol_b = db.session.get(User, ids.vol_b)

        start = local("2026-11-17T09:00")
        together, _ = patrol_service.start(vol_a, a1, start)
        patrol_service.start(mate, a1, start + timedelta(minutes=10))      # joins
        item_service.report(form=hazard_form(), compound=a1, reporter=vol_a,
                            clean={"category": "flying_wire", "extra": {}}, photos=[],
                            now=start + timedelta(minutes=20))
        patrol_service.end(together, vol_a, start + timedelta(minutes=52), summary="found")
        first, _ = patrol_service.start(vol_a, a1, local("2026-11-01T07:30"))
        patrol_service.end(first, vol_a, local("2026-11-01T09:30"), summary="none")
        october, _ = patrol_service.start(vol_a, a1, local("2026-10-31T20:00"))
        patrol_service.end(october, vol_a, local("2026-10-31T21:00"), summary="none")
        other, _ = patrol_service.start(vol_b, b1, start)
        patrol_service.end(other, vol_b, start + timedelta(minutes=30), summary="none")
        db.session.commit()
        ids.mate, ids.together, ids.first = mate.id, together.id, first.id
    return ids


def november_minutes(community_id: int) -> int:
    """Counted independently: every member of a patrol started in November (local) by a
    volunteer of the community, correction first."""
    start, end = local("2026-11-01T00:00"), local("2026-12-01T00:00")
    rows = db.session.execute(
        db.select(PatrolMember.minutes, PatrolMember.corrected_minutes)
        .join(Patrol, Patrol.id == PatrolMember.patrol_id)
        .join(User, User.id == PatrolMember.user_id)
        .where(Patrol.started_at >= start, Patrol.started_at < end,
               User.community_id == community_id, User.role == "volunteer")).all()
    return sum(c if c is not None else (m or 0) for m, c in rows)


def sheet(client, query="month=2026-11"):
    resp = client.get(f"/hours/export.xlsx?{query}")
    assert resp.status_code == 200, resp.status_code
    assert resp.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(resp.data))
    rows = [list(r) for r in book["服务时长"].iter_rows(values_only=True)]
    return rows[0], rows[1:-1], rows[-1]


def test_the_sheet_has_the_columns_and_its_total_is_the_patrols_minutes(db_app, w):
    staff = sign_in(db_app.test_client(), w.staff_a)
    header, body, total = sheet(staff)
    assert header == HEADERS
    with db_app.app_context():
        expected = november_minutes(w.ca)
        # 52 and 42 minutes round to 45 and 45; the 1st of November: 120.
        assert expected == 45 + 45 + 120
    assert total[0] == "合计" and total[3] == pytest.approx(expected / 60)
    assert sum(r[3] for r in body) == pytest.approx(expected / 60)
    assert [(r[0], r[2].date().isoformat(), r[3], r[5]) for r in body] == [
        ("'=王阿姨", "2026-11-17", 0.75, "小区A1"),           # neutralised: no formula
        ("张阿姨", "2026-11-01", 2.0, "小区A1"),
        ("张阿姨", "2026-11-17", 0.75, "小区A1")]
    assert body[1][1] == "13800000001" and body[1][4] == "小区巡查（未发现问题）"
    assert body[2][4] == "小区巡查（发现问题1条）"
    # Another community's volunteers are not on it, nor on the page.
    assert all(r[0] != "vol_b" for r in body)
    page = staff.get("/hours?month=2026-11").get_data(as_text=True)
    assert "张阿姨" in page and "vol_b" not in page
    # A month whose end is past the calendar is a bad request (it was a 500).
    assert staff.get("/hours?month=9999-12").status_code == 400
    assert staff.get("/hours/export.xlsx?month=9999-12").status_code == 400
    assert re.search(r'id="total-hours">3\.5<', page)


def test_totals_for_the_statistics_pack(db_app, w):
    with db_app.app_context():
        found = service_hours.totals([w.ca], local("2026-11-01T00:00"), local("2026-12-01T00:00"))
        assert [(t.name, t.patrols, t.minutes, t.items_found, t.checks_done) for t in found] == [
            ("=王阿姨", 1, 45, 0, 0), ("张阿姨", 2, 165, 1, 0)]
        assert found[1].hours == 2.75 and found[1].phone == "13800000001"
        assert service_hours.totals([], local("2026-11-01T00:00"), local("2026-12-01T00:00")) == []


def test_a_correction_changes_the_total_and_is_audited(db_app, w):
    staff = sign_in(db_app.test_client(), w.staff_a)
    url = f"/hours/entries/{w.together}/{w.vol_a}"
    assert staff.post(url, data={"hours": "2", "reason": ""}).status_code == 400   # no reason
    assert staff.post(url, data={"hours": "abc", "reason": "忘记结束"}).status_code == 400
    resp = staff.post(url, data={"hours": "1.5", "reason": "忘记点结束，实际巡查一个半小时"})
    assert resp.status_code == 302
    _h, _b, total = sheet(staff)
    with db_app.app_context():
        expected = november_minutes(w.ca)
        assert expected == 45 + 90 + 120
        member = db.session.get(PatrolMember, (w.together, w.vol_a))
        assert (member.minutes, member.corrected_minutes, member.served_minutes) == (45, 90, 90)
        entry = db.session.execute(db.select(AuditEntry).where(
            AuditEntry.action == "patrol_hours.correct")).scalar_one()
        assert entry.actor_id == w.staff_a and entry.object_id == w.together
        assert entry.before["served_minutes"] == 45 and entry.after["served_minutes"] == 90
        assert entry.after["reason"].startswith("忘记点结束") and entry.community_id == w.ca
    assert total[3] == pytest.approx(expected / 60)
    page = staff.get(f"/hours/volunteers/{w.vol_a}?month=2026-11").get_data(as_text=True)
    assert "已更正" in page


def test_a_volunteer_sees_only_their_own_hours(db_app, w):
    vol = sign_in(db_app.test_client(), w.vol_a)
    page = vol.get("/me/hours?month=2026-11").get_data(as_text=True)
    assert re.search(r'id="month-hours">2\.75<', page)
    assert re.search(r'id="month-patrols">2<', page) and re.search(r'id="month-found">1<', page)
    assert re.search(r'id="year-hours">3\.75<', page)          # + October's hour
    assert "王阿姨" not in page
    mate = sign_in(db_app.test_client(), w.mate)
    page = mate.get("/me/hours?month=2026-11").get_data(as_text=True)
    assert re.search(r'id="month-hours">0\.75<', page) and "张阿姨" not in page
    assert 'id="nav-hours"' in page
    for url in ("/hours", f"/hours/volunteers/{w.mate}", "/hours/export.xlsx"):
        assert vol.get(url).status_code == 403, url
    assert vol.post(f"/hours/entries/{w.together}/{w.mate}",
                    data={"hours": "4", "reason": "x"}).status_code == 403


def test_another_communitys_staff_cannot_export_or_correct(db_app, w):
    other = sign_in(db_app.test_client(), w.staff_b)
    assert other.get(f"/hours/export.xlsx?month=2026-11&community={w.ca}").status_code == 404
    assert other.get(f"/hours/export.xlsx?month=2026-11&user={w.vol_a}").status_code == 404
    assert other.get(f"/hours/volunteers/{w.vol_a}").status_code == 404
    assert other.post(f"/hours/entries/{w.together}/{w.vol_a}",
                      data={"hours": "4", "reason": "改一下"}).status_code == 404
    _h, body, total = sheet(other)
    assert [r[0] for r in body] == ["vol_b"] and total[3] == 0.5
    with db_app.app_context():
        assert db.session.get(PatrolMember, (w.together, w.vol_a)).corrected_minutes is None
        assert db.session.execute(db.select(AuditEntry).where(
            AuditEntry.action == "patrol_hours.correct")).first() is None


def test_a_phone_with_a_country_code_is_written_as_it_is():
    """+86… is a phone, not a formula (an XLSX text cell never is one): no apostrophe in
    front of it for the volunteer-hour systems the sheet is handed to. Names still get
    theirs."""
    from patrol.services.service_hours import Entry, xlsx
    entry = Entry(patrol_id=1, user_id=1, name="=王阿姨", phone="+86 138 0000 0001",
                  started_at=datetime(2026, 11, 17, 1, 0), ended_at=datetime(2026, 11, 17, 2, 0),
                  compound_id=1, compound_name="小区A1", team_name=None, minutes=60,
                  rule_minutes=60, corrected=False, items_found=0, summary="none",
                  ended_by="tapped")
    out = xlsx([entry], "Asia/Shanghai", [])
    sheet = openpyxl.load_workbook(out).worksheets[0]
    row = next(r for r in sheet.iter_rows(values_only=True) if r[1] and "138" in str(r[1]))
    assert row[1] == "+86 138 0000 0001" and row[0] == "'=王阿姨"
