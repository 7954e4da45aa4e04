"""是同一个问题吗？ The report form suggests the compound's open items of the chosen category
(and building); "同一个" adds the photo and note to that item as a supporting report
instead of a new item, online and from the kept page without signal (sent exactly once).
And 待回头看 on a team volunteer's home, online and kept for offline use.

Real headless Chromium on a phone viewport (tests/browser/conftest.py)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from patrol.extensions import db
from patrol.models import Building, Compound, Item, ItemEvent, User, utcnow
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.browser.test_field_loop import url_re, volunteer_signs_in
from tests.browser.test_offline import KEPT, fixed_item, photo, queue_size, ready_for_offline
from tests.factories import jpeg_bytes

pytestmark = pytest.mark.browser


def open_wire(live, w):
    """A flying wire at 1栋 of A1, reported by community staff, with its photo."""
    with live.db():
        staff = db.session.get(User, w.staff_a)
        compound = db.session.get(Compound, w.a1)
        building = db.session.execute(db.select(Building).where(
            Building.compound_id == w.a1, Building.name == "1栋")).scalar_one()
        item = svc.report(form=hazard_form(), compound=compound, reporter=staff,
                          clean={"category": "flying_wire", "building": building.id,
                                 "extra": {}}, now=utcnow(),
                          photos=[save_upload(jpeg_bytes(), uploader=staff, kind="before")])
        db.session.commit()
        return item.id, building.id


def one_item_with_reports(live, item_id, reports):
    with live.db():
        items = db.session.execute(db.select(Item)).scalars().all()
        assert [i.id for i in items] == [item_id]
        item = items[0]
        assert item.support_count + 1 == reports
        supports = db.session.execute(db.select(ItemEvent).where(
            ItemEvent.item_id == item_id, ItemEvent.action == "support")).scalars().all()
        assert len(supports) == reports - 1
        return item, supports


def choose(page, category, building_id=None):
    page.locator(f"label.choice:has(input[value={category}])").tap()
    if building_id is not None:
        page.locator("select[name=building]").select_option(str(building_id))


def test_online_the_suggestion_adds_a_supporting_report(live_server, world, phone, tmp_path):
    live, w = live_server, world
    item_id, building_id = open_wire(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    page.goto(f"/compounds/{w.a1}/report")
    dups = page.locator("#dups")
    expect(dups).to_be_hidden()
    choose(page, "fire_exit")                      # another category: nothing to suggest
    expect(dups).to_be_hidden()
    choose(page, "flying_wire")
    expect(dups).to_be_visible()
    expect(dups).to_contain_text("是同一个问题吗？")
    expect(dups.locator(f"button[data-item='{item_id}']")).to_have_text("同一个")
    expect(dups.locator("img")).to_have_count(1)
    # Another building: not the same one.
    other = [b for b in page.locator("select[name=building] option").evaluate_all(
        "os => os.map(o => o.value)") if b and b != str(building_id)][0]
    page.locator("select[name=building]").select_option(other)
    expect(dups).to_be_hidden()
    page.locator("select[name=building]").select_option(str(building_id))
    expect(dups).to_be_visible()

    page.locator("#f-photos input[name=photos]").set_input_files(photo(tmp_path, 1))
    expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(1)
    page.locator("textarea[name=note]").fill("三楼又在飞线充电")
    dups.locator(f"button[data-item='{item_id}']").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator(".flash.ok")).to_contain_text("2 人反映")
    expect(page.locator(f"a[href='/items/{item_id}']")).to_contain_text("2 人反映")

    item, supports = one_item_with_reports(live, item_id, 2)
    with live.db():
        ev = db.session.get(ItemEvent, supports[0].id)
        assert ev.note == "三楼又在飞线充电" and ev.actor_id == w.vol_a
        assert [p.kind for p in ev.photos] == ["before"]
    # The flash and the list are the server's HTML; the queue is there once offline.js runs.
    page.wait_for_function("() => !!window.PatrolQueue")
    assert queue_size(page) == 0
    assert vol.errors == []


def test_offline_from_the_kept_page_sent_exactly_once(live_server, world, phone, tmp_path):
    live, w = live_server, world
    item_id, building_id = open_wire(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    page = vol.page
    vol.context.set_offline(True)
    page.goto(f"/compounds/{w.a1}")
    with page.expect_navigation():   # to "load": the form's scripts have run
        page.locator("#report-btn").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}/report"))
    choose(page, "flying_wire", building_id)
    dups = page.locator("#dups")
    expect(dups).to_be_visible()                   # from the page itself: no signal needed
    page.locator("#f-photos input[name=photos]").set_input_files(photo(tmp_path, 2))
    expect(page.locator("#f-photos .previews img")).to_have_count(1)
    page.locator("textarea[name=note]").fill("离线：同一处飞线")
    dups.locator(f"button[data-item='{item_id}']").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator("#queue li")).to_have_count(1)
    expect(page.locator("#queue li")).to_contain_text(f"{item_id}")
    assert queue_size(page) == 1
    one_item_with_reports(live, item_id, 1)        # nothing has reached the server

    vol.context.set_offline(False)                 # the `online` event sends it
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    assert queue_size(page) == 0
    # Another sync (the button, the 30 s timer, another tab) sends nothing more.
    page.evaluate("() => window.PatrolQueue.sync(true)")
    page.wait_for_timeout(500)
    item, supports = one_item_with_reports(live, item_id, 2)
    with live.db():
        ev = db.session.get(ItemEvent, supports[0].id)
        assert ev.note == "离线：同一处飞线" and len(ev.photos) == 1
    assert vol.errors == []


def test_lookback_shows_a_fix_to_the_team_volunteer_and_is_kept(live_server, world, phone):
    live, w = live_server, world
    item_id = fixed_item(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)  # lands on /compounds, the home
    page = vol.page
    row = page.locator(f"#lookback-list li[data-item='{item_id}']")
    expect(row).to_be_visible()
    expect(row.locator("img")).to_have_count(2)     # before and after
    expect(page.locator("#lookback-count")).to_have_text("1")
    expect(page.locator("#nav-lookback")).to_have_text("1")
    expect(page.locator("#lookback")).to_contain_text("扫小区门口的二维码")

    # Kept for offline use, photos too.
    ready_for_offline(live, vol, w.a1)
    thumbs = row.locator("img").evaluate_all("imgs => imgs.map(i => new URL(i.src).pathname)")
    deadline = 40
    while not page.evaluate(KEPT, ["/compounds", *thumbs]) and deadline:
        page.wait_for_timeout(250)
        deadline -= 1
    vol.context.set_offline(True)
    page.goto("/compounds")
    expect(row).to_be_visible()
    page.wait_for_function("""() => Array.from(document.querySelectorAll('#lookback-list img'))
        .every(i => i.complete && i.naturalWidth > 0)""")
    row.locator("a").first.tap()
    expect(page).to_have_url(url_re(live, f"/items/{item_id}"))
