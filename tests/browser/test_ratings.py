"""The ratings pages of the demo district on a real phone (headless Chromium, 390x844,
zh-CN): the red/black list, a scorecard with its SVG chart, the escalation list, and
the scorecard PDF with an embedded CJK font.

Selectors use ids and hrefs; the visible Chinese checked here is data (company names)
or comes from the app's own catalogue.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from playwright.sync_api import expect

from tests.browser.phone import no_sideways_scroll

from patrol.extensions import db
from patrol.models import Company, utcnow
from patrol.scoring import Period
from patrol.seed import DEMO_PASSWORD, HISTORY_MONTHS, seed_demo
from patrol.services.ratings import default_period

pytestmark = [pytest.mark.browser, pytest.mark.date_sensitive]

GOOD, POOR = "宏远物业服务有限公司", "安居物业管理有限公司"


@pytest.fixture
def demo(live_server):
    with live_server.db():
        seed_demo()
        return {c.name: c.id for c in db.session.execute(db.select(Company)).scalars()}


def sign_in(live, phone_factory, username, landing):
    phone = phone_factory(username, geolocation=False)
    page = phone.page
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).to_have_url(re.compile(re.escape(live.url) + landing))
    return phone



def test_red_black_list_and_scorecard_for_the_demo_district(live_server, demo, phone, shots,
                                                             tmp_path):
    live = live_server
    staff = sign_in(live, phone, "staff", "/overview")
    page = staff.page

    page.locator("#nav-ratings").tap()
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/ratings$"))
    expect(page.locator("#red-list")).to_contain_text(GOOD)
    expect(page.locator("#black-list")).to_contain_text(POOR)
    expect(page.locator(f"#company-{demo[GOOD]} .stars")).to_be_visible()
    expect(page.locator(f"#company-{demo[POOR]} .rank")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    no_sideways_scroll(page, shots, "ratings-list")

    # Month by month, too.
    page.locator("#period-kind").tap()
    expect(page).to_have_url(re.compile(r"period=\d{4}-\d{2}$"))
    expect(page.locator("#ranking .card")).to_have_count(2)

    # The poorly rated company's scorecard: grade, chart, how it was computed.
    page.locator(f"#company-{demo[POOR]} .head a").tap()
    expect(page).to_have_url(re.compile(rf"/ratings/companies/{demo[POOR]}\?period="))
    expect(page.locator("#grade .stars")).to_be_visible()
    chart = page.locator("svg#chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 80
    assert page.locator("svg#chart rect.bar-reported").count() == 12
    heights = [float(h) for h in page.locator("svg#chart rect.bar-reported").evaluate_all(
        "els => els.map(e => e.getAttribute('height'))")]
    # One bar for each demo history month inside the chart's 12 months (which end with
    # the default period, the last complete quarter): never fewer than six.
    with live.db():
        quarter = default_period(utcnow())
        this_month = default_period(utcnow(), "month").shift(1)
    last = Period(quarter.year, "month", quarter.first_month + 2)
    window = {last.shift(-k) for k in range(12)}
    seeded = {this_month.shift(-k) for k in range(1, HISTORY_MONTHS + 1)}
    assert len(window & seeded) >= 6
    assert sum(h > 0 for h in heights) == len(window & seeded), heights
    expect(page.locator("#explain")).to_be_visible()
    expect(page.locator("#points")).to_be_visible()
    no_sideways_scroll(page, shots, "scorecard")

    # The printable PDF, fetched with this phone's session.
    href = page.locator("#scorecard-pdf").get_attribute("href")
    resp = staff.context.request.get(live.url + href)
    assert resp.status == 200 and resp.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "scorecard.pdf"
    pdf.write_bytes(resp.body())
    if not shutil.which("pdffonts"):
        pytest.skip("poppler-utils not installed")
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    cjk = [line for line in fonts if "CJK" in line]
    assert cjk, fonts
    for line in cjk:   # columns: name type encoding emb sub uni object ID
        emb = line.split()[-5]
        assert emb == "yes", line
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert POOR in text

    # The escalation list shows the demo's overdue fire exit.
    page.locator("#nav-escalations").tap()
    expect(page.locator("#list-overdue .item").first).to_be_visible()
    expect(page.locator("#list-ack_late .item").first).to_be_visible()
    no_sideways_scroll(page, shots, "escalations")

    # Receivers: add a WeCom group robot (nothing is sent until something happens).
    page.locator("#nav-notifications").tap()
    page.locator("#add-endpoint summary").tap()
    page.locator("#add-endpoint input[name=name]").fill("和平社区督办群")
    page.locator("#add-endpoint select[name=kind]").select_option("wecom_markdown")
    page.locator("#add-endpoint input[name=target]").fill(
        "https://wecom-robot.invalid/cgi-bin/webhook/send?key=demo-key")
    page.locator("#add-endpoint button.primary").tap()
    expect(page.locator("#endpoints .endpoint")).to_have_count(1)
    expect(page.locator("#endpoints")).not_to_contain_text("demo-key")
    no_sideways_scroll(page, shots, "notifications")
    assert staff.errors == [], staff.errors
    assert live.errors == []


def test_manager_sees_only_their_own_scorecard(live_server, demo, phone, shots):
    live = live_server
    manager = sign_in(live, phone, "manager1", "/inbox")
    page = manager.page
    page.locator("#nav-scorecard").tap()
    expect(page).to_have_url(re.compile(rf"/ratings/companies/{demo[GOOD]}"))
    expect(page.locator("h1")).to_contain_text(GOOD)
    expect(page.locator("#explain")).to_be_visible()
    no_sideways_scroll(page, shots, "scorecard-manager")
    resp = page.goto(f"/ratings/companies/{demo[POOR]}")
    assert resp.status == 403
    assert live.errors == []
