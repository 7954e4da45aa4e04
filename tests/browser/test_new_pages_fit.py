"""The pages the seed's chain and Data out added, on the demo district, on a phone
(390x844): each one opens without a browser error and fits the phone's width.

Staff: the triage queue, departments, an item with the routing and reply forms open, the
escalation list with its downloads, API tokens and the API's documentation page. A
department user: its inbox and an item routed to it. The committee: an item (reply, 督办)
and the monthly rating.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patrol.extensions import db
from patrol.models import Item
from patrol.seed import seed_demo
from tests.browser.phone import no_sideways_scroll
from tests.browser.test_field_loop import assert_no_browser_errors
from tests.browser.test_ratings import sign_in

pytestmark = pytest.mark.browser


def test_new_pages_fit_a_phone(live_server, phone, shots):
    live = live_server
    with live.db():
        seed_demo()
        routed = db.session.execute(db.select(Item.id).where(
            Item.department_id.is_not(None))).scalars().first()
        flagged = db.session.execute(db.select(Item.id).where(
            Item.flagged_at.is_not(None))).scalars().first()
        assert routed and flagged

    staff = sign_in(live, phone, "staff", "/overview")
    page = staff.page
    for url, name in (("/triage", "triage"), ("/departments", "departments"),
                      ("/escalations", "escalations-downloads"), ("/tokens/", "api-tokens"),
                      ("/api/v1/docs", "api-docs"), ("/coverage", "coverage-board"),
                      ("/coverage/schedules", "coverage-schedules"), ("/hours", "service-hours")):
        page.goto(url)
        expect(page.locator("h1")).to_be_visible()
        no_sideways_scroll(page, shots, name)
    page.goto(f"/items/{flagged}")
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    no_sideways_scroll(page, shots, "item-staff-forms")

    water = sign_in(live, phone, "water", "/inbox")
    no_sideways_scroll(water.page, shots, "department-inbox")
    water.page.goto(f"/items/{routed}")
    expect(water.page.locator("h1")).to_be_visible()
    no_sideways_scroll(water.page, shots, "item-department")

    committee = sign_in(live, phone, "committee", "/compounds/")
    committee.page.goto(f"/items/{flagged}")
    no_sideways_scroll(committee.page, shots, "item-committee")
    committee.page.goto("/committee/rating")
    no_sideways_scroll(committee.page, shots, "committee-rating")

    assert_no_browser_errors(staff, water, committee)
    assert live.errors == []
