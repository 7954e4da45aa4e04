"""The whole field loop on real phones (headless Chromium, 390x844, touch, zh-CN).

A volunteer signs in from an invite link, scans the gate QR, reports flying-wire
charging with a photo; the property manager signs in with a password,
acknowledges and fixes it with an after-photo; the volunteer, back at the gate,
checks the fix on the spot and closes it, or reopens it.

Selectors use ids, names and values, never the visible wording, which depends on
the translation catalogue. Expected messages are produced by the app's own
gettext, so they match whether or not the zh catalogue is compiled.
"""
from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from flask_babel import gettext
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from patrol import labels
from patrol.cli import invite_url
from patrol.extensions import db
from patrol.models import Compound, Device, Invite, Item, Presence, User
from patrol.services import accounts
from patrol.services.qr import compound_url
from tests.browser.phone import assert_images_loaded
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

REPORT_NOTE = "3栋旁车棚有电线从2楼窗口垂下给电动车充电"
FIX_NOTE = "已拆除飞线，劝导住户到充电桩充电"
REOPEN_NOTE = "电线还在，只是换了个窗口"


# --- helpers -------------------------------------------------------------------

def jpeg(name: str, color, label: str) -> dict:
    """A phone-camera-like JPEG, made here; no image files in the repository."""
    im = Image.new("RGB", (1280, 960), color)
    draw = ImageDraw.Draw(im)
    for i in range(0, 1280, 80):
        draw.line([(i, 0), (1280 - i, 960)], fill=(30, 30, 30), width=5)
    draw.rectangle([40, 40, 600, 140], fill=(255, 255, 255))
    draw.text((60, 70), label, fill=(0, 0, 0))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return {"name": name, "mimeType": "image/jpeg", "buffer": out.getvalue()}


def tr(live, make) -> str:
    """A message as the server renders it for a zh-CN phone (catalogue or msgid)."""
    with live.app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        return str(make())


def url_re(live, path_pattern: str):
    return re.compile(re.escape(live.url) + path_pattern + r"(\?.*)?$")


def compound_token(live, compound_id) -> str:
    with live.db():
        return db.session.get(Compound, compound_id).qr_token


def load_item(live, item_id) -> dict:
    """A snapshot of an item and its history, read straight from the database."""
    with live.db():
        item = db.session.get(Item, item_id)
        return {
            "status": item.status, "version": item.version, "category": item.category,
            "building_id": item.building_id, "reporter_id": item.reporter_id,
            "note": item.note, "deadline": item.deadline, "closed_at": item.closed_at,
            "fixed_at": item.fixed_at, "acknowledged_at": item.acknowledged_at,
            "events": [
                {"action": ev.action, "from": ev.from_status, "to": ev.to_status,
                 "actor_id": ev.actor_id, "note": ev.note, "reason": ev.reason,
                 "data": dict(ev.data or {}), "presence_id": ev.presence_id,
                 "photos": [(p.kind, p.uploader_id) for p in ev.photos]}
                for ev in item.events],
            "photos": [(p.kind, p.event_id is not None) for p in item.photos],
        }


def shoot(page, shots, name):
    """Full-page screenshot at phone size; the page must not scroll sideways."""
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: page is {overflow}px wider than the phone"


# --- the steps, as a person does them ----------------------------------------------

def volunteer_signs_in(live, phone_factory, user_id, name="volunteer"):
    with live.db():
        user = db.session.get(User, user_id)
        token = accounts.create_invite(user, None, live.app.config["INVITE_LIFETIME"])
        db.session.commit()
        link = invite_url(token)  # the link community staff send by WeChat
    assert link.startswith(live.url + "/invite/")
    phone = phone_factory(name)
    page = phone.page
    page.goto(link)
    expect(page.locator("#redeem")).to_be_visible()
    page.locator("#redeem").tap()
    expect(page).to_have_url(url_re(live, "/compounds"))
    expect(page.locator(".flash.ok")).to_be_visible()
    # Secure, HttpOnly cookies kept by Chromium on http://127.0.0.1.
    cookies = {c["name"]: c for c in phone.context.cookies()}
    assert cookies["session"]["secure"] and cookies["session"]["httpOnly"]
    assert cookies["remember_token"]["secure"]
    with live.db():
        assert db.session.scalar(db.select(Invite.used_at).where(Invite.user_id == user_id))
        assert db.session.scalar(db.select(db.func.count()).select_from(Device)
                                 .where(Device.user_id == user_id)) == 1
    return phone


def manager_signs_in(live, phone_factory, username):
    phone = phone_factory("manager", geolocation=False)
    page = phone.page
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).to_have_url(url_re(live, "/inbox"))
    return phone


def scan_gate(live, phone, compound_id):
    """Open the gate QR's URL, as the phone camera does; the page then adds the location."""
    page = phone.page
    with page.expect_response(lambda r: r.url.endswith("/location")
                              and r.request.method == "POST") as located:
        page.goto(compound_url(live.app.config["BASE_URL"], compound_token(live, compound_id)))
    expect(page).to_have_url(url_re(live, f"/compounds/{compound_id}"))
    assert "scanned=" in page.url
    assert located.value.status == 200  # CSRF token from the page accepted by fetch()
    expect(page.locator("#presence-ok")).to_be_visible()
    expect(page.locator("#scan-first")).to_have_count(0)


def report_flying_wire(live, phone, w, shots=None) -> int:
    page = phone.page
    with live.db():
        building = db.session.get(Compound, w.a1).buildings[1]
        building_id, building_name = building.id, building.name
    with page.expect_navigation():   # to "load": the form's scripts have run
        page.locator("#report-btn").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}/report"))

    choice = page.locator("label.choice:has(input[name=category][value=flying_wire])")
    expect(choice).to_contain_text("飞线充电")  # from forms/hazard.toml, zh
    choice.tap()
    expect(page.locator("input[name=category][value=flying_wire]")).to_be_checked()
    page.locator("select[name=building]").select_option(str(building_id))
    page.locator("input[name=unit]").fill("2单元")
    page.locator("input[name=floor]").fill("2楼")
    page.locator("textarea[name=note]").fill(REPORT_NOTE)
    page.locator("#f-photos input[name=photos]").set_input_files(
        jpeg("IMG_0001.jpg", (200, 60, 40), "before"))
    expect(page.locator("#f-photos .previews img")).to_have_count(1)
    # The page adds the phone's location to the report (geolocation granted).
    expect(page.locator("#report-form input[name=lat]")).not_to_have_value("")
    if shots:
        shoot(page, shots, "report")
    page.locator("#report-form button[type=submit]").tap()

    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    with live.db():
        item = db.session.execute(db.select(Item).order_by(Item.id.desc())).scalars().first()
        item_id = item.id
        photo = item.photos[0]
        assert (photo.lat, photo.lon) == (pytest.approx(27.857), pytest.approx(112.951))
    expect(page.locator(".flash.ok")).to_contain_text(str(item_id))
    row = page.locator(f"li.item:has(a[href='/items/{item_id}'])")
    expect(row).to_contain_text("飞线充电")
    expect(row).to_contain_text(building_name)
    expect(row.locator("img.thumb")).to_have_count(1)
    if shots:
        shoot(page, shots, "compound-after-report")

    state = load_item(live, item_id)
    assert state["status"] == "reported"
    assert state["category"] == "flying_wire"
    assert state["building_id"] == building_id
    assert state["reporter_id"] == w.vol_a
    assert state["note"] == REPORT_NOTE
    assert [e["action"] for e in state["events"]] == ["report"]
    assert state["events"][0]["photos"] == [("before", w.vol_a)]
    return item_id


def manager_opens_item(live, phone, item_id, tab="new"):
    page = phone.page
    page.goto(f"/inbox?tab={tab}")
    expect(page.locator(f"#tab-{tab} b")).to_have_text("1")
    page.locator(f"a[href='/items/{item_id}']").tap()
    expect(page).to_have_url(url_re(live, f"/items/{item_id}"))


def manager_acknowledges(live, phone, item_id):
    page = phone.page
    expect(page.locator("#status")).to_have_class(re.compile(r"\bst-reported\b"))
    page.locator("details#act-acknowledge summary").tap()
    form = page.locator("details#act-acknowledge form")
    expect(form).to_be_visible()
    expect(form.locator("input[name=deadline]")).not_to_have_value("")  # the default deadline
    form.locator("button.btn").tap()
    expect(page).to_have_url(url_re(live, f"/items/{item_id}"))
    expect(page.locator("#status")).to_have_class(re.compile(r"\bst-acknowledged\b"))
    state = load_item(live, item_id)
    assert state["status"] == "acknowledged" and state["acknowledged_at"]
    assert state["events"][-1]["data"].get("deadline")


def manager_fixes(live, phone, item_id, w, from_status, shots=None):
    page = phone.page
    expect(page.locator("#status")).to_have_class(re.compile(rf"\bst-{from_status}\b"))
    page.locator("details#act-fix summary").tap()
    form = page.locator("details#act-fix form")
    expect(form).to_be_visible()
    form.locator("textarea[name=note]").fill(FIX_NOTE)
    form.locator("input[name=photos]").set_input_files(jpeg("after.jpg", (40, 160, 60), "after"))
    expect(form.locator(".previews img")).to_have_count(1)
    if shots:
        shoot(page, shots, "item-fix-form")
    form.locator("button.btn").tap()
    expect(page).to_have_url(url_re(live, f"/items/{item_id}"))
    expect(page.locator("#status")).to_have_class(re.compile(r"\bst-fixed\b"))
    expect(page.locator("#status")).to_have_text(tr(live, lambda: labels.STATUS["fixed"]))
    state = load_item(live, item_id)
    assert state["status"] == "fixed" and state["fixed_at"]
    fix = state["events"][-1]
    assert (fix["action"], fix["from"], fix["note"]) == ("fix", from_status, FIX_NOTE)
    assert fix["photos"] == [("after", w.mgr_x)]


def reported_and_fixed(live, phone, w, shots=None):
    """Volunteer signs in, scans, reports; the manager acknowledges and fixes."""
    vol = volunteer_signs_in(live, phone, w.vol_a)
    scan_gate(live, vol, w.a1)
    if shots:
        shoot(vol.page, shots, "compound")
    item_id = report_flying_wire(live, vol, w, shots)
    mgr = manager_signs_in(live, phone, "mgr_x")
    manager_opens_item(live, mgr, item_id)
    manager_acknowledges(live, mgr, item_id)
    manager_fixes(live, mgr, item_id, w, "acknowledged", shots)
    return vol, mgr, item_id


def open_item_from_compound(live, phone, compound_id, item_id):
    page = phone.page
    if not re.search(rf"/compounds/{compound_id}(\?|$)", page.url):
        page.goto(f"/compounds/{compound_id}")
    row = page.locator(f"li.item.st-fixed:has(a[href='/items/{item_id}'])")
    expect(row).to_be_visible()  # listed under "waiting for an on-the-spot check"
    row.locator("a").tap()
    expect(page).to_have_url(url_re(live, f"/items/{item_id}"))


def assert_no_browser_errors(*phones):
    for p in phones:
        assert p.errors == [], f"{p.name}: {p.errors}"


# --- the tests -------------------------------------------------------------------

def test_field_loop_report_fix_verify(live_server, world, phone, shots):
    live, w = live_server, world
    vol, mgr, item_id = reported_and_fixed(live, phone, w, shots)

    # Two and a half hours later the volunteer is back, but has not scanned the gate yet.
    with live.db():
        for presence in db.session.execute(
                db.select(Presence).where(Presence.user_id == w.vol_a)).scalars():
            presence.at -= timedelta(hours=2, minutes=30)
        db.session.commit()
    page = vol.page
    page.goto(f"/compounds/{w.a1}")
    expect(page.locator("#scan-first")).to_be_visible()
    expect(page.locator("#presence-ok")).to_have_count(0)
    open_item_from_compound(live, vol, w.a1, item_id)
    expect(page.locator("#scan-first")).to_be_visible()
    expect(page.locator("#scan-first")).to_contain_text("120")  # the window, in minutes

    # Trying anyway is refused, clearly, and changes nothing.
    before = load_item(live, item_id)
    page.locator("details#act-verify summary").tap()
    form = page.locator("details#act-verify form")
    form.locator("input[name=photos]").set_input_files(jpeg("check.jpg", (90, 90, 200), "x"))
    expect(form.locator("button.btn")).to_be_disabled()   # the page itself says: scan first
    expect(form.locator(".needs-scan")).to_be_visible()
    # A kept copy of the page (no signal) cannot know about scans, so the server decides;
    # sent anyway, as such a copy would:
    form.evaluate("f => f.requestSubmit()")
    # Refused by the server; the page says why in the form, which stays as it was.
    error = form.locator("p.error[role=alert]")
    expect(error).to_be_visible()
    expect(error).to_have_text(tr(live, lambda: gettext(
        "Still needed: %(what)s.", what=str(labels.EVIDENCE["presence"]))))
    expect(page.locator("#status")).to_have_class(re.compile(r"\bst-fixed\b"))
    expect(page.locator("#scan-first")).to_be_visible()
    after = load_item(live, item_id)
    assert after == before  # same status, version, history
    assert "verify" not in [e["action"] for e in after["events"]]

    # CSRF is on: the same signed-in phone posting without the form's token is refused.
    forged = vol.context.request.post(f"/items/{item_id}/act", multipart={
        "action": "verify", "photos": jpeg("forged.jpg", (0, 0, 0), "x")})
    assert forged.status == 400
    assert load_item(live, item_id) == before

    # At the gate: scan, open the item from the compound list, check and close it.
    scan_gate(live, vol, w.a1)
    open_item_from_compound(live, vol, w.a1, item_id)
    expect(page.locator("#scan-first")).to_have_count(0)
    page.locator("details#act-verify summary").tap()
    form = page.locator("details#act-verify form")
    expect(form).to_be_visible()
    form.locator("input[name=photos]").set_input_files(jpeg("verify.jpg", (40, 120, 200), "ok"))
    expect(form.locator(".previews img")).to_have_count(1)
    # Five big buttons in one row, each saying what it means.
    boxes = [form.locator(f"label.choice:has(input[name=rating][value='{n}'])").bounding_box()
             for n in range(1, 6)]
    assert len({round(b["y"]) for b in boxes}) == 1, boxes
    assert all(b["height"] >= 44 and b["width"] >= 44 for b in boxes), boxes
    expect(form.locator("label.choice:has(input[name=rating][value='5'])")).to_contain_text("很满意")
    form.locator("label.choice:has(input[name=rating][value='5'])").tap()
    expect(form.locator("input[name=rating][value='5']")).to_be_checked()
    form.locator("button.btn").tap()

    # Back on the compound page: saved, and nothing open any more.
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator(".flash.ok")).to_be_visible()
    expect(page.locator(f"a[href='/items/{item_id}']")).to_have_count(0)
    expect(page.locator("ul.list li.empty")).to_be_visible()

    # The item page: closed, with the whole history and its photos.
    page.goto(f"/items/{item_id}")
    status = page.locator("#status")
    expect(status).to_have_class(re.compile(r"\bst-verified\b"))
    expect(status).to_have_text(tr(live, lambda: labels.STATUS["verified"]))
    expect(page.locator("section.actions")).to_have_count(0)  # nothing left to do
    expect(page.locator("dl.facts")).to_contain_text(REPORT_NOTE)
    history = page.locator("#history > li")
    expect(history).to_have_count(4)
    for i, action in enumerate(["report", "acknowledge", "fix", "verify"]):
        entry = history.nth(i)
        expect(entry).to_have_class(f"ev-{action}")
        expect(entry.locator("strong")).to_have_text(tr(live, lambda a=action: labels.ACTION[a]))
    expect(history.nth(0)).to_contain_text(REPORT_NOTE)
    expect(history.nth(2)).to_contain_text(FIX_NOTE)
    expect(history.nth(3)).to_contain_text("★★★★★")
    expect(history.nth(3).locator(".badge.green")).to_have_count(1)  # on the spot
    for i in (0, 2, 3):  # report, fix and verify carry photos; acknowledge does not
        expect(history.nth(i).locator(".photos img")).to_have_count(1)
    expect(history.nth(1).locator(".photos img")).to_have_count(0)
    assert_images_loaded(page.locator("#history .photos img"))
    shoot(page, shots, "item-verified")

    # The manager sees the same closed item.
    mgr.page.goto(f"/items/{item_id}")
    expect(mgr.page.locator("#status")).to_have_class(re.compile(r"\bst-verified\b"))
    expect(mgr.page.locator("#history > li")).to_have_count(4)

    state = load_item(live, item_id)
    assert state["status"] == "verified" and state["closed_at"]
    assert [(e["action"], e["from"], e["to"]) for e in state["events"]] == [
        ("report", None, "reported"), ("acknowledge", "reported", "acknowledged"),
        ("fix", "acknowledged", "fixed"), ("verify", "fixed", "verified")]
    verify = state["events"][-1]
    assert verify["actor_id"] == w.vol_a and verify["presence_id"]
    # Every form goes through the phone's outbox, which stamps the phone's time.
    assert set(verify["data"]) == {"rating", "device_at"} and verify["data"]["rating"] == 5
    assert verify["photos"] == [("after", w.vol_a)]
    assert sorted(state["photos"]) == [("after", True), ("after", True), ("before", True)]
    with live.db():
        presence = db.session.get(Presence, verify["presence_id"])
        assert presence.lat == pytest.approx(27.857)  # the fresh scan, with its location
    assert_no_browser_errors(vol, mgr)
    assert live.errors == []


def test_check_fails_reopen_then_fixed_again(live_server, world, phone):
    live, w = live_server, world
    vol, mgr, item_id = reported_and_fixed(live, phone, w)

    # Another volunteer of the same team, who has never scanned this compound, cannot reopen.
    with live.db():
        other = User(username="vol_a2", display_name="赵师傅", role="volunteer", title="志愿者",
                     community_id=db.session.get(User, w.vol_a).community_id,
                     team_id=db.session.get(User, w.vol_a).team_id)
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    vol2 = volunteer_signs_in(live, phone, other_id, name="volunteer2")
    page2 = vol2.page
    page2.goto(f"/items/{item_id}")
    expect(page2.locator("#scan-first")).to_be_visible()
    before = load_item(live, item_id)
    page2.locator("details#act-reopen summary").tap()
    form = page2.locator("details#act-reopen form")
    form.locator("label.choice:has(input[name=reason][value=not_fixed])").tap()
    form.locator("input[name=photos]").set_input_files(jpeg("nope.jpg", (10, 10, 10), "x"))
    expect(form.locator("button.btn")).to_be_disabled()
    form.evaluate("f => f.requestSubmit()")  # as a kept copy of the page would send it
    expect(form.locator("p.error[role=alert]")).to_have_text(tr(live, lambda: gettext(
        "Still needed: %(what)s.", what=str(labels.EVIDENCE["presence"]))))
    # The form stays open with the choice and the photo kept for a retry; the refused
    # copy is not left in the outbox.
    expect(page2.locator("details#act-reopen")).to_have_attribute("open", "")
    expect(page2.locator("details#act-reopen input[name=reason][value=not_fixed]")).to_be_checked()
    expect(page2.locator("details#act-reopen .photo img")).to_have_count(1)
    expect(page2.locator("details#act-reopen input[name=kept_photos]")).to_have_count(1)
    expect(page2.locator("#queue")).to_be_hidden()
    assert load_item(live, item_id) == before

    # The first volunteer scans the gate again and finds it not fixed.
    scan_gate(live, vol, w.a1)
    open_item_from_compound(live, vol, w.a1, item_id)
    page = vol.page
    page.locator("details#act-reopen summary").tap()
    form = page.locator("details#act-reopen form")
    expect(form).to_be_visible()
    form.locator("label.choice:has(input[name=reason][value=not_fixed])").tap()
    expect(form.locator("input[name=reason][value=not_fixed]")).to_be_checked()
    form.locator("textarea[name=note]").fill(REOPEN_NOTE)
    form.locator("input[name=photos]").set_input_files(jpeg("still.jpg", (200, 200, 40), "no"))
    expect(form.locator(".previews img")).to_have_count(1)
    form.locator("button.btn").tap()

    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator(".flash.ok")).to_be_visible()
    row = page.locator(f"li.item.st-reopened:has(a[href='/items/{item_id}'])")
    expect(row).to_be_visible()  # still open, back with the company
    row.locator("a").tap()
    expect(page.locator("#status")).to_have_class(re.compile(r"\bst-reopened\b"))
    expect(page.locator("#status")).to_have_text(tr(live, lambda: labels.STATUS["reopened"]))
    reopen = page.locator("#history > li").last
    expect(reopen).to_have_class("ev-reopen")
    expect(reopen).to_contain_text(tr(live, lambda: labels.REASON["not_fixed"]))
    expect(reopen).to_contain_text(REOPEN_NOTE)
    assert_images_loaded(reopen.locator(".photos img"))
    expect(page.locator("details#act-verify")).to_have_count(0)  # nothing to check now

    state = load_item(live, item_id)
    assert state["status"] == "reopened" and state["closed_at"] is None
    ev = state["events"][-1]
    assert (ev["action"], ev["from"], ev["to"], ev["reason"], ev["note"]) == (
        "reopen", "fixed", "reopened", "not_fixed", REOPEN_NOTE)
    assert ev["actor_id"] == w.vol_a and ev["presence_id"]
    assert ev["photos"] == [("check", w.vol_a)]
    assert state["deadline"] > state["fixed_at"]  # a new deadline for the company

    # The manager finds it under "reopened" and fixes it again.
    manager_opens_item(live, mgr, item_id, tab="reopened")
    manager_fixes(live, mgr, item_id, w, "reopened")
    expect(mgr.page.locator("#history > li")).to_have_count(5)
    state = load_item(live, item_id)
    assert [e["action"] for e in state["events"]] == [
        "report", "acknowledge", "fix", "reopen", "fix"]
    assert state["status"] == "fixed"
    assert_no_browser_errors(vol, vol2, mgr)
    assert live.errors == []


def test_a_phone_asks_before_signing_out_and_then_stays_out(live_server, world, phone):
    """An accidental tap must not cost a volunteer their sign-in: the phone asks first,
    because coming back needs a new link from the community."""
    live = live_server
    vol = volunteer_signs_in(live, phone, world.vol_a)
    page = vol.page
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.locator("footer form.signout button").tap()
    deadline = time.time() + 10
    while not asked and time.time() < deadline:
        page.wait_for_timeout(100)
    assert len(asked) == 1 and "新的登录链接" in asked[0], asked
    expect(page).to_have_url(url_re(live, "/compounds"))
    assert page.goto(f"/compounds/{world.a1}").status == 200  # still signed in
    page.locator("footer form.signout button").tap()
    expect(page).to_have_url(url_re(live, "/login"))
    assert len(asked) == 2
    page.goto(f"/compounds/{world.a1}")
    expect(page).to_have_url(re.compile(r".*/login\?next=.*"))
    with live.db():
        assert db.session.execute(db.select(Device)).scalar_one().revoked_at is not None


TOO_SMALL = """() => [...document.querySelectorAll(
    'a, button, summary, label.choice, label.check, label.btn, select, input:not([type=hidden])')]
  .filter(e => !e.closest('label') || e.tagName === 'LABEL')   // an input's target is its label
  .filter(e => !(e.tagName === 'INPUT' && ['radio', 'checkbox', 'file'].includes(e.type)))
  .filter(e => e.getClientRects().length)                       // shown
  .map(e => { const r = e.getBoundingClientRect();
              return [e.tagName, (e.textContent || e.name || '').trim().slice(0, 20),
                      Math.round(r.width), Math.round(r.height)]; })
  .filter(([, , w, h]) => w < 44 || h < 44)"""


def test_a_volunteers_pages_have_thumb_sized_targets(live_server, world, phone):
    """Older hands on a phone: everything a volunteer taps is at least 44×44 CSS px."""
    from tests.browser.test_offline import fixed_item
    live, w = live_server, world
    item_id = fixed_item(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    for path in ["/compounds", f"/compounds/{w.a1}", f"/compounds/{w.a1}/report",
                 f"/items/{item_id}"]:
        page.goto(path)
        if "/items/" in path:  # open the check form too
            page.locator("details.action summary").first.tap()
        assert page.evaluate(TOO_SMALL) == [], path
