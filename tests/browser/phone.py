"""Checks every browser test makes on a phone page."""
from __future__ import annotations


def no_sideways_scroll(page, shots, name):
    """Screenshot the page and fail if it is wider than the phone. Measured against the
    phone's own width: a mobile browser widens its layout viewport to fit content that
    overflows, so `window.innerWidth` grows with the overflow and would hide it."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    width = page.viewport_size["width"]
    overflow = page.evaluate("document.documentElement.scrollWidth") - width
    assert overflow <= 0, f"{name}: page is {overflow}px wider than the phone ({width}px)"
