"""The phone client when the network or the phone itself misbehaves (issue 9, sections 3-4).

A link that is up but passes nothing, two tabs sending at once, a record the phone can no
longer send, the location of a queued report, the service worker's refresh, and the
notices and buttons around them. Real headless Chromium on a phone viewport; the link is
stalled on the server (a WSGI wrapper holds the request unanswered), not with Playwright
routes, which the service worker's own requests can escape.
"""
from __future__ import annotations

import io
import re
import threading
import time

import pytest
from flask_babel import gettext
from playwright.sync_api import expect

from patrol import labels
from patrol.extensions import db
from patrol.models import Item
from tests.browser.test_field_loop import jpeg, tr, url_re, volunteer_signs_in
from tests.browser.test_offline import (counts, fixed_item, offline_at_compound, photo,
                                        queue_size, ready_for_offline, report_offline)
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

# Short timeouts for the tests (production: 20 s without progress, 2 min in all).
FAST = "window.PatrolTimeouts = { idle: 5000, total: 30000 };"
# Long enough that a held request is never given up during a test.
PATIENT = "window.PatrolTimeouts = { idle: 60000, total: 120000 };"
NO_WEB_LOCKS = ("Object.defineProperty(Navigator.prototype, 'locks', "
                "{ get: () => undefined, configurable: true });")
SENDS = r"/photos|/compounds/\d+/report"


class Stall:
    """A link that is up but passes no data, made on the server: while stalled, a POST to a
    matching path is received (body read, as the phone's bytes did leave it) and then held
    without an answer. When the link recovers, the held requests go on to the app, whose
    answers then reach a phone that has long given up on them."""

    def __init__(self, app, pattern):
        self.inner, self.pattern = app.wsgi_app, re.compile(pattern)
        self.open = threading.Event()
        self.open.set()
        self.held, self.reached = [], []
        self.lock = threading.Lock()
        app.wsgi_app = self

    def stall(self):
        self.open.clear()

    def recover(self):
        self.open.set()

    def count(self, which, path_pattern):
        with self.lock:
            return len([p for p in which if re.fullmatch(path_pattern, p)])

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        if environ["REQUEST_METHOD"] == "POST" and self.pattern.fullmatch(path):
            if not self.open.is_set():
                body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
                environ["wsgi.input"] = io.BytesIO(body)
                with self.lock:
                    self.held.append(path)
                self.open.wait(90)
            with self.lock:
                self.reached.append(path)
        return self.inner(environ, start_response)


@pytest.fixture
def stall(live_server):
    s = Stall(live_server.app, SENDS)
    yield s
    s.recover()  # never leave a server thread waiting


def wait_until(check, what, timeout=20):
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what
        time.sleep(0.1)


def one_item_with_its_photos(live, n_photos=1):
    with live.db():
        items = db.session.execute(db.select(Item)).scalars().all()
        assert len(items) == 1, [(i.id, i.note) for i in items]
        assert len(items[0].photos) == n_photos
        return items[0]


# --- 1. a stalled link: the outbox, within the timeout; then exactly once ------------------

@pytest.mark.parametrize("where", ["photo", "report"])
def test_an_upload_on_a_stalled_link_goes_to_the_outbox_and_arrives_once(
        live_server, world, phone, tmp_path, stall, where):
    """The connection is accepted and then nothing comes back. Within the timeout the
    report is in the outbox and the volunteer is back on the compound page, not looking at
    "Sending…"; when the link recovers it is sent, and there is exactly one item."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    vol.context.add_init_script(FAST)
    page = vol.page
    page.goto(f"/compounds/{w.a1}/report")
    page.locator("label.choice:has(input[value=fire_exit])").tap()
    page.locator("textarea[name=note]").fill("五楼楼道堆满纸箱")
    if where == "photo":
        stall.stall()  # the photo goes the moment it is taken: into the stalled link
    page.locator("#f-photos input[name=photos]").set_input_files(photo(tmp_path, 1))
    if where == "photo":
        wait_until(lambda: stall.held, "the photo never reached the server")
    else:
        expect(page.locator("#f-photos input[name=kept_photos]")).to_have_count(1)
        stall.stall()  # the photo arrived; the form itself meets the stalled link
    page.locator("#report-form button[type=submit]").tap()

    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"), timeout=25_000)
    expect(page.locator("#queue li")).to_have_count(1)
    assert queue_size(page) == 1
    assert counts(live) == []
    assert stall.held  # it really was held unanswered, not refused

    # The link recovers. The held requests go through (the phone has given up on their
    # answers); the outbox sends the report again with the same key.
    stall.recover()
    page.locator("#queue button.sync").dispatch_event("click")
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    assert queue_size(page) == 0
    item = one_item_with_its_photos(live)
    assert item.category == "fire_exit" and item.note == "五楼楼道堆满纸箱"
    if where == "photo":
        # The report itself went once, after the link came back.
        assert stall.count(stall.reached, r"/compounds/\d+/report") == 1
    assert live.errors == []


# --- 2. one sender per record ------------------------------------------------------------

@pytest.mark.parametrize("locks", ["web_locks", "no_web_locks"])
def test_two_tabs_never_send_the_same_record_at_once(live_server, world, phone, tmp_path,
                                                      stall, locks):
    """The signal comes back with two tabs open: both hear `online` and sync. One of them
    sends the record; the other leaves it alone (Web Lock, or without one a lease in
    IndexedDB) instead of uploading the same photo and report a second time."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    vol.context.add_init_script(PATIENT)
    if locks == "no_web_locks":
        vol.context.add_init_script(NO_WEB_LOCKS)
    ready_for_offline(live, vol, w.a1)
    vol.context.set_offline(True)
    tab1 = vol.page
    tab1.goto(f"/compounds/{w.a1}")
    assert tab1.evaluate("() => !!navigator.locks") == (locks == "web_locks")
    report_offline(live, tab1, w.a1, "flyers", "两个标签页", photo(tmp_path, 4))
    tab2 = vol.context.new_page()
    tab2.goto("/compounds")  # the kept copy
    tab2.wait_for_function("() => !!window.PatrolQueue")
    assert queue_size(tab2) == 1

    stall.stall()
    vol.context.set_offline(False)  # both tabs sync at once
    wait_until(lambda: stall.held, "no tab sent the record")
    # Each tab runs one more sync to its end. The tab that holds the record is stuck in
    # the stalled upload; the other one's sync ends, having left the record alone.
    for tab in (tab1, tab2):
        tab.evaluate("() => { window.__synced = false;"
                     " PatrolQueue.sync(true).then(() => { window.__synced = true; }); }")
    deadline = time.time() + 20
    while not any(tab.evaluate("() => window.__synced") for tab in (tab1, tab2)):
        assert time.time() < deadline, ("both tabs are sending the record", stall.held)
        time.sleep(0.1)
    assert stall.held == ["/photos"], stall.held  # one upload, from one tab

    stall.recover()
    wait_until(lambda: counts(live), "the record never arrived")
    wait_until(lambda: queue_size(tab1) == 0, "the record is still on the phone")
    one_item_with_its_photos(live)
    assert stall.count(stall.reached, "/photos") == 1
    assert stall.count(stall.reached, r"/compounds/\d+/report") == 1
    assert live.errors == []


# --- 3. the location of a queued report --------------------------------------------------

def test_a_queued_report_keeps_the_phones_location(live_server, world, phone, tmp_path):
    live, w = live_server, world
    vol, page = offline_at_compound(live, phone, w)
    with page.expect_navigation():   # to "load": the form's scripts have run
        page.locator("#report-btn").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}/report"))
    page.wait_for_function("() => document.querySelector('#report-form [name=lat]').value !== ''")
    page.locator("label.choice:has(input[value=lighting])").tap()
    page.locator("#f-photos input[name=photos]").set_input_files(photo(tmp_path, 2))
    expect(page.locator("#f-photos .photo.failed")).to_have_count(1)  # no signal
    page.locator("#report-form button[type=submit]").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    # The new page's bar is hidden until offline.js has run and read the queue: wait for
    # that, or the wait below for it to go would pass before anything was sent.
    expect(page.locator("#queue li")).to_have_count(1)
    assert queue_size(page) == 1
    vol.context.set_offline(False)
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    stored = one_item_with_its_photos(live).photos[0]
    assert stored.lat == pytest.approx(27.857) and stored.lon == pytest.approx(112.951)


# --- 4. a record that fails on the phone needs the user -----------------------------------

DAMAGE = """async () => {
    // What a bug in the app, or storage that lost a file, leaves: a photo that is no Blob.
    const db = await new Promise((ok, no) => {
        const r = indexedDB.open("patrol", 1);
        r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
    const tx = db.transaction("outbox", "readwrite"), store = tx.objectStore("outbox");
    const all = await new Promise((ok) => { const r = store.getAll(); r.onsuccess = () => ok(r.result); });
    for (const rec of all) { rec.photos.forEach((p) => { p.blob = "gone"; }); store.put(rec); }
    await new Promise((ok) => { tx.oncomplete = ok; });
    db.close();
    return all.length;
}"""
ATTEMPTS = "async () => (await PatrolQueue.all()).map((r) => [r.state, r.attempts, !!r.fault])"


def test_a_record_that_fails_on_the_phone_asks_the_user_instead_of_retrying_for_ever(
        live_server, world, phone, tmp_path):
    live, w = live_server, world
    vol, page = offline_at_compound(live, phone, w)
    report_offline(live, page, w.a1, "flyers", "坏掉的记录", photo(tmp_path, 3))
    assert page.evaluate(DAMAGE) == 1
    vol.context.set_offline(False)

    row = page.locator("#queue li")
    expect(row).to_have_class("q-rejected")  # shown as needing the user, list open
    expect(page.locator("#queue details")).to_have_attribute("open", "")
    expect(row).to_contain_text(tr(live, lambda: gettext(
        "Needs you: this phone could not send it because of an error in the app. "
        "Tap “Upload now” to try again, or discard it.")))
    expect(row.locator("button")).to_be_visible()  # discard
    assert page.evaluate(ATTEMPTS) == [["rejected", 1, True]]
    # Background syncs (page start, `online`, the timer) leave it alone…
    page.evaluate("() => PatrolQueue.sync(true)")
    page.reload()
    page.wait_for_function("() => !!window.PatrolQueue")
    page.evaluate("() => PatrolQueue.sync(true)")
    assert page.evaluate(ATTEMPTS) == [["rejected", 1, True]]
    # …the user's own tap tries once more (after an update that fixes the bug, it goes).
    page.locator("#queue button.sync").dispatch_event("click")
    wait_until(lambda: page.evaluate(ATTEMPTS) == [["rejected", 2, True]], "not tried again")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#queue li button").tap()
    expect(page.locator("#queue")).to_be_hidden()
    assert queue_size(page) == 0 and counts(live) == []
    assert all("cannot be sent" in e for e in vol.errors), vol.errors  # logged, nothing else


# --- 5. the service worker's refresh ------------------------------------------------------

class Meter:
    """How many of the worker's refresh requests are in flight at once (each answered a
    little slowly, so that they overlap if they are sent together)."""

    def __init__(self, app):
        self.inner = app.wsgi_app
        self.now = self.most = self.seen = 0
        self.lock = threading.Lock()
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_PATROL_PRECACHE") != "1":
            return self.inner(environ, start_response)
        with self.lock:
            self.now += 1
            self.seen += 1
            self.most = max(self.most, self.now)
        try:
            time.sleep(0.4)
            return self.inner(environ, start_response)
        finally:
            with self.lock:
                self.now -= 1


CACHED = """async (paths) => {
    const pages = await caches.open("pages-v1");
    const out = {};
    for (const p of paths) out[p] = !!(await pages.match(p));
    return out;
}"""


def test_the_refresh_asks_a_few_pages_at_a_time_and_drops_what_is_no_longer_listed(
        live_server, world, phone):
    live, w = live_server, world
    item_id = fixed_item(live, w)  # waiting for its check: on the list, with thumbnails
    meter = Meter(live.app)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    page = vol.page
    listed = ["/compounds", f"/compounds/{w.a1}", f"/compounds/{w.a1}/report",
              f"/compounds/{w.a2}", f"/compounds/{w.a2}/report", f"/items/{item_id}"]
    wait_until(lambda: all(page.evaluate(CACHED, listed).values()), "the list was not kept")
    assert meter.seen >= len(listed) and meter.most <= 3, (meter.seen, meter.most)

    # The item page as the volunteer sees it, thumbnails included, is kept.
    page.goto(f"/items/{item_id}")
    thumbs = page.evaluate("() => [...document.querySelectorAll('#compare img')]"
                           ".map((i) => new URL(i.src).pathname)")
    assert len(thumbs) == 2
    wait_until(lambda: all(page.evaluate(CACHED, thumbs).values()), "thumbnails not kept")
    # Left over from earlier: a page no longer on the list and a thumbnail no page shows.
    gone = ["/items/987654", "/photos/987654/thumb.jpg"]
    page.evaluate("""async (paths) => { const c = await caches.open("pages-v1");
        for (const p of paths) await c.put(p, new Response("old")); }""", gone)
    # The next refresh (as five minutes later) trims the cache to the list.
    page.evaluate("async () => (await caches.open('meta-v1')).delete('/__precached')")
    page.goto("/compounds")
    wait_until(lambda: not any(page.evaluate(CACHED, gone).values()),
               "pages no longer listed are still kept")
    assert all(page.evaluate(CACHED, listed + thumbs).values())


# --- 6. the item page says "scan first" once ----------------------------------------------

def test_the_scan_first_notice_is_said_once(live_server, world, phone):
    live, w = live_server, world
    item_id = fixed_item(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    page.goto(f"/items/{item_id}")
    notices = page.locator("p.presence:visible")
    expect(page.locator("#scan-first")).to_be_visible()
    expect(notices).to_have_count(1)

    # Open the check: the notice is now next to the disabled button, and only there.
    page.locator("details#act-verify summary").tap()
    form = page.locator("details#act-verify form")
    expect(form.locator("button.btn")).to_be_disabled()
    expect(form.locator(".needs-scan")).to_be_visible()
    expect(notices).to_have_count(1)

    # Sent anyway (as a kept copy of the page would) and refused: the form says why, and
    # the notice does not sit stacked under the error.
    form.locator("input[name=photos]").set_input_files(jpeg("check.jpg", (90, 90, 200), "x"))
    expect(form.locator("input[name=kept_photos]")).to_have_count(1)
    form.evaluate("f => f.requestSubmit()")
    error = form.locator("p.error[role=alert]")
    expect(error).to_have_text(tr(live, lambda: gettext(
        "Still needed: %(what)s.", what=str(labels.EVIDENCE["presence"]))))
    expect(form.locator("p.presence")).to_have_count(0)
    expect(notices).to_have_count(1)
    expect(page.locator("#scan-first")).to_be_visible()

    # The other check form, opened now, carries the notice; still once on the page.
    page.locator("details#act-reopen summary").tap()
    expect(page.locator("details#act-reopen form .needs-scan")).to_be_visible()
    expect(notices).to_have_count(1)
    page.locator("details#act-reopen summary").tap()  # closed again: back above the buttons
    expect(page.locator("#scan-first")).to_be_visible()
    expect(notices).to_have_count(1)
    assert vol.errors == []


# --- 7. the invite link page copies the link -----------------------------------------------

NO_CLIPBOARD = ("Object.defineProperty(Navigator.prototype, 'clipboard', "
                "{ get: () => undefined, configurable: true });")


@pytest.mark.parametrize("clipboard", ["clipboard", "no_clipboard"])
def test_the_invite_page_copies_the_link(live_server, world, phone, clipboard):
    live = live_server        # `world` only has to exist
    staff = phone("staff")
    if clipboard == "clipboard":
        staff.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    else:  # older WebViews: no Clipboard API; the link is selected for a long press
        staff.context.add_init_script(NO_CLIPBOARD)
    page = staff.page
    page.goto("/login")
    page.locator("input[name=username]").fill("staff_a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).to_have_url(url_re(live, "/overview"))
    page.goto("/admin/volunteers")
    page.locator("details.action summary").tap()
    page.locator("input[name=display_name]").fill("钱阿姨")
    page.locator("details.action form button.btn").tap()
    expect(page).to_have_url(url_re(live, r"/admin/volunteers/\d+/link"))
    link = page.locator("#invite-link").input_value()
    assert link.startswith(live.url + "/invite/")

    button = page.locator("#copy-link")
    expect(button).to_be_visible()
    expect(button).to_have_text("复制链接")
    box = button.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44, box
    button.tap()
    status = page.locator("#copy-status")
    expect(status).to_be_visible()
    if clipboard == "clipboard":
        expect(status).to_have_text("链接已复制。请粘贴到微信消息里发给志愿者。")
        assert page.evaluate("() => navigator.clipboard.readText()") == link
    else:
        expect(status).to_have_text(re.compile("链接已复制|链接已选中"))
    selected = page.evaluate("""() => { const f = document.getElementById('invite-link');
        return [document.activeElement === f, f.selectionStart, f.selectionEnd]; }""")
    assert selected == [True, 0, len(link)]
    assert staff.errors == []
