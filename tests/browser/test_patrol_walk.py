"""Two volunteers of one team patrol a compound together, on real phones (issue 14).

Both scan the gate; one starts the patrol and the other's scan joins it; one scans two of
the compound's three checkpoint stickers and reports a hazard; they end it with the
one-tap summary. The database then holds one patrol with both members and their service
minutes, 2/3 checkpoints, and the report linked to the patrol, and the patrol page says so.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from patrol import patrols as rules
from patrol.extensions import db
from patrol.models import (Checkpoint, CheckpointScan, Compound, Item, Patrol, PatrolMember,
                           Presence, User)
from tests.browser.conftest import GEO
from tests.browser.phone import no_sideways_scroll
from tests.factories import PASSWORD
from tests.browser.test_field_loop import (assert_no_browser_errors, report_flying_wire,
                                           scan_gate, url_re, volunteer_signs_in)

pytestmark = pytest.mark.browser


def patrol_world(live, w):
    """Compound A1 at the phones' position, a second volunteer in A队, three stickers."""
    with live.db():
        c = db.session.get(Compound, w.a1)
        c.lat, c.lon, c.radius_m = GEO["latitude"], GEO["longitude"], 200
        mate = User(username="vol_a2", display_name="王阿姨", role="volunteer",
                    community_id=w.ca, team_id=w.team, title="组长")
        cps = [Checkpoint(compound_id=w.a1, name=n, kind=k) for n, k in
               (("1栋", "building"), ("2栋", "building"), ("车库消防通道", "fire_exit"))]
        db.session.add_all([mate, *cps])
        db.session.commit()
        return mate.id, [cp.qr_token for cp in cps]


def backdate(live, patrol_id, minutes_by_user):
    """Walks take the better part of an hour; a test takes seconds. Move the patrol's
    start and each member's joining back on the app's clock (the rows' own times), so
    the minutes the end gives are a walk's, and exact."""
    with live.db():
        patrol = db.session.get(Patrol, patrol_id)
        latest = max(minutes_by_user.values())
        patrol.started_at -= timedelta(minutes=latest)
        for user_id, minutes in minutes_by_user.items():
            member = db.session.get(PatrolMember, (patrol_id, user_id))
            member.joined_at -= timedelta(minutes=minutes)
        db.session.commit()


def test_two_volunteers_patrol_together(live_server, world, phone, shots):
    live, w = live_server, world
    mate_id, tokens = patrol_world(live, w)
    a = volunteer_signs_in(live, phone, w.vol_a, "vol_a")
    b = volunteer_signs_in(live, phone, mate_id, "vol_a2")

    # A scans the gate and starts the patrol: one big button.
    scan_gate(live, a, w.a1)
    a.page.locator("#patrol-start").tap()
    expect(a.page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(a.page.locator("#patrol-end-form")).to_be_visible()
    expect(a.page.locator("#patrol-members")).to_contain_text("vol_a")

    # B's scan of the gate joins the team's patrol under way.
    scan_gate(live, b, w.a1)
    expect(b.page.locator("#patrol-members")).to_contain_text("王阿姨")
    expect(b.page.locator("#patrol-members")).to_contain_text("vol_a")
    expect(b.page.locator("#cp-count")).to_contain_text("0/3")

    # A walks past two stickers, then reports a hazard on the way.
    for token in tokens[:2]:
        with a.page.expect_response(lambda r: "/checkpoint-scans/" in r.url) as located:
            a.page.goto(f"{live.url}/k/{token}")
        assert located.value.status == 200      # the page added the phone's location
        expect(a.page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(a.page.locator("#cp-count .n")).to_have_text("2")
    expect(a.page.locator("#checkpoints li.done")).to_have_count(2)
    no_sideways_scroll(a.page, shots, "patrol-under-way")
    item_id = report_flying_wire(live, a, w)
    expect(a.page.locator("#found-count")).to_have_value("1")

    with live.db():
        patrol_id = db.session.execute(db.select(Patrol.id)).scalar_one()
    backdate(live, patrol_id, {w.vol_a: 50, mate_id: 35})

    # The end: 发现问题 1 条, one tap (N came prefilled with the items found).
    a.page.locator("#end-found").tap()
    expect(a.page).to_have_url(url_re(live, f"/patrols/{patrol_id}"))
    expect(a.page.locator("#patrol-state")).to_contain_text("发现问题")
    no_sideways_scroll(a.page, shots, "patrol-page")

    with live.db():
        patrol = db.session.execute(db.select(Patrol)).scalar_one()
        assert (patrol.summary, patrol.found_count, patrol.ended_by) == ("found", 1, "tapped")
        assert patrol.team_id == w.team and patrol.far_scans == 0
        members = {m.user_id: m for m in patrol.members}
        assert set(members) == {w.vol_a, mate_id}
        for m in members.values():
            assert m.minutes == rules.served_minutes(m.joined_at, patrol.ended_at)
        assert (members[w.vol_a].minutes, members[mate_id].minutes) == (45, 30)
        scanned = db.session.execute(db.select(CheckpointScan)).scalars().all()
        assert len(scanned) == 2 and {s.patrol_id for s in scanned} == {patrol.id}
        assert all(s.lat is not None and not s.far for s in scanned)
        gates = db.session.execute(db.select(Presence)).scalars().all()
        assert {(p.user_id, p.patrol_id, p.far) for p in gates} == \
            {(w.vol_a, None, False), (mate_id, patrol.id, False)}
        item = db.session.get(Item, item_id)
        assert item.events[0].action == "report" and item.events[0].patrol_id == patrol.id
        assert not item.location_mismatch

    page = a.page
    expect(page.locator("#patrol-members li")).to_have_count(2)
    expect(page.locator(f"#patrol-members li[data-user='{w.vol_a}']")).to_contain_text("45 分钟")
    expect(page.locator(f"#patrol-members li[data-user='{mate_id}']")).to_contain_text("30 分钟")
    expect(page.locator("#patrol-cp-count")).to_have_text("2/3")
    expect(page.locator(f"#patrol-reports a[href='/items/{item_id}']")).to_be_visible()
    # The item links back to its patrol.
    page.goto(f"/items/{item_id}")
    page.locator("#item-patrol").tap()
    expect(page).to_have_url(url_re(live, f"/patrols/{patrol_id}"))
    # B's compound page offers a new patrol.
    b.page.goto(f"/compounds/{w.a1}")
    expect(b.page.locator("#patrol-start")).to_be_visible()
    assert_no_browser_errors(a, b)
    assert live.errors == []


def test_staff_pages_fit_a_phone(live_server, world, phone, shots):
    """Staff's 位置不符 list (with a scan 2 km away) and a compound's checkpoints page."""
    live, w = live_server, world
    _mate, tokens = patrol_world(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    with live.db():       # the compound is 2 km from where the phone says it is
        c = db.session.get(Compound, w.a1)
        c.lat = GEO["latitude"] + 0.018
        db.session.commit()
    with vol.page.expect_response(lambda r: "/checkpoint-scans/" in r.url) as located:
        vol.page.goto(f"{live.url}/k/{tokens[2]}")
    assert located.value.status == 200
    vol.page.reload()                     # the location came after the page: now it shows
    expect(vol.page.locator("#patrol-far")).to_be_visible()
    staff = phone("staff", geolocation=False)
    page = staff.page
    page.goto("/login")
    page.locator("input[name=username]").fill("staff_a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).not_to_have_url(url_re(live, "/login"))
    page.locator("#nav-flagged").tap()
    expect(page.locator("#flagged li.item")).to_have_count(1)
    expect(page.locator("#flagged")).to_contain_text("车库消防通道")
    no_sideways_scroll(page, shots, "flagged")
    page.goto(f"/admin/compounds/{w.a1}/checkpoints")
    page.locator("#checkpoint-form input[name=name]").fill("地下车库B2层消防通道东侧楼梯间" * 2)
    page.locator("label.choice:has(input[value=fire_exit])").tap()
    page.locator("#add-checkpoint").tap()
    expect(page.locator("#checkpoint-list li.item")).to_have_count(4)
    no_sideways_scroll(page, shots, "checkpoints-admin")
    assert_no_browser_errors(vol, staff)
    assert live.errors == []
