"""Every page that takes ?month= reads it one way: a bad month is the same worded 400."""
from __future__ import annotations

import pytest

from tests.conftest import sign_in

PAGES = ["/monthly", "/exports/monthly.xlsx", "/hours", "/hours/export.xlsx", "/me/hours"]
BAD = ["9999-12", "2026-13", "2026-0", "november", "2026-Q4", "1999-12", "2026-11-01"]


@pytest.mark.parametrize("page", PAGES)
def test_a_bad_month_is_a_worded_400(app, world, page):
    staff = sign_in(app.test_client(), world.staff_a)
    for value in BAD:
        response = staff.get(f"{page}?month={value}")
        assert response.status_code == 400, (page, value)
        assert "2026-11" in response.get_data(as_text=True), (page, value)  # says how to write it


@pytest.mark.parametrize("page", PAGES)
def test_a_good_month_and_none_are_read(app, world, page):
    staff = sign_in(app.test_client(), world.staff_a)
    assert staff.get(f"{page}?month=2026-10").status_code == 200
    assert staff.get(page).status_code == 200
