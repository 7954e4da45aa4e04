"""A small phone (360x640, as many mid-range Androids) and a large system font (150%:
the root font at 27 px), on the demo district, as an older volunteer holds it.

What a review at that size found and what must stay fixed: the report button was below
the first screen during a patrol, a photo's remove button was 36 px, the look-back count
in the red header was red on red, and the home page's look-back rows and the rating row
ran off the side with a larger font.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patrol.extensions import db
from patrol.models import Checkpoint, Compound, User
from patrol.seed import seed_demo
from tests.browser.phone import no_sideways_scroll
from tests.browser.test_field_loop import assert_no_browser_errors, jpeg, volunteer_signs_in
from tests.browser.test_ratings import sign_in

pytestmark = pytest.mark.browser

SMALL = {"width": 360, "height": 640}
LARGE_FONT = "document.documentElement.style.fontSize = '27px'"   # 150% of the app's 18 px


def box(locator):
    locator.scroll_into_view_if_needed()
    return locator.bounding_box()


def test_a_small_phone_with_a_large_font(live_server, phone, shots):
    live = live_server
    with live.db():
        seed_demo()
        compound_id = db.session.execute(db.select(Checkpoint.compound_id)).scalars().first()
        assert compound_id is not None, "the demo has checkpoints"
        volunteer = db.session.execute(db.select(User.id).where(
            User.username == "volunteer")).scalar_one()
        assert db.session.get(Compound, compound_id).name

    small = volunteer_signs_in(live, lambda name: phone(name, viewport=SMALL), volunteer)
    page = small.page

    # The look-back count in the header can be read: not the header's own red.
    badge = page.locator("#nav-lookback")
    expect(badge).to_be_visible()
    colours = badge.evaluate("""el => [getComputedStyle(el).backgroundColor,
        getComputedStyle(el.closest('.top')).backgroundColor]""")
    assert colours[0] != colours[1], colours
    no_sideways_scroll(page, shots, "small-home")
    page.evaluate(LARGE_FONT)
    no_sideways_scroll(page, shots, "small-home-large-font")

    # During a patrol the report button is on the first screen, above the checkpoints.
    page.goto(f"/compounds/{compound_id}")
    if page.locator("#patrol-start").count():
        with page.expect_navigation():
            page.locator("#patrol-start").tap()
    expect(page.locator("#patrol #checkpoints")).to_be_visible()
    button = page.locator("#report-btn").bounding_box()
    assert button["y"] + button["height"] <= SMALL["height"], button
    no_sideways_scroll(page, shots, "small-compound-patrol")

    # A photo's remove button is a whole fingertip.
    with page.expect_navigation():
        page.locator("#report-btn").tap()
    page.locator("#f-photos input[name=photos]").set_input_files(jpeg("a.jpg", (200, 80, 40), "a"))
    remove = page.locator("#f-photos .photo .remove")
    expect(remove).to_have_count(1)
    size = box(remove)
    assert size["width"] >= 44 and size["height"] >= 44, size
    no_sideways_scroll(page, shots, "small-report-photo")
    page.evaluate(LARGE_FONT)
    no_sideways_scroll(page, shots, "small-report-large-font")

    # The committee's five-star row wraps rather than running off the side.
    committee = sign_in(live, lambda name, **kw: phone(name, viewport=SMALL, **kw),
                        "committee", "/compounds/")
    committee.page.goto("/committee/rating")
    expect(committee.page.locator(".rating-row")).to_be_visible()
    committee.page.evaluate(LARGE_FONT)
    no_sideways_scroll(committee.page, shots, "small-committee-rating-large-font")

    assert_no_browser_errors(small, committee)
    assert live.errors == []
