"""A resident's report, the whole way round, on real phones (headless Chromium, 390x844).

A signed-out phone scans the gate QR and reports as a resident, with a photo; community
staff accept it in the triage queue; the property manager acknowledges and fixes it
(with a photo); the team's 待回头看 lists the fix and the team's group robot (a real
receiver on 127.0.0.1) is told; a volunteer scans the gate and verifies it on the spot;
the resident's receipt link shows it closed; the resident rates it; the rating reaches
the company's residents' satisfaction on the scorecard.

Selectors use ids, names and values, not the visible wording.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patrol.extensions import db
from patrol.models import Compound, Delivery, Item, NotifyEndpoint, ResidentReport, utcnow
from patrol.services import notify as notify_service
from patrol.services import ratings
from patrol.services.qr import compound_url
from tests.browser.test_field_loop import (assert_no_browser_errors, jpeg, manager_acknowledges,
                                           manager_fixes, manager_opens_item, manager_signs_in,
                                           open_item_from_compound, scan_gate, shoot, url_re,
                                           volunteer_signs_in)
from tests.browser.phone import assert_images_loaded, no_sideways_scroll
from tests.factories import PASSWORD
from tests.test_notifications import Receiver

pytestmark = pytest.mark.browser

NOTE = "5栋楼道堆满纸箱，堵住了消防通道"
PHONE_NO = "138 0013 8000"


def resident_reports(live, phone, w, shots) -> str:
    """A signed-out phone at the gate: the residents' page, the form, the receipt link."""
    resident = phone("resident", geolocation=False)
    page = resident.page
    with live.db():
        compound = db.session.get(Compound, w.a1)
        token, building = compound.qr_token, compound.buildings[1]
        building_id = building.id
    page.goto(compound_url(live.app.config["BASE_URL"], token))
    expect(page.locator("#resident-landing")).to_be_visible()
    expect(page.locator("#volunteer-sign-in a")).to_have_attribute("href", f"/login?next=/c/{token}")
    no_sideways_scroll(page, shots, "resident-landing")
    page.locator("#resident-report").tap()
    expect(page).to_have_url(url_re(live, f"/c/{token}/report"))
    page.locator("label.choice:has(input[name=category][value=fire_exit])").tap()
    page.locator("select[name=building]").select_option(str(building_id))
    page.locator("textarea[name=note]").fill(NOTE)
    page.locator("input[name=phone]").fill(PHONE_NO)
    page.locator("#resident-photo").set_input_files(jpeg("IMG_2001.jpg", (180, 120, 40), "boxes"))
    no_sideways_scroll(page, shots, "resident-form")
    page.locator("#resident-submit").tap()
    expect(page).to_have_url(url_re(live, "/r/[0-9a-f]+"))
    expect(page.locator("#receipt-new")).to_be_visible()
    expect(page.locator("#receipt-link img")).to_be_visible()
    receipt = page.locator("#receipt-url").input_value()
    assert receipt.startswith(live.url + "/r/")
    page_text = page.content()
    assert PHONE_NO not in page_text
    cookies = {c["name"]: c for c in resident.context.cookies()}
    assert cookies["patrol_device"]["httpOnly"] and cookies["patrol_device"]["sameSite"] == "Lax"
    no_sideways_scroll(page, shots, "resident-receipt")
    with live.db():
        report = db.session.execute(db.select(ResidentReport)).scalar_one()
        assert (report.status, report.note, report.phone, len(report.photos)) == \
            ("pending", NOTE, PHONE_NO, 1)
        assert db.session.execute(db.select(db.func.count()).select_from(Item)).scalar() == 0
    return resident, receipt


def staff_signs_in(live, phone):
    staff = phone("staff", geolocation=False)
    page = staff.page
    page.goto("/login")
    page.locator("input[name=username]").fill("staff_a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page.locator("#login-btn")).to_have_count(0)
    return staff


def staff_accepts(live, staff, shots) -> int:
    page = staff.page
    page.goto("/overview")
    expect(page.locator("#triage-link")).to_contain_text("1")
    page.locator("#triage-link").tap()
    expect(page).to_have_url(url_re(live, "/triage"))
    row = page.locator("#triage-list li.item")
    expect(row).to_have_count(1)
    expect(row.locator("img.thumb")).to_have_count(1)
    assert_images_loaded(row.locator("img.thumb"))
    row.locator("a").first.tap()
    expect(page.locator("#triage-phone")).to_contain_text(PHONE_NO)   # staff in scope only
    no_sideways_scroll(page, shots, "triage-report")
    page.locator("#triage-accept").tap()
    expect(page).to_have_url(url_re(live, "/triage"))
    expect(page.locator("#triage-empty")).to_be_visible()
    with live.db():
        item = db.session.execute(db.select(Item)).scalar_one()
        assert (item.source, item.status, item.note) == ("resident", "reported", NOTE)
        return item.id


def volunteer_verifies(live, vol, w, item_id):
    scan_gate(live, vol, w.a1)
    open_item_from_compound(live, vol, w.a1, item_id)
    page = vol.page
    page.locator("details#act-verify summary").tap()
    form = page.locator("details#act-verify form")
    form.locator("input[name=photos]").set_input_files(jpeg("verify.jpg", (40, 120, 200), "ok"))
    expect(form.locator(".previews img")).to_have_count(1)
    form.locator("label.choice:has(input[name=rating][value='5'])").tap()
    form.locator("button.btn").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    with live.db():
        assert db.session.get(Item, item_id).status == "verified"


def test_a_residents_report_the_whole_way_round(live_server, world, phone, shots):
    live, w = live_server, world
    resident, receipt = resident_reports(live, phone, w, shots)

    staff = staff_signs_in(live, phone)
    item_id = staff_accepts(live, staff, shots)

    # The receipt now says it was accepted, with no names.
    resident.page.goto(receipt)
    expect(resident.page.locator("#receipt-history li")).to_have_count(2)
    expect(resident.page.locator("#receipt-rate")).to_have_count(0)   # not closed yet

    # The team's group robot: a real receiver on this machine, told of fixes only.
    robot = Receiver()
    live.app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    with live.db():
        db.session.add(NotifyEndpoint(name="A队群", kind="wecom_markdown", target=robot.url(),
                                      team_id=w.team, events=["fixed", "lookback_late"]))
        db.session.commit()
    try:
        mgr = manager_signs_in(live, phone, "mgr_x")
        manager_opens_item(live, mgr, item_id)
        manager_acknowledges(live, mgr, item_id)
        manager_fixes(live, mgr, item_id, w, "acknowledged")

        # What `patrol deliver --watch` does beside the web app: send what is queued.
        with live.db():
            notify_service.deliver_due(utcnow())
            sent = db.session.execute(db.select(Delivery.event, Delivery.status)).all()
        assert sent == [("fixed", "sent")]
        assert len(robot.requests) == 1
        assert str(item_id) in robot.json()["markdown"]["content"]

        # The team's volunteer sees it waiting for the look-back, before and after photos.
        vol = volunteer_signs_in(live, phone, w.vol_a)
        vol.page.goto("/compounds")
        row = vol.page.locator(f"#lookback-list li[data-item='{item_id}']")
        expect(row).to_be_visible()
        expect(vol.page.locator("#lookback-count")).to_have_text("1")
        expect(row.locator("img")).to_have_count(2)
        no_sideways_scroll(vol.page, shots, "lookback-waiting")
        volunteer_verifies(live, vol, w, item_id)
        vol.page.goto("/compounds")
        expect(vol.page.locator(f"#lookback-list li[data-item='{item_id}']")).to_have_count(0)
    finally:
        robot.close()

    # The resident opens the saved link: closed, and may rate it once.
    page = resident.page
    page.goto(receipt)
    expect(page.locator("#receipt-rate")).to_be_visible()
    history = page.locator("#receipt-history li")
    expect(history).to_have_count(5)   # received, accepted, acknowledged, fixed, verified
    text = page.content()
    for secret in ("staff_a", "mgr_x", "vol_a", PHONE_NO, "已拆除"):
        assert secret not in text
    no_sideways_scroll(page, shots, "resident-receipt-closed")
    page.locator("#receipt-rate label.choice:has(input[name=stars][value='4'])").tap()
    page.locator("#rate-submit").tap()
    expect(page.locator("#receipt-rated")).to_be_visible()
    expect(page.locator("#receipt-rate")).to_have_count(0)
    with live.db():
        assert db.session.execute(db.select(ResidentReport.rating)).scalar_one() == 4
        month = ratings.default_period(utcnow(), "month").shift(1)

    # The rating reaches the company's residents' satisfaction (one rating suffices here).
    live.app.config["RATING_MIN_ITEMS"] = 1
    staff.page.goto(f"/ratings/companies/{w.x}?period={month.code}")
    expect(staff.page.locator("#resident-satisfaction b")).to_have_text("4.00")
    shoot(staff.page, shots, "scorecard-residents")

    assert_no_browser_errors(resident, staff, mgr, vol)
    assert live.errors == []
