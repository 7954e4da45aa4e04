"""Checks every browser test makes on a phone page."""
from __future__ import annotations

from playwright.sync_api import expect


def no_sideways_scroll(page, shots, name):
    """Screenshot the page and fail if it is wider than the phone. Measured against the
    phone's own width: a mobile browser widens its layout viewport to fit content that
    overflows, so `window.innerWidth` grows with the overflow and would hide it."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    width = page.viewport_size["width"]
    overflow = page.evaluate("document.documentElement.scrollWidth") - width
    assert overflow <= 0, f"{name}: page is {overflow}px wider than the phone ({width}px)"


def assert_images_loaded(locator):
    """Every image the locator finds has arrived and decoded. Waits for `complete` (a
    thumbnail is still in flight when its row shows), then checks it is not a broken one."""
    count = locator.count()
    assert count > 0
    for i in range(count):
        img = locator.nth(i)
        img.scroll_into_view_if_needed()  # thumbnails in the history are loading=lazy
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("el => el.naturalWidth") > 0, "a photo did not load"
