"""A new compound, from nothing to its first report, on phones (headless Chromium,
390x844, touch, zh-CN): community staff add a property company and a compound with its
buildings under 区域管理, print its gate poster (PDF) and the team's sign-in cards (PDF);
a volunteer signs in with the card's QR code, scans the poster's QR code and reports a
hazard with a photo. Both QR codes are read back from the rasterised PDFs (pdftoppm,
zxing-cpp), as a phone camera would read the paper.
"""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from tests.browser.phone import no_sideways_scroll

from patrol.extensions import db
from patrol.models import AuditEntry, Company, Compound, Item
from tests.factories import PASSWORD
from tests.pdftools import qr_texts, require_poppler, write_pdf
from tests.test_jobs import wait_for, worker

pytestmark = pytest.mark.browser


def url_re(live, path):
    return re.compile(re.escape(live.url + path) + r"(\?.*)?$")


def jpeg(name: str) -> dict:
    im = Image.new("RGB", (1280, 960), (200, 60, 40))
    draw = ImageDraw.Draw(im)
    for i in range(0, 1280, 80):
        draw.line([(i, 0), (1280 - i, 960)], fill=(30, 30, 30), width=5)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return {"name": name, "mimeType": "image/jpeg", "buffer": out.getvalue()}



def test_staff_set_up_a_compound_and_a_volunteer_reports_there(live_server, world, phone,
                                                                 shots, tmp_path):
    require_poppler()
    live = live_server

    # --- community staff, on a phone ------------------------------------------------------
    staff = phone("staff_a", geolocation=False)
    page = staff.page
    page.goto("/login")
    page.locator("input[name=username]").fill("staff_a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).not_to_have_url(re.compile(r"/login"))

    page.locator("#nav-places").tap()
    expect(page).to_have_url(url_re(live, "/places/"))
    no_sideways_scroll(page, shots, "places")
    page.locator("#new-company").tap()
    page.locator("#company-form input[name=name]").fill("新安物业服务有限公司")
    page.locator("#company-form input[name=phone]").fill("0731-5555-3003")
    page.locator("#company-form input[name=contact]").fill("李经理")
    page.locator("#company-form input[name=credit_code]").fill("91350100M000100Y43")
    page.locator("#save-company").tap()
    expect(page).to_have_url(url_re(live, "/places/"))
    with live.db():
        company_id = db.session.execute(db.select(Company.id).where(
            Company.name == "新安物业服务有限公司")).scalar_one()

    page.locator(f"#new-compound-{world.ca}").tap()
    form = page.locator("#compound-form")
    form.locator("input[name=name]").fill("新安小区")
    form.locator("input[name=address]").fill("岳塘区新安路1号")
    form.locator("input[name=lat]").fill("27.857")
    form.locator("input[name=lon]").fill("112.951")
    form.locator("input[name=radius_m]").fill("150")
    form.locator("select[name=company_id]").select_option(str(company_id))
    form.locator("input[name=buildings]").fill("1-6栋")
    no_sideways_scroll(page, shots, "new-compound")
    page.locator("#save-compound").tap()
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/places/compounds/\d+$"))
    compound_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator(".flash.ok")).to_contain_text("新安小区")
    with live.db():
        compound = db.session.get(Compound, compound_id)
        assert (compound.community_id, compound.company_id, compound.radius_m) == \
            (world.ca, company_id, 150)
        assert [b.name for b in compound.buildings] == [f"{n}栋" for n in range(1, 7)]
        building_id = compound.buildings[2].id

    # the gate poster, as the 海报 button downloads it
    poster_href = page.locator("#poster").get_attribute("href")
    poster = page.request.get(live.url + poster_href)
    assert poster.ok and poster.headers["content-type"] == "application/pdf"
    [[gate_url]] = qr_texts(write_pdf(poster.body(), tmp_path, "poster"))
    assert re.fullmatch(re.escape(live.url) + r"/c/[\w-]+", gate_url)

    # the team's sign-in cards, as 区域设置's button posts for them: a job, run by the worker
    page.goto("/district/")
    cards_form = page.locator(f"form:has(#cards-{world.team})")
    started = page.request.post(live.url + cards_form.get_attribute("action"), form={
        "csrf_token": cards_form.locator("input[name=csrf_token]").get_attribute("value")},
        max_redirects=0)
    assert started.status == 302
    job_url = live.url + started.headers["location"]
    with worker(live.app):
        status = wait_for(lambda: (s := page.request.get(job_url + ".json").json())["state"]
                          == "done" and s)
    cards = page.request.get(live.url + status["result"])
    assert cards.ok and cards.headers["content-type"] == "application/pdf"
    links = [t for texts in qr_texts(write_pdf(cards.body(), tmp_path, "cards")) for t in texts]
    assert len(links) == 1 and links[0].startswith(live.url + "/invite/")   # 队员: vol_a
    assert staff.errors == []

    # --- the volunteer, on another phone ----------------------------------------------------
    vol = phone("vol_a")
    vpage = vol.page
    vpage.goto(links[0])
    vpage.locator("#redeem").tap()
    expect(vpage).to_have_url(url_re(live, "/compounds"))
    expect(vpage.locator("body")).to_contain_text("新安小区")

    with vpage.expect_response(lambda r: r.url.endswith("/location")
                               and r.request.method == "POST"):
        vpage.goto(gate_url)
    expect(vpage).to_have_url(url_re(live, f"/compounds/{compound_id}"))
    expect(vpage.locator("#presence-ok")).to_be_visible()

    with vpage.expect_navigation():   # to "load": the form's scripts have run
        vpage.locator("#report-btn").tap()
    expect(vpage).to_have_url(url_re(live, f"/compounds/{compound_id}/report"))
    vpage.locator("label.choice:has(input[name=category][value=flying_wire])").tap()
    vpage.locator("select[name=building]").select_option(str(building_id))
    vpage.locator("textarea[name=note]").fill("3栋楼道飞线充电")
    vpage.locator("#f-photos input[name=photos]").set_input_files(jpeg("IMG_0002.jpg"))
    expect(vpage.locator("#f-photos .previews img")).to_have_count(1)
    no_sideways_scroll(vpage, shots, "new-compound-report")
    vpage.locator("#report-form button[type=submit]").tap()
    expect(vpage).to_have_url(url_re(live, f"/compounds/{compound_id}"))
    expect(vpage.locator(".flash.ok")).to_be_visible()

    with live.db():
        item = db.session.execute(db.select(Item).where(Item.compound_id == compound_id)
                                  ).scalar_one()
        assert (item.reporter_id, item.company_id, item.building_id, item.category) == \
            (world.vol_a, company_id, building_id, "flying_wire")
        assert len(item.photos) == 1
        actions = set(db.session.scalars(db.select(AuditEntry.action)))
        assert {"company.create", "compound.create", "building.add", "invite.create"} <= actions
    assert vol.errors == []
    assert live.errors == []


def test_the_audit_log_fits_a_phone(live_server, world, phone, shots):
    from patrol.clock import utcnow
    from patrol.models import User
    from patrol.services import audit
    live = live_server
    with live.db():
        admin = db.session.get(User, world.admin)
        compound = db.session.get(Compound, world.a1)
        for i in range(60):
            audit.record(admin, "compound.update", compound, {"address": "路" * 80 + str(i)},
                         {"address": "x" * 150 + str(i)}, utcnow())
        db.session.commit()
    admin_phone = phone("admin", geolocation=False)
    page = admin_phone.page
    page.goto("/login")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.locator("#nav-audit").tap()
    expect(page).to_have_url(url_re(live, "/audit/"))
    expect(page.locator("#audit li")).to_have_count(50)
    expect(page.locator("#audit li").first).to_contain_text("小区信息修改")
    no_sideways_scroll(page, shots, "audit")
    assert admin_phone.errors == [] and live.errors == []
