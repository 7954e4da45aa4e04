"""A whole patrol without signal: start, a checkpoint sticker, a report and the end with
its summary are kept on the phone and arrive exactly once, with the phone's times."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from patrol.clock import utcnow
from patrol.extensions import db
from patrol.models import CheckpointScan, Item, Patrol, PatrolMember
from tests.browser.test_field_loop import assert_no_browser_errors, url_re, volunteer_signs_in
from tests.browser.test_offline import photo, queue_size, ready_for_offline, report_offline
from tests.browser.test_patrol_walk import patrol_world

pytestmark = pytest.mark.browser

# Phone times reach our clock through the offset its send time gives: exact to a request's
# transit time, so compared with our own clock they get this much room.
SKEW = timedelta(seconds=1)


def test_a_whole_patrol_offline_arrives_exactly_once(live_server, world, phone, tmp_path):
    live, w = live_server, world
    _mate, tokens = patrol_world(live, w)
    vol = volunteer_signs_in(live, phone, w.vol_a)
    ready_for_offline(live, vol, w.a1)
    page = vol.page
    vol.context.set_offline(True)
    page.goto(f"/compounds/{w.a1}")           # the kept copy
    began = utcnow()

    page.locator("#patrol-start").tap()
    expect(page.locator("#patrol-local")).to_be_visible()
    expect(page.locator("#patrol-start-form")).to_be_hidden()

    # A sticker scanned without signal: the worker opens the kept page, which queues it.
    page.goto(f"{live.url}/k/{tokens[1]}")
    expect(page).to_have_url(url_re(live, f"/compounds/{w.a1}"))
    page.evaluate("() => window.PatrolQueue.started()")
    expect(page.locator("#offline-checkpoint")).to_be_visible()
    expect(page.locator("#checkpoints li.done")).to_have_count(1)
    expect(page.locator("#cp-count .n")).to_have_text("1")

    report_offline(live, page, w.a1, "flyers", "离线巡查上报", photo(tmp_path, 1))
    page.evaluate("() => window.PatrolQueue.started()")
    expect(page.locator("#patrol-local")).to_be_visible()
    expect(page.locator("#found-count")).to_have_value("1")  # the report waiting on the phone
    page.locator("#end-found").tap()
    expect(page.locator("#patrol-ended-local")).to_be_visible()
    expect(page.locator("#patrol-end-form")).to_be_hidden()
    assert queue_size(page) == 4              # start, checkpoint, report, end
    ended = utcnow()
    with live.db():
        assert db.session.scalar(db.select(db.func.count()).select_from(Patrol)) == 0

    page.wait_for_timeout(1500)               # the records reach us visibly later
    online = utcnow()
    vol.context.set_offline(False)
    expect(page.locator("#queue")).to_be_hidden(timeout=20_000)
    expect(page.locator("#sent-note")).to_have_text(re.compile(r"^已上传 [1-4] 条。$"))
    assert queue_size(page) == 0
    # Sent again by a second sync (as after a lost answer): nothing new.
    page.evaluate("() => window.PatrolQueue.sync(true)")

    with live.db():
        patrol = db.session.execute(db.select(Patrol)).scalar_one()
        assert (patrol.summary, patrol.found_count, patrol.ended_by) == ("found", 1, "tapped")
        # The phone's times, not the upload's (web/sync.parse_device_at; SKEW above).
        earliest, latest = began - (online - began) - SKEW, ended + SKEW
        assert earliest <= patrol.started_at <= latest
        assert patrol.started_at <= patrol.ended_at <= latest
        scan = db.session.execute(db.select(CheckpointScan)).scalar_one()
        assert scan.patrol_id == patrol.id and scan.device_at is not None
        assert patrol.started_at <= scan.device_at <= latest and ended < scan.at
        item = db.session.execute(db.select(Item)).scalar_one()
        assert item.note == "离线巡查上报" and item.events[0].patrol_id == patrol.id
        assert scan.device_at <= item.device_created_at <= latest
        member = db.session.get(PatrolMember, (patrol.id, w.vol_a))
        assert member.joined_at == patrol.started_at and member.minutes == 0
    page.goto(f"/patrols/{patrol.id}")
    expect(page.locator("#patrol-scans")).to_contain_text("2栋")
    expect(page.locator("#patrol-scans")).to_contain_text("离线记录")
    assert_no_browser_errors(vol)
    assert live.errors == []
