"""Deadline extensions, the escalation list, ratings pages and the scorecard PDF, with
their permissions."""
from __future__ import annotations

import re
import subprocess
from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action, TransitionError
from patrol.models import Company, Compound, Item, User, utcnow
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import jpeg_bytes
from tests.pdftools import embedded_fonts, require_poppler

# Deadlines, 'due soon', escalations and rating periods at every awkward instant too.
pytestmark = pytest.mark.date_sensitive
WINDOW = timedelta(hours=2)


def _u(i):
    return db.session.get(User, i)


def _report(w, compound, category="flying_wire", at=None, who=None):
    vol = _u(who or w.vol_a)
    item = svc.report(form=hazard_form(), compound=db.session.get(Compound, compound), reporter=vol,
                      clean={"category": category, "extra": {}},
                      photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")],
                      now=at or utcnow())
    db.session.commit()
    return item


def _ack(item, mgr, at):
    svc.act(item, Action.ACKNOWLEDGE, _u(mgr), at, svc.ActionInput(), form=hazard_form(),
            window=WINDOW)
    db.session.commit()


# --- deadline extensions -------------------------------------------------------------

def test_staff_extend_a_deadline_with_a_reason(db_app):
    from tests.factories import build_world
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        item = _report(w, w.a1, at=now - timedelta(hours=2))
        _ack(item, w.mgr_x, now - timedelta(hours=1))
        old = item.deadline
        new = now + timedelta(days=3)
        for who, code in ((w.mgr_x, "forbidden_role"), (w.vol_a, "forbidden_role")):
            with pytest.raises(TransitionError) as err:
                svc.act(item, Action.EXTEND_DEADLINE, _u(who), now, svc.ActionInput(
                    deadline=new, reason="weather"), form=hazard_form(), window=WINDOW)
            assert err.value.code == code
            db.session.rollback()
        with pytest.raises(TransitionError) as err:   # a reason is required
            svc.act(item, Action.EXTEND_DEADLINE, _u(w.staff_a), now,
                    svc.ActionInput(deadline=new, reason="because"), form=hazard_form(),
                    window=WINDOW)
        assert err.value.code == "missing_evidence" and err.value.detail == "reason"
        db.session.rollback()
        with pytest.raises(TransitionError) as err:   # earlier than the current deadline
            svc.act(item, Action.EXTEND_DEADLINE, _u(w.staff_a), now, svc.ActionInput(
                deadline=old - timedelta(hours=1), reason="weather"), form=hazard_form(),
                window=WINDOW)
        assert err.value.code == "deadline_not_later"
        db.session.rollback()
        with pytest.raises(TransitionError) as err:   # another community's staff
            svc.act(item, Action.EXTEND_DEADLINE, _u(w.staff_b), now, svc.ActionInput(
                deadline=new, reason="weather"), form=hazard_form(), window=WINDOW)
        assert err.value.code == "forbidden_object"
        db.session.rollback()

        ev = svc.act(item, Action.EXTEND_DEADLINE, _u(w.staff_a), now, svc.ActionInput(
            deadline=new, reason="needs_materials", note="等配件"), form=hazard_form(),
            window=WINDOW)
        db.session.commit()
        assert item.status == "acknowledged" and item.deadline == new
        assert (ev.from_status, ev.to_status, ev.reason, ev.note) == (
            "acknowledged", "acknowledged", "needs_materials", "等配件")
        assert ev.data == {"deadline": new.isoformat(timespec="seconds"),
                           "previous_deadline": old.isoformat(timespec="seconds")}


def test_extend_through_the_item_page(app, world):
    with app.app_context():
        item = _report(world, world.a1, at=utcnow() - timedelta(hours=30))  # overdue
        item_id = item.id
    staff = sign_in(app.test_client(), world.staff_a)
    page = staff.get(f"/items/{item_id}").get_data(as_text=True)
    assert 'id="act-extend_deadline"' in page and 'class="badge red ack-late"' in page
    resp = staff.post(f"/items/{item_id}/act", data={
        "action": "extend_deadline", "deadline": "2099-01-02T10:00", "reason": "major_work"})
    assert resp.status_code == 302
    page = staff.get(f"/items/{item_id}").get_data(as_text=True)
    assert "2099-01-02 10:00" in page and "工程量大" in page
    manager = sign_in(app.test_client(), world.mgr_x)
    assert 'id="act-extend_deadline"' not in manager.get(f"/items/{item_id}").get_data(as_text=True)
    resp = manager.post(f"/items/{item_id}/act", data={
        "action": "extend_deadline", "deadline": "2099-02-02T10:00", "reason": "weather"})
    assert resp.status_code == 422
    assert 'id="action-error"' in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Item, item_id).deadline.year == 2099   # unchanged by the manager


# --- escalations ---------------------------------------------------------------------

def test_escalation_list_and_marks(app, world):
    now = utcnow()
    with app.app_context():
        late_ack = _report(world, world.a1, "flyers", at=now - timedelta(hours=13)).id  # >12 h
        fresh = _report(world, world.a1, "flyers", at=now - timedelta(hours=1)).id
        overdue = _report(world, world.a2, "fire_exit", at=now - timedelta(hours=30))
        _ack(overdue, world.mgr_y, now - timedelta(hours=29))
        overdue = overdue.id
        elsewhere = _report(world, world.b1, "flyers", at=now - timedelta(hours=20),
                            who=world.vol_b).id
    staff = sign_in(app.test_client(), world.staff_a)
    page = staff.get("/escalations").get_data(as_text=True)

    def ids(section):
        block = page.split(f'id="list-{section}"')[1].split("</ul>")[0]
        return {int(i) for i in re.findall(r'href="/items/(\d+)"', block)}
    assert ids("ack_late") == {late_ack}
    assert ids("overdue") == {overdue}
    assert fresh not in ids("ack_late") | ids("overdue") and elsewhere not in ids("ack_late")
    assert 'id="count-ack_late">1<' in page and 'id="count-overdue">1<' in page
    # Every list marks them.
    overview = staff.get("/overview").get_data(as_text=True)
    assert overview.count('class="badge red ack-late"') == 1
    assert " escalated" in overview
    inbox = sign_in(app.test_client(), world.mgr_x).get("/inbox?tab=new").get_data(as_text=True)
    assert inbox.count('class="badge red ack-late"') == 2   # X: the A1 item and the B1 one
    compound = staff.get(f"/compounds/{world.a1}").get_data(as_text=True)
    assert compound.count('class="badge red ack-late"') == 1
    # Only staff and admins.
    for who in (world.vol_a, world.mgr_x, world.com_a1):
        assert sign_in(app.test_client(), who).get("/escalations").status_code == 403
    admin = sign_in(app.test_client(), world.admin).get("/escalations").get_data(as_text=True)
    assert f'href="/items/{elsewhere}"' in admin


def test_escalation_rows_say_who_answers_and_how_late(app, world):
    """Staff chase companies: each row names the company and how many days it is late,
    and a row without a building has no dangling separator."""
    now = utcnow()
    with app.app_context():
        late = _report(world, world.a2, "flyers", at=now - timedelta(days=5))  # 72 h deadline
        _ack(late, world.mgr_y, now - timedelta(days=5) + timedelta(hours=1))
        late = late.id
    page = sign_in(app.test_client(), world.staff_a).get("/escalations").get_data(as_text=True)
    block = page.split('id="list-overdue"')[1].split("</ul>")[0]
    row = block.split(f'href="/items/{late}"')[1].split("</li>")[0]
    assert '<small class="company">物业Y</small>' in row
    assert "已超期 2 天" in row
    assert '<span class="where">小区A2</span>' in row and "小区A2 ·" not in row
    compound = sign_in(app.test_client(), world.vol_a).get(f"/compounds/{world.a2}").get_data(as_text=True)
    mine = compound.split(f'href="/items/{late}"')[1].split("</li>")[0]
    assert 'class="where"' not in mine and 'class="company"' not in mine


def test_ack_escalation_time_is_configurable(app, world):
    app.config["ACK_ESCALATE"] = timedelta(hours=2)
    with app.app_context():
        item_id = _report(world, world.a1, "greenery", at=utcnow() - timedelta(hours=3)).id
    page = sign_in(app.test_client(), world.staff_a).get("/escalations").get_data(as_text=True)
    assert f'href="/items/{item_id}"' in page.split('id="list-ack_late"')[1].split("</ul>")[0]


# --- ratings pages ------------------------------------------------------------------

@pytest.fixture
def demo(app):
    from patrol.seed import seed_demo
    with app.app_context():
        users = seed_demo()
        ids = {k: u.id for k, u in users.items()}
        companies = {c.name: c.id for c in db.session.execute(db.select(Company)).scalars()}
    return ids, companies


def test_red_black_list_page(app, demo):
    users, companies = demo
    staff = sign_in(app.test_client(), users["staff"])
    resp = staff.get("/ratings")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "红榜" in page and "黑榜" in page
    red = page.split('id="red-list"')[1].split("</section>")[0]
    black = page.split('id="black-list"')[1].split("</section>")[0]
    assert "宏远物业服务有限公司" in red and "安居物业管理有限公司" in black
    assert 'style="' not in page and "<script>" not in page
    # Month view, and a period with no data: everyone is "insufficient data", unranked.
    assert staff.get("/ratings?period=2001-01").status_code == 200
    empty = staff.get("/ratings?period=2001-Q1").get_data(as_text=True)
    assert empty.count("数据不足") == 2 and "第 1 名" not in empty
    assert staff.get("/ratings?period=garbage").status_code == 200   # falls back


def test_scorecard_page_shows_chart_and_how_figures_were_computed(app, demo):
    users, companies = demo
    company_id = companies["宏远物业服务有限公司"]
    manager = sign_in(app.test_client(), users["manager1"])
    resp = manager.get("/ratings")
    assert resp.status_code == 302 and f"/ratings/companies/{company_id}" in resp.headers["Location"]
    page = manager.get(f"/ratings/companies/{company_id}").get_data(as_text=True)
    assert '<svg class="chart"' in page and page.count('class="bar-reported"') == 12
    assert 'id="explain"' in page and 'id="points"' in page
    assert "中位数" in page and "回头看" in page
    assert 'style="' not in page and "<script>" not in page
    # The other company's scorecard is not theirs.
    other = companies["安居物业管理有限公司"]
    assert manager.get(f"/ratings/companies/{other}").status_code == 403
    assert manager.get(f"/ratings/companies/{other}/scorecard.pdf").status_code == 403


@pytest.mark.parametrize("who,company,status", [
    ("staff_a", "x", 200), ("staff_a", "y", 200), ("staff_b", "x", 200), ("staff_b", "y", 403),
    ("mgr_x", "x", 200), ("mgr_x", "y", 403), ("mgr_y", "y", 200), ("admin", "y", 200),
    ("vol_a", "x", 403), ("com_a1", "x", 403),
])
def test_scorecard_permissions(app, world, who, company, status):
    client = sign_in(app.test_client(), getattr(world, who))
    assert client.get(f"/ratings/companies/{getattr(world, company)}").status_code == status


@pytest.mark.parametrize("who,status", [("staff_a", 200), ("admin", 200), ("mgr_x", 302),
                                        ("vol_a", 403), ("com_a1", 403)])
def test_ratings_list_permissions(app, world, who, status):
    assert sign_in(app.test_client(), getattr(world, who)).get("/ratings").status_code == status


def test_staff_ratings_use_their_community_only(app, world):
    """Company X works in communities A and B; staff of B see X rated on B's items only."""
    from datetime import datetime
    from patrol.scoring import Period
    from patrol.services.ratings import rate_period
    may = datetime(2026, 5, 10, 4, 0)
    with app.app_context():
        for _ in range(5):
            _report(world, world.a1, "flyers", at=may)
        _report(world, world.b1, "flyers", at=may, who=world.vol_b)
        a = rate_period(Period.parse("2026-05"), community_id=world.ca)
        b = rate_period(Period.parse("2026-05"), community_id=world.cb)
        every = rate_period(Period.parse("2026-05"))
    assert (a.of(world.x).items, a.of(world.x).sufficient, a.of(world.y).items) == (5, True, 0)
    assert (b.of(world.x).items, b.of(world.x).sufficient, b.of(world.y)) == (1, False, None)
    assert every.of(world.x).items == 6
    page = sign_in(app.test_client(), world.staff_b).get(
        f"/ratings/companies/{world.x}?period=2026-05").get_data(as_text=True)
    assert 'id="insufficient"' in page


def test_scorecard_pdf_has_an_embedded_cjk_font(app, demo, tmp_path):
    users, companies = demo
    staff = sign_in(app.test_client(), users["staff"])
    resp = staff.get(f"/ratings/companies/{companies['安居物业管理有限公司']}/scorecard.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF")
    require_poppler()
    path = tmp_path / "s.pdf"
    path.write_bytes(resp.data)
    cjk = {name: emb for name, emb in embedded_fonts(path).items() if "CJK" in name or "SC" in name}
    assert cjk and set(cjk.values()) == {"yes"}, embedded_fonts(path)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout
    assert "安居物业管理有限公司" in text and "黑榜" in text
