"""A whole walk without signal: scans and reports are kept on the phone and arrive exactly once."""
import re
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from patrol.extensions import db
from patrol.models import Compound, Item, Photo, Presence
from patrol.services.qr import compound_url
from tests.browser.test_field_loop import url_re, volunteer_signs_in

pytestmark = pytest.mark.browser
CATEGORIES = ["flying_wire", "fire_exit", "flyers"]


KEPT = """async (paths) => {
    const reg = navigator.serviceWorker && await navigator.serviceWorker.getRegistration();
    if (!reg || !reg.active || reg.active.state !== "activated") return false;
    for (const path of paths) {
        if (!(await caches.match(path))) return false;
    }
    // The "done" time is written after the gate-token map and every page (sw.js precache):
    // before it, a scan without signal may not find its compound yet.
    const meta = await caches.open("meta-v1");
    return !!(await meta.match("/__aliases")) && !!(await meta.match("/__precached"));
}"""


def ready_for_offline(live, vol, compound_id):
    """Open the app online once: the service worker installs and keeps the compound pages."""
    page = vol.page
    page.goto("/compounds")
    until_kept(page, ["/compounds", f"/compounds/{compound_id}",
                      f"/compounds/{compound_id}/report"])


def until_kept(page, paths, timeout=20):
    """Wait until the service worker keeps every one of `paths`; fail with its state."""
    deadline = time.time() + timeout
    # page.wait_for_function does not await an async predicate, so poll by hand.
    while not page.evaluate(KEPT, paths):
        assert time.time() < deadline, page.evaluate("""async () => [
            !!navigator.serviceWorker.controller, await caches.keys(),
            (await navigator.serviceWorker.getRegistrations())
                .map(r => [r.active && r.active.state, !!r.installing, !!r.waiting])]""")
        page.wait_for_timeout(200)


def offline_at_compound(live, phone, w):
    """A signed-in volunteer's phone, ready for offline use, on a compound page without signal."""
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    vol.context.set_offline(True)
    vol.page.goto(f"/compounds/{w.a1}")
    return vol, vol.page


def photo(tmp_path, i):
    path = tmp_path / f"offline-{i}.jpg"
    Image.new("RGB", (1200, 900), (40 * i, 120, 200 - 40 * i)).save(path, "JPEG", quality=90)
    return str(path)


def token_of(live, compound_id):
    with live.db():
        return db.session.get(Compound, compound_id).qr_token


def report_offline(live, page, compound_id, category, note, photo_path):
    with page.expect_navigation():   # to "load": the form's scripts have run
        page.locator("#report-btn").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{compound_id}/report"))
    page.locator(f"label.choice:has(input[value={category}])").tap()
    page.locator("textarea[name=note]").fill(note)
    page.locator("#f-photos input[name=photos]").set_input_files(photo_path)
    expect(page.locator("#f-photos .previews img")).to_have_count(1)
    page.locator("#report-form button[type=submit]").tap()
    expect(page).to_have_url(url_re(live, f"/compounds/{compound_id}"))
    # The URL changes when the compound page commits, before its deferred scripts run:
    # callers read the queue next (window.PatrolQueue), so wait for offline.js.
    page.wait_for_function("() => !!window.PatrolQueue")


def queue_size(page) -> int:
    return page.evaluate("async () => (await window.PatrolQueue.all()).length")


def counts(live):
    with live.db():
        items = db.session.execute(db.select(Item).order_by(Item.id)).scalars().all()
        return [(i.category, i.note, len(i.photos)) for i in items]


def walk_offline(live, vol, w, tmp_path):
    """Scan the gate and make three reports with photos, all without signal."""
    page = vol.page
    vol.context.set_offline(True)
    page.goto(compound_url(live.url, token_of(live, w.a1)))
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator("#offline-scan")).to_be_visible()
    for i, category in enumerate(CATEGORIES):
        report_offline(live, page, w.a1, category, f"离线上报{i}", photo(tmp_path, i))
    expect(page.locator("#queue")).to_be_visible()
    assert queue_size(page) == 4  # the scan and three reports
    assert counts(live) == []


def test_a_whole_walk_offline_arrives_exactly_once(live_server, world, phone, tmp_path):
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    walk_offline(live, vol, w, tmp_path)
    vol.context.set_offline(False)  # the `online` event starts the upload by itself
    expect(vol.page.locator("#queue")).to_be_hidden(timeout=20_000)
    expect(vol.page.locator("#sent-note")).to_have_text(re.compile(r"^已上传 [1-4] 条。$"))
    assert queue_size(vol.page) == 0
    assert counts(live) == [(c, f"离线上报{i}", 1) for i, c in enumerate(CATEGORIES)]
    with live.db():
        scan = db.session.execute(db.select(Presence).where(
            Presence.device_at.is_not(None))).scalar_one()
        assert scan.compound_id == w.a1 and scan.device_at <= scan.at
        assert all(i.device_created_at is not None for i in db.session.execute(
            db.select(Item)).scalars())


def fail_path(app, path):
    """Answer 503 for one path (as a server in trouble would); returns the list of hits."""
    hits, inner = [], app.wsgi_app

    def failing(environ, start_response):
        if environ["PATH_INFO"] == path:
            hits.append(1)
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"busy"]
        return inner(environ, start_response)
    app.wsgi_app = failing
    return hits


def test_signal_fading_during_precache_still_lets_a_gate_scan_find_its_compound(
        live_server, world, phone):
    """One page that cannot be fetched (no signal halfway, or server trouble) keeps neither
    the other pages nor the gate map from the phone, and the run is not marked done, so it
    is tried again next time."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    # The server fails that one page. (Not a Playwright route: the worker's own fetches
    # escape routes now and then under load, and the page would be kept after all.)
    refused = fail_path(live.app, f"/compounds/{w.a2}/report")
    page = vol.page
    page.goto("/compounds")
    probe = """async ([a1, a2]) => {
        const meta = await caches.open("meta-v1");
        return [!!(await meta.match("/__aliases")), !!(await caches.match("/compounds/" + a1)),
                !!(await caches.match("/compounds/" + a1 + "/report")),
                !!(await caches.match("/compounds/" + a2 + "/report")),
                !!(await meta.match("/__precached"))];
    }"""
    deadline = time.time() + 20
    while page.evaluate(probe, [w.a1, w.a2])[:3] != [True, True, True]:
        assert time.time() < deadline, page.evaluate(probe, [w.a1, w.a2])
        page.wait_for_timeout(200)
    while not refused:  # the first run has asked for the failing page
        assert time.time() < deadline, "the failing page was never asked for"
        page.wait_for_timeout(200)
    # Not marked done, so the next page opened with signal runs it again.
    first = len(refused)
    page.goto("/compounds")
    deadline = time.time() + 20
    while len(refused) == first:
        assert time.time() < deadline, "the unfinished run was not tried again"
        page.wait_for_timeout(200)
    assert page.evaluate(probe, [w.a1, w.a2])[3:] == [False, False]
    vol.context.set_offline(True)
    page.goto(compound_url(live.url, token_of(live, w.a1)))
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    expect(page.locator("#offline-scan")).to_be_visible()


def test_connection_drops_in_the_middle_of_a_sync(live_server, world, phone, tmp_path):
    """The server gets each request but the phone never hears back: resending is safe."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    walk_offline(live, vol, w, tmp_path)
    page = vol.page
    delivered = []

    def lose_the_answer(route):
        route.fetch()                    # the server receives and handles it…
        delivered.append(route.request.url)
        route.abort("connectionreset")  # …and the answer is lost on the way back

    page.route("**/compounds/*/report", lose_the_answer)
    page.route("**/sync/presence", lose_the_answer)
    vol.context.set_offline(False)
    reports_lost = lambda: len([u for u in delivered if "report" in u])  # noqa: E731
    deadline = time.time() + 30
    while time.time() < deadline and (len(counts(live)) < 3 or reports_lost() < 3):
        # Failed sends back off; tapping the button retries at once.
        page.wait_for_timeout(500)
        if page.locator("#queue button.sync").is_visible():
            # dispatch: the bar re-renders while it works, so it is never "stable"
            page.locator("#queue button.sync").dispatch_event("click")
    assert reports_lost() >= 3      # each answer was lost on the way back…
    assert len(counts(live)) == 3   # all three arrived at the server…
    assert queue_size(page) == 4    # …but the phone still holds them, unconfirmed
    page.unroute_all(behavior="wait")  # let a handler in flight finish, then signal is back
    page.locator("#queue button.sync").dispatch_event("click")
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    assert counts(live) == [(c, f"离线上报{i}", 1) for i, c in enumerate(CATEGORIES)]


def test_report_queued_longer_than_csrf_and_session_lifetimes(live_server, world, phone,
                                                             tmp_path):
    live, w = live_server, world
    live.app.config["WTF_CSRF_TIME_LIMIT"] = 2  # seconds: every token on the page expires
    vol, page = offline_at_compound(live, phone, w)
    report_offline(live, page, w.a1, "flyers", "很久以前", photo(tmp_path, 1))
    stale = page.locator("input[name=csrf_token]").first.input_value()
    time.sleep(3)
    # The browser session ends (WeChat closed the page); only the long-lived device
    # sign-in (remember cookie) is left.
    vol.context.clear_cookies(name="session")
    assert {c["name"] for c in vol.context.cookies()} == {"remember_token"}
    vol.context.set_offline(False)
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    assert counts(live) == [("flyers", "很久以前", 1)]
    # The token the page was built with would indeed have been refused by now.
    status = page.evaluate("""async (tok) => (await fetch('/photos', {method: 'POST',
        headers: {'X-CSRFToken': tok}, body: new FormData()})).status""", stale)
    assert status == 400


def test_reloading_while_offline_keeps_the_queue(live_server, world, phone, tmp_path):
    live, w = live_server, world
    vol, page = offline_at_compound(live, phone, w)
    report_offline(live, page, w.a1, "lighting", "灯坏了", photo(tmp_path, 2))
    page.reload()
    expect(page.locator("#queue")).to_be_visible()
    expect(page.locator("#queue li")).to_have_count(1)
    page.goto(f"/compounds/{w.a1}/report")  # still usable from the kept copy
    expect(page.locator("#report-form")).to_be_visible()
    page.go_back()
    # A compound page loaded afresh: its bar is hidden until it has read the queue, which
    # would pass the wait below for the bar to go before anything was sent.
    expect(page.locator("#queue li")).to_have_count(1)
    vol.context.set_offline(False)
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    assert counts(live) == [("lighting", "灯坏了", 1)]
    with live.db():
        assert db.session.scalar(db.select(db.func.count()).select_from(Photo)
                                 .where(Photo.item_id.is_not(None))) == 1


def fixed_item(live, w):
    """An item the company has fixed, made through the services."""
    from datetime import timedelta
    from patrol.lifecycle import Action
    from patrol.models import User, utcnow
    from patrol.services import items as svc
    from patrol.services.photo_store import save_upload
    from patrol.web.helpers import hazard_form
    from tests.factories import jpeg_bytes
    with live.db():
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        now, form, window = utcnow(), hazard_form(), timedelta(hours=2)
        item = svc.report(form=form, compound=db.session.get(Compound, w.a1), reporter=vol,
                          clean={"category": "water_tank", "extra": {}}, now=now,
                          photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
        svc.act(item, Action.ACKNOWLEDGE, mgr, now, svc.ActionInput(), form=form, window=window)
        svc.act(item, Action.FIX, mgr, now, svc.ActionInput(
            note="已清洗", photos=[save_upload(jpeg_bytes(), uploader=mgr, kind="after")]),
            form=form, window=window)
        db.session.commit()
        return item.id


def test_on_the_spot_check_made_offline_stays_provable(live_server, world, phone, tmp_path):
    """Scan and check without signal: the scan goes first with its phone time, and the
    server accepts the check because the scan came within the window before it."""
    live, w = live_server, world
    item_id = fixed_item(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    page = vol.page
    until_kept(page, [f"/items/{item_id}"])  # items waiting for a check are kept
    vol.context.set_offline(True)
    page.goto(compound_url(live.url, token_of(live, w.a1)))
    expect(page.locator("#offline-scan")).to_be_visible()
    page.goto(f"/items/{item_id}")
    page.locator("details#act-verify summary").tap()
    form = page.locator("details#act-verify form")
    form.locator("input[name=photos]").set_input_files(photo(tmp_path, 3))
    expect(form.locator(".previews img")).to_have_count(1)
    form.locator("label.choice:has(input[name=rating][value='4'])").tap()
    # Without signal the form keeps the check on the phone and reloads the item page (from
    # the kept copy). Wait for that reload: the old page's bar can already show both
    # records, and the new page's bar is hidden until it has read them, which would pass
    # the wait for the bar to go below before anything was sent.
    with page.expect_navigation():
        form.locator("button.btn").tap()
    expect(page.locator("#queue li")).to_have_count(2)  # the scan and the check
    with live.db():
        assert db.session.get(Item, item_id).status == "fixed"
    vol.context.set_offline(False)
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    with live.db():
        item = db.session.get(Item, item_id)
        assert item.status == "verified"
        check = item.events[-1]
        assert check.action == "verify" and check.data["rating"] == 4
        scan = db.session.get(Presence, check.presence_id)
        assert scan.device_at is not None and scan.device_at <= scan.at
        assert scan.device_at.isoformat(timespec="seconds") <= check.data["device_at"]


def test_a_shared_phone_keeps_each_persons_work_apart(live_server, world, phone, tmp_path):
    """A volunteer's report waits on the phone; staff then sign in on the same phone. The
    report is not sent in the staff member's name, and kept pages are the staff member's."""
    from tests.factories import PASSWORD
    live, w = live_server, world
    vol, page = offline_at_compound(live, phone, w)
    report_offline(live, page, w.a1, "flyers", "刘阿姨的上报", photo(tmp_path, 4))
    # The volunteer's sign-in is gone (before the signal is back: a request already on
    # its way could otherwise set the old session cookie again); someone else signs in.
    vol.context.clear_cookies()
    vol.context.set_offline(False)
    page.goto("/login")
    page.locator("input[name=username]").fill("staff_a")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("#login-btn").tap()
    expect(page).to_have_url(url_re(live, "/overview"))
    page.goto("/compounds")
    page.wait_for_function("() => !!window.PatrolQueue")
    page.evaluate("() => window.PatrolQueue.sync(true)")   # a whole run, as staff_a
    assert counts(live) == []                       # not sent as staff_a
    assert queue_size(page) == 1                    # still on the phone, for its owner
    expect(page.locator("#queue")).to_be_hidden()   # and not shown to someone else
    deadline = time.time() + 20
    # The kept page can be missing for a while (the worker empties the cache for a new user
    # before its refresh keeps the pages again): that is not replaced yet either.
    kept = "async () => { const r = await caches.match('/compounds'); return r ? r.text() : null; }"
    while (html := page.evaluate(kept)) is None or "vol_a" in html:
        assert time.time() < deadline, "the volunteer's kept page was not replaced"
        page.wait_for_timeout(200)
    vol.context.set_offline(True)
    page.goto("/compounds")
    expect(page.locator("footer")).to_contain_text("staff_a")
    # A page nobody kept: the fallback names nobody and lists no one's outbox.
    page.goto("/items/424242")
    expect(page.locator("h1")).to_have_text("无信号")
    expect(page.locator("body")).not_to_contain_text("vol_a")
    expect(page.locator("body")).not_to_contain_text("刘阿姨的上报")
    assert page.locator("body").get_attribute("data-user") == ""
    assert page.locator("input[name=csrf_token]").count() == 0


def test_a_token_refused_at_send_time_is_retried_not_dropped(live_server, world, phone,
                                                             tmp_path):
    """The page's token is refused, and so is the fresh one from /sync/token (the session
    changed in between, e.g. a sign-in in another tab): the report stays on the phone and
    goes again with a good token."""
    live, w = live_server, world
    # No service worker, so the routes below see every request (see test_photo_upload).
    vol = volunteer_signs_in(live, lambda name: phone(name, service_workers="block"), w.vol_a)
    page = vol.page
    tokens = []

    def stale_first(route):
        resp = route.fetch()
        data = resp.json()
        if not tokens:
            data["csrf"] = "stale"
        tokens.append(data["csrf"])
        route.fulfill(response=resp, json=data)

    spoiled = []

    def stale_page_token(route):   # the outbox sends the page's token first
        headers = dict(route.request.headers)
        if route.request.method == "POST" and not spoiled:
            spoiled.append(1)
            headers["x-csrftoken"] = "stale"
        route.continue_(headers=headers)

    page.route("**/sync/token", stale_first)
    page.route("**/compounds/*/report", stale_page_token)
    posted = []
    page.on("response", lambda r: posted.append(r.status)
            if r.request.method == "POST" and r.url.endswith("/report") else None)
    page.goto(f"/compounds/{w.a1}")
    report_offline(live, page, w.a1, "flyers", "令牌过期", photo(tmp_path, 5))
    # The bar starts hidden on each page until it has read the queue, so ask the queue
    # (once the compound page's scripts have run).
    page.wait_for_load_state()
    page.wait_for_function("() => !!window.PatrolQueue")
    deadline = time.time() + 20
    while queue_size(page) and time.time() < deadline:
        page.wait_for_timeout(200)
    assert queue_size(page) == 0
    # page token refused, fresh token refused, then the next page's token taken
    assert posted[0] == 400 and posted[1] == 400 and posted[-1] < 400 and len(posted) == 3, \
        (posted, tokens)
    assert tokens == ["stale"]
    assert counts(live) == [("flyers", "令牌过期", 1)]


def test_the_queue_says_what_waits_and_warns_when_storage_may_be_cleared(live_server, world,
                                                                         phone, tmp_path):
    """A browser without navigator.storage.persist (older iOS, some in-app browsers) keeps
    the outbox but promises nothing: the bar says so, on every page, with the count."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    vol.context.add_init_script("if (navigator.storage) navigator.storage.persist = undefined;")
    ready_for_offline(live, vol, w.a1)
    vol.context.set_offline(True)
    page = vol.page
    page.goto(f"/compounds/{w.a1}")
    expect(page.locator("#queue")).to_be_hidden()
    report_offline(live, page, w.a1, "sanitation", "垃圾没人清", photo(tmp_path, 6))
    bar = page.locator("#queue")
    expect(bar.locator(".count")).to_have_text("1 条待上传")
    expect(bar.locator(".not-persistent")).to_be_visible()
    # Compact at the bottom: it does not hide the big report button on a phone screen.
    assert bar.bounding_box()["height"] < 130, bar.bounding_box()
    covered = page.evaluate("""() => { const b = document.getElementById('report-btn');
        const r = b.getBoundingClientRect();
        const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return !(hit && b.contains(hit)); }""")
    assert not covered
    expect(bar.locator("li")).to_be_hidden()              # the list opens on a tap
    bar.locator("summary").tap()
    # Which report is which: the category is part of the line.
    expect(bar.locator("li")).to_have_text(re.compile(r"^小区A1 · 上报隐患 · 环境卫生 · 等待中"))
    page.goto("/compounds")                       # another (kept) page: still said
    expect(bar.locator(".not-persistent")).to_be_visible()
    vol.context.set_offline(False)
    expect(bar).to_be_hidden(timeout=20_000)
    assert counts(live) == [("sanitation", "垃圾没人清", 1)]


def test_a_check_waits_for_a_gate_scan_instead_of_refusing_it_at_the_end(
        live_server, world, phone, tmp_path):
    """Online, with no scan on record or waiting on the phone, the check buttons say
    "scan first" before the volunteer takes a photo and picks stars; after a scan they work."""
    from tests.browser.test_field_loop import scan_gate
    live, w = live_server, world
    item_id = fixed_item(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    page.goto(f"/items/{item_id}")
    page.locator("details#act-verify summary").tap()
    form = page.locator("details#act-verify form")
    expect(form.locator("button.btn")).to_be_disabled()
    expect(form.locator(".needs-scan")).to_be_visible()
    expect(page.locator("details#act-reopen form button.btn")).to_be_disabled()
    # A kept copy, made minutes ago (served when the signal is too slow), knows nothing of
    # scans made since: it does not stop the check; the server will decide.
    stale = phone("stale copy")
    stale.context.add_cookies(vol.context.cookies())
    stale.page.clock.install(time=time.time() + 600)
    stale.page.goto(f"/items/{item_id}")
    stale.page.wait_for_function("() => !!window.PatrolQueue")
    stale.page.locator("details#act-verify summary").tap()
    stale.page.wait_for_timeout(300)
    expect(stale.page.locator("details#act-verify form button.btn")).to_be_enabled()
    scan_gate(live, vol, w.a1)
    page.goto(f"/items/{item_id}")
    page.locator("details#act-verify summary").tap()
    expect(form.locator("button.btn")).to_be_enabled()
    expect(form.locator(".needs-scan")).to_have_count(0)


def test_a_phone_whose_sign_in_ended_no_longer_shows_kept_pages(live_server, world, phone,
                                                                 tmp_path):
    """A lost phone revoked by staff (or a sign-in that expired): once the phone meets the
    sign-in page, the pages kept for offline use are gone; a waiting report is not."""
    from patrol.models import Device
    from patrol.services import accounts
    live, w = live_server, world
    vol, page = offline_at_compound(live, phone, w)
    report_offline(live, page, w.a1, "flyers", "丢手机前的上报", photo(tmp_path, 7))
    with live.db():
        for device in db.session.execute(db.select(Device)).scalars():
            accounts.revoke_device(device)
        db.session.commit()
    vol.context.set_offline(False)
    page.goto("/compounds")
    expect(page).to_have_url(re.compile(r".*/login\?next=.*"))
    deadline = time.time() + 10
    while page.evaluate("async () => !!(await caches.match('/compounds'))"):
        assert time.time() < deadline, "kept pages are still on the phone"
        page.wait_for_timeout(200)
    vol.context.set_offline(True)
    page.goto(f"/compounds/{w.a1}")
    expect(page.locator("h1")).to_have_text("无信号")
    expect(page.locator("body")).not_to_contain_text("小区A1")
    assert queue_size(page) == 1  # the report still waits for its owner


def test_an_offline_scan_of_a_compound_whose_page_is_not_kept_queues_nothing(
        live_server, world, phone):
    """The gate map knows the compound but its page is not on the phone (the signal went
    before it arrived): the phone says no signal, and does not queue a scan for nobody."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    page = vol.page
    page.evaluate(f"async () => (await caches.open('pages-v1')).delete('/compounds/{w.a1}')")
    vol.context.set_offline(True)
    page.goto(compound_url(live.url, token_of(live, w.a1)))
    expect(page.locator("h1")).to_have_text("无信号")
    page.wait_for_function("() => !!window.PatrolQueue")
    page.evaluate("() => window.PatrolQueue.started()")   # whatever the page queues on opening
    assert queue_size(page) == 0


def test_a_form_goes_urlencoded_and_its_line_breaks_arrive_as_multipart_sent_them(
        live_server, world, phone, tmp_path):
    """The outbox sends a form's fields urlencoded (issue 15 §3: cheaper for the server to
    parse); line breaks still arrive as CRLF, as the browser's multipart encoder (the
    outbox's body before) and a plain form submission send them, so the stored note is
    the same."""
    live, w = live_server, world
    vol = volunteer_signs_in(live, phone, w.vol_a)
    page = vol.page
    page.goto(f"/compounds/{w.a1}")
    note = "第一行\n第二行 a+b=c&d %20 ✓\r\n第三行"
    with page.expect_request(lambda r: r.method == "POST"
                             and r.url.endswith(f"/compounds/{w.a1}/report")) as sent:
        report_offline(live, page, w.a1, "flyers", note, photo(tmp_path, 1))
    assert sent.value.headers["content-type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    assert "csrf_token=" not in (sent.value.post_data or "")   # the header carries it
    assert counts(live) == [("flyers", "第一行\r\n第二行 a+b=c&d %20 ✓\r\n第三行", 1)]
    assert queue_size(page) == 0
