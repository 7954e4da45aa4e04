"""The staff overview's rows (web/lists.overview): each row's compound and company come
from the filter's lists (the session's identity map), or, for a company the filter does
not list (the compound changed hands after the report), from one query; the number of
statements does not follow the number of rows."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from patrol.extensions import db
from patrol.models import Company, Compound, utcnow
from tests.conftest import sign_in
from tests.test_handover import _report


@pytest.fixture
def app(db_app):
    """On SQLite and, when available, PostgreSQL."""
    return db_app


def _statements(app, client, url):
    seen = []
    with app.app_context():
        engine = db.engine

    def count(*_args):
        seen.append(1)
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return len(seen), response.get_data(as_text=True)


def test_rows_show_compound_and_company_without_a_statement_per_row(app, client, world):
    with app.app_context():
        _report(world, world.a1, utcnow())
        db.session.commit()
    sign_in(client, world.staff_a)
    client.get("/overview")   # first request: the app's own one-off reads
    one, html = _statements(app, client, "/overview")
    assert html.count('class="company"') == 1 and "小区A1" in html
    with app.app_context():
        for compound in (world.a1, world.a2, world.a2):
            _report(world, compound, utcnow(), category="flyers")
        db.session.commit()
    four, html = _statements(app, client, "/overview")
    assert html.count('class="company"') == 4
    assert html.count("物业Y</small>") == 2 and html.count("物业X</small>") == 2
    assert four == one


def test_a_company_the_filter_does_not_list_is_still_shown_on_its_rows(app, client, world):
    """A1 goes to company Z after the report: the item stays company X's, which the
    company filter (the companies of the community's compounds now) no longer lists."""
    with app.app_context():
        _report(world, world.a1, utcnow())
        z = Company(name="物业Z")
        db.session.get(Compound, world.a1).company = z
        db.session.commit()
        z_id = z.id
    sign_in(client, world.staff_a)
    html = client.get("/overview").get_data(as_text=True)
    assert '<small class="company">物业X</small>' in html
    companies = html.split('<select name="company">')[1].split("</select>")[0]
    assert f'<option value="{z_id}" >物业Z</option>' in companies
    assert "物业X" not in companies
