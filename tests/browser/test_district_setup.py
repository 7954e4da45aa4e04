"""District setup on a real phone (headless Chromium, 390x844, touch, zh-CN): community
staff download the import template, fill it in, upload it, read the preview and confirm;
the new compound is there once, and its poster is offered.

Selectors use ids; the visible Chinese checked here is data or the importer's own summary.
"""
from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.browser.phone import no_sideways_scroll

from patrol.extensions import db
from patrol.importer.read import read
from patrol.models import Community, Compound, Street, User
from patrol.services import district_import
from tests.factories import PASSWORD
from tests.test_jobs import worker

pytestmark = pytest.mark.browser



def big_enough(locator):
    box = locator.bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44, box


def test_staff_import_the_filled_template_from_a_phone(live_server, world, phone, shots):
    live = live_server
    with live.db():
        db.session.get(Community, world.ca).street = Street(name="和平街道")
        db.session.commit()

    staff = phone("staff_a", geolocation=False)
    page = staff.page
    page.goto("/login")
    page.locator("input[name=username]").fill("staff_a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).not_to_have_url(re.compile(r"/login"))

    page.locator("#nav-district").tap()
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/district/$"))
    page.locator("#go-import").tap()
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/district/import$"))
    no_sideways_scroll(page, shots, "district-import")
    for target in ("#download-template", "#import-file", "#import-check"):
        big_enough(page.locator(target))

    with page.expect_download() as download:
        page.locator("#download-template").tap()
    with open(download.value.path(), "rb") as fh:
        book = load_workbook(fh)
    book["小区"].append(["和平街道", "社区A", "手机园", "建设路8号", "物业X",
                       "27.86", "112.95", "120"])
    book["楼栋"].append(["社区A", "手机园", "1-4栋", "和平街道"])
    book["志愿者"].append(["手机志愿者", "13700137000", "社区A", "A队", "组长", "和平街道"])
    out = io.BytesIO()
    book.save(out)
    with live.db():
        summary = district_import.plan(read(out.getvalue(), "x.xlsx")).summary()
        db.session.rollback()
    assert summary == "新增 6 条，修改 0 条"

    page.locator("#import-file").set_input_files(files=[{
        "name": "和平社区名单.xlsx", "buffer": out.getvalue(),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.locator("#import-check").tap()
    expect(page.locator("#import-summary")).to_contain_text(summary)
    expect(page.locator("#import-counts")).to_contain_text("小区")
    no_sideways_scroll(page, shots, "district-preview")
    with live.db():                                     # the preview wrote nothing
        assert db.session.execute(db.select(Compound).where(Compound.name == "手机园")
                                  ).scalar_one_or_none() is None
    big_enough(page.locator("#import-confirm"))
    action = page.locator("#confirm-form").get_attribute("action")
    csrf = page.locator("#confirm-form input[name=csrf_token]").get_attribute("value")

    page.locator("#import-confirm").tap()
    # The import is a job: its page shows a progress bar while the worker applies it,
    # then the summary and a big button to the import's page.
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/jobs/\d+$"))
    expect(page.locator("#job-progress")).to_be_visible()
    with worker(live.app):
        expect(page.locator("#job-import-done")).to_be_visible(timeout=30_000)
    expect(page.locator("#job")).to_contain_text(summary)
    big_enough(page.locator("#job-import-done"))
    no_sideways_scroll(page, shots, "district-import-job")
    page.locator("#job-import-done").tap()
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/district/import/[\w-]{32}$"))
    expect(page.locator("#import-done")).to_contain_text(summary)
    expect(page.locator("#new-posters")).to_be_visible()
    no_sideways_scroll(page, shots, "district-done")

    # The same confirm again (a double tap, a resent form): it leads to the same result
    # page and writes nothing twice.
    again = page.request.post(live.url + action, form={"csrf_token": csrf})
    assert again.ok and again.url == page.url
    with live.db():
        compounds = db.session.execute(db.select(Compound).where(Compound.name == "手机园")
                                       ).scalars().all()
        assert [c.community_id for c in compounds] == [world.ca]
        assert len(compounds[0].buildings) == 4
        volunteer = db.session.execute(db.select(User).where(User.phone == "13700137000")
                                       ).scalar_one()
        assert volunteer.community_id == world.ca and volunteer.team.name == "A队"
    assert staff.errors == []
    assert live.errors == []
