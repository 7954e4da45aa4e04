"""Weekly problem lists (每周问题清单): the week, the sections, the PDF read back the way a
person and a phone would (pdffonts, pdftoppm at 150 dpi + zxing-cpp, pdftotext), the
fetcher's refusals, the web download's permissions and the `patrol weekly` batch.

Needs poppler-utils (pdftoppm, pdffonts, pdfinfo, pdftotext, pdfimages) and zxing-cpp.
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action
from patrol.models import Community, Company, Compound, User, utcnow
from patrol.services import items as svc
from patrol.services import weekly
from patrol.services.pdf import FetchRefused, SafeFetcher, document_from_html
from patrol.services.photo_store import save_upload
from patrol.services.weekly import Ev, State, Week, classify, replay
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import jpeg_bytes
from tests.pdftools import (distinct_shapes, embedded_fonts, glyph_shapes, qr_texts,
                             require_poppler, run, write_pdf)

# The tests that read "this week" from the clock also run at every awkward instant
# (marked below); the others name their weeks.
DATE_SENSITIVE = pytest.mark.date_sensitive

BASE_URL = "http://patrol.test"          # tests/conftest.make_app
TZ = "Asia/Shanghai"
WEEK = Week.parse("2026-W10")            # Monday 2 March to Sunday 8 March 2026, Beijing time
START, END = WEEK.bounds(TZ)
NOW = END + timedelta(hours=20)          # printed the Monday after
HOSTILE = '<img src="file:///etc/passwd"> 楼道堆物 <b>粗体</b>'
@pytest.fixture(autouse=True)
def _poppler():
    require_poppler()


# --- reading a PDF back -------------------------------------------------------------------

def page_count(path: Path) -> int:
    return int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", str(path))).group(1))


def page_texts(path: Path) -> list[str]:
    pages = run("pdftotext", "-enc", "UTF-8", "-layout", str(path), "-").split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


def images(path: Path, enc: str = "jpeg") -> list[tuple[int, int]]:
    """(width, height) of every embedded raster image of that encoding (pdfimages -list's
    enc column: "jpeg" for the photos, "image" for the deflated QR codes)."""
    lines = run("pdfimages", "-list", str(path)).splitlines()[2:]
    return [(int(line.split()[3]), int(line.split()[4])) for line in lines
            if line.split() and line.split()[8] == enc]


def item_numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"编号(\d+)", flat(text))]


# --- a seeded week --------------------------------------------------------------------------

def seed_week(app, world, extra_new: int = 0) -> SimpleNamespace:
    """Items of compound A1 in every section of WEEK, plus items that must stay off its
    list; one item in A2 (company Y) and one in B1 (community B, company X)."""
    with app.app_context():
        form, window = hazard_form(), app.config["VERIFY_WINDOW"]
        get = db.session.get
        vol, vol_b, mgr_x, mgr_y, staff = (get(User, world.vol_a), get(User, world.vol_b),
                                          get(User, world.mgr_x), get(User, world.mgr_y),
                                          get(User, world.staff_a))
        a1, a2, b1 = get(Compound, world.a1), get(Compound, world.a2), get(Compound, world.b1)
        colours = itertools.count(1)

        def photo(who, kind="before"):
            n = next(colours)
            return save_upload(jpeg_bytes(color=(n * 37 % 256, n * 91 % 256, n * 53 % 256)),
                               uploader=who, kind=kind)

        def new(compound, at, note="单元门口贴满小广告", category="flyers", who=vol):
            clean = {"category": category, "building": compound.buildings[0].id, "floor": "3",
                     "note": note, "extra": {}}
            return svc.report(form=form, compound=compound, reporter=who, clean=clean,
                              photos=[photo(who)], now=at)

        def step(item, action, who, at, **given):
            if action in (Action.VERIFY, Action.REOPEN, Action.FIX_ON_SPOT):
                svc.record_presence(who, item.compound, at - timedelta(minutes=5))
            svc.act(item, action, who, at, svc.ActionInput(**given), form=form, window=window)

        day = timedelta(days=1)
        hour = timedelta(hours=1)
        s = SimpleNamespace()
        s.new_reported = new(a1, START + day, note=HOSTILE, category="fire_exit")
        s.new_ack = new(a1, START + 2 * day)
        step(s.new_ack, Action.ACKNOWLEDGE, mgr_x, START + 2 * day + hour)
        s.open_overdue = new(a1, START - 10 * day, category="flying_wire")
        step(s.open_overdue, Action.ACKNOWLEDGE, mgr_x, START - 10 * day + hour)
        s.fixed = new(a1, START - 3 * day, category="water_tank")
        step(s.fixed, Action.ACKNOWLEDGE, mgr_x, START - 3 * day + hour)
        step(s.fixed, Action.FIX, mgr_x, START + 2 * day, note="已清洗水箱",
             photos=[photo(mgr_x, "after")])
        s.verified = new(a1, START - 5 * day, category="sanitation")
        step(s.verified, Action.ACKNOWLEDGE, mgr_x, START - 5 * day + hour)
        step(s.verified, Action.FIX, mgr_x, START + day, note="已清理", photos=[photo(mgr_x, "after")])
        step(s.verified, Action.VERIFY, vol, START + 3 * day, photos=[photo(vol, "after")])
        s.on_spot = new(a1, START + 4 * day, note="电梯间小广告，已当场清除")
        step(s.on_spot, Action.FIX_ON_SPOT, vol, START + 4 * day + timedelta(minutes=10),
             photos=[photo(vol, "after")])
        s.reopened = new(a1, START - 6 * day, category="greenery")
        step(s.reopened, Action.ACKNOWLEDGE, mgr_x, START - 6 * day + hour)
        step(s.reopened, Action.FIX, mgr_x, START + day, note="已修剪", photos=[photo(mgr_x, "after")])
        step(s.reopened, Action.REOPEN, vol, START + 4 * day, reason="not_fixed", note="仍有危险",
             photos=[photo(vol, "check")])
        # Off the list: closed before the week, rejected, reported after it.
        s.closed_before = new(a1, START - 20 * day)
        step(s.closed_before, Action.ACKNOWLEDGE, mgr_x, START - 20 * day + hour)
        step(s.closed_before, Action.FIX, mgr_x, START - 15 * day, note="ok",
             photos=[photo(mgr_x, "after")])
        step(s.closed_before, Action.VERIFY, vol, START - 10 * day, photos=[photo(vol, "after")])
        s.rejected = new(a1, START + day)
        step(s.rejected, Action.REJECT, staff, START + 2 * day, reason="not_a_hazard")
        s.after_week = new(a1, END + 2 * hour)
        s.extra = [new(a1, START + day + i * hour, note=f"第{i}处小广告") for i in range(extra_new)]
        # Other places.
        s.in_a2 = new(a2, START + day)
        s.in_b1 = new(b1, START + day, who=vol_b)
        db.session.commit()
        ids = SimpleNamespace(**{k: (v.id if not isinstance(v, list) else [i.id for i in v])
                                 for k, v in vars(s).items()})
        ids.mgr_y = mgr_y.id
        return ids


def build(app, scope, target_id, week=WEEK, now=NOW, visible_for=None):
    model = {"compound": Compound, "company": Company, "community": Community}[scope]
    with app.app_context():
        visible = None
        if visible_for is not None:
            from patrol import permissions
            from patrol.models import Item
            visible = permissions.item_filter(db.session.get(User, visible_for), Item)
        report = weekly.build(scope, db.session.get(model, target_id), week, now=now, tz=TZ,
                              form=hazard_form(), visible=visible)
        return {k: [e.item.id for e in v] for k, v in report.sections.items()}, report.counts


def render(app, scope, target_id, week=WEEK, now=NOW, lang="zh") -> bytes:
    model = {"compound": Compound, "company": Company, "community": Community}[scope]
    with app.app_context(), weekly.rendering_locale(lang):
        report = weekly.build(scope, db.session.get(model, target_id), week, now=now, tz=TZ,
                              form=hazard_form())
        return weekly.render_pdf(report, base_url=BASE_URL, tz=TZ)


# --- the week (pure) --------------------------------------------------------------------------

def test_iso_week_bounds_in_beijing_time_as_naive_utc():
    assert Week.parse("2026-W48").bounds(TZ) == (datetime(2026, 11, 22, 16, 0),
                                                  datetime(2026, 11, 29, 16, 0))
    assert Week.parse("2026w48") == Week(2026, 48)
    assert str(Week(2026, 1)) == "2026-W01"
    assert Week.parse("2026-W53").monday.isoformat() == "2026-12-28"   # 2026 has 53 weeks
    for bad in ("2025-W53", "2026-W00", "2026-W54", "2026-48", "", "W48"):
        with pytest.raises(ValueError):
            Week.parse(bad)


def test_week_containing_a_moment_uses_the_time_zone():
    # Sunday 23:59 and Monday 00:00 in Beijing, given in UTC.
    assert Week.containing(datetime(2026, 11, 22, 15, 59), TZ) == Week(2026, 47)
    assert Week.containing(datetime(2026, 11, 22, 16, 0), TZ) == Week(2026, 48)
    assert Week.containing(datetime(2026, 12, 31, 20, 0), TZ) == Week(2026, 53)   # 1 Jan 2027
    assert Week(2026, 1).previous() == Week(2025, 52)


def test_replay_and_classify_from_history():
    created = START - timedelta(days=3)
    events = [Ev(created, "report", "reported"),
              Ev(created + timedelta(hours=1), "acknowledge", "acknowledged",
                 {"deadline": (created + timedelta(days=2)).isoformat()}),
              Ev(START + timedelta(days=1), "fix", "fixed"),
              Ev(START + timedelta(days=2), "reopen", "reopened"),
              # After the week: ignored, and its new deadline is not last week's.
              Ev(END + timedelta(days=1), "acknowledge", "acknowledged",
                 {"deadline": (END + timedelta(days=5)).isoformat()})]

    def state_at(t):
        return replay(events, t, week_start=START, created_at=created, deadline_hours=24,
                      current_deadline=END + timedelta(days=5))

    at_end = state_at(END)
    assert at_end.status == "reopened" and at_end.reopened_in_week
    assert at_end.deadline == START + timedelta(days=3)          # rebuilt: reopen + 24 h
    assert classify(at_end, created_at=created, start=START, as_of=END) == "reopened"
    before = state_at(START - timedelta(seconds=1))
    assert before.status == "acknowledged" and before.deadline == created + timedelta(days=2)
    assert classify(before, created_at=created, start=START - timedelta(days=7),
                    as_of=START) == "new"
    assert classify(state_at(START + timedelta(days=1, hours=1)), created_at=created, start=START,
                    as_of=END) == "fixed"
    now_state = state_at(END + timedelta(days=2))
    assert now_state.status == "acknowledged" and now_state.deadline == END + timedelta(days=5)
    assert classify(State(status="verified", deadline=None, verified_at=START - timedelta(1)),
                    created_at=created, start=START, as_of=END) is None
    assert classify(State(status="rejected", deadline=None), created_at=created, start=START,
                    as_of=END) is None
    assert classify(State(status="reported", deadline=None), created_at=END + timedelta(1),
                    start=START, as_of=END) is None


def test_page_counter_css_takes_translated_text_safely():
    assert (weekly.page_counter_css("第 %(page)s 页 / 共 %(pages)s 页")
            == '"第 " counter(page) " 页 / 共 " counter(pages) " 页"')
    assert weekly.css_string('a"b\\c</style>') == '"a\\22 b\\5c c\\3c /style\\3e "'


# --- the sections (database) --------------------------------------------------------------------

def test_every_section_for_a_compound(app, world):
    s = seed_week(app, world)
    sections, counts = build(app, "compound", world.a1)
    assert sections == {"new": [s.new_reported, s.new_ack], "open": [s.open_overdue],
                        "fixed": [s.fixed], "verified": [s.verified, s.on_spot],
                        "reopened": [s.reopened]}
    assert counts == {"reported": 3, "open": 4, "overdue": 3, "fixed": 1, "verified": 2,
                      "reopened": 1, "listed": 7}


def test_scopes_company_and_community(app, world):
    s = seed_week(app, world)
    listed = lambda sections: sorted(i for ids in sections.values() for i in ids)  # noqa: E731
    a1 = listed(build(app, "compound", world.a1)[0])
    community_a = listed(build(app, "community", world.ca)[0])
    company_x = listed(build(app, "company", world.x)[0])
    assert community_a == sorted(a1 + [s.in_a2])
    assert company_x == sorted(a1 + [s.in_b1])
    assert listed(build(app, "company", world.y)[0]) == [s.in_a2]
    # A staff member's filter keeps company X's list to their community.
    assert listed(build(app, "company", world.x, visible_for=world.staff_a)[0]) == a1


def test_a_past_week_shows_that_weeks_state(app, world):
    """Replayed from the history: the week before, these items were new and unfixed."""
    s = seed_week(app, world)
    sections, _ = build(app, "compound", world.a1, week=WEEK.previous())
    assert sorted(sections["new"]) == sorted([s.fixed, s.verified, s.reopened])
    assert sections["open"] == [s.open_overdue]
    assert sections["fixed"] == sections["verified"] == sections["reopened"] == []


# --- the PDF ----------------------------------------------------------------------------------

def test_weekly_pdf_fonts_qr_codes_pages_and_escaping(app, world, tmp_path):
    s = seed_week(app, world, extra_new=12)
    path = write_pdf(render(app, "compound", world.a1), tmp_path, "a1")
    listed = [s.new_reported, s.new_ack, *s.extra, s.open_overdue, s.fixed, s.verified,
              s.on_spot, s.reopened]

    # A real CJK font, embedded as a subset, regular and bold.
    cjk = {name: emb for name, emb in embedded_fonts(path).items() if re.search(r"Noto.?Sans.?CJK", name)}
    assert cjk and all(emb == "yes" for emb in cjk.values()), embedded_fonts(path)
    assert any(re.match(r"[A-Z]{6}\+", name) for name in cjk), "not subset"
    assert any("Bold" in name for name in cjk), f"no bold face: {cjk}"
    # …and drawn: the title's characters, read off the rasterised page, are real glyphs.
    assert distinct_shapes(glyph_shapes(path, "每周问题清单")), "Chinese drawn as empty boxes"

    # Every item's QR code, read off 150 dpi pages, points at that item; each once.
    qr_pages = qr_texts(path)
    decoded = [text for page in qr_pages for text in page]
    assert sorted(decoded) == sorted(f"{BASE_URL}/items/{i}" for i in listed)

    pages = page_texts(path)
    n = len(pages)
    assert n == page_count(path) >= 2
    for number, text in enumerate(pages, 1):
        assert f"第{number}页/共{n}页" in flat(text)        # footer on every page
        assert "小区A1·每周问题清单" in flat(text)             # running header on every page
        assert "2026-W10" in text
    # No item split over two pages: each number appears on exactly one page, and on the
    # same page as its QR code (printed in the item's last column).
    numbers = [i for text in pages for i in item_numbers(text)]
    assert sorted(numbers) == sorted(listed)
    for text, codes in zip(pages, qr_pages, strict=True):
        assert sorted(item_numbers(text)) == sorted(int(c.rsplit("/", 1)[1]) for c in codes)
    whole = flat("".join(pages))
    for title in ("本周新上报", "往周遗留未整改", "已整改，待现场复查", "本周复查销号",
                  "本周复查未通过", "分类汇总", "物业签字", "社区签字", "日期"):
        assert title in whole, title
    assert "已超期" in whole and "立行立改" in whole
    # The note with markup is printed as text; it fetched nothing.
    assert flat('<img src="file:///etc/passwd"> 楼道堆物 <b>粗体</b>') in whole
    assert "root:" not in whole
    # Photos are the stored ~320 px thumbnails: a before photo for every item, and an
    # after photo for the fixed, verified, fixed-on-the-spot and reopened ones (the
    # reopened item shows the company's fix photo).
    embedded = images(path)
    assert len(embedded) == len(listed) + 4
    assert all(max(size) <= 320 for size in embedded), embedded
    assert len(images(path, "image")) == len(listed)      # the QR codes


def test_weekly_pdf_embeds_the_stored_jpegs_unchanged_and_qr_codes_as_images(app, world, tmp_path):
    """Issue 15 §5: the write phase was mostly drawing SVG QR codes point by point. The
    QR codes are small PNGs now, drawn unsmoothed, and the photos are the stored JPEG
    bytes, embedded as they are: DCTDecode alone, not re-encoded nor deflated on top."""
    seed_week(app, world)
    with app.app_context(), weekly.rendering_locale("zh"):
        report = weekly.build("compound", db.session.get(Compound, world.a1), WEEK, now=NOW,
                              tz=TZ, form=hazard_form())
        resources, _ = weekly.resources_for(report, BASE_URL)
        pdf = weekly.render_pdf(report, base_url=BASE_URL, tz=TZ)
        shown = {p.id for e in report.entries for p in (e.before, e.after) if p is not None}
    photos = {k: body for k, (body, mime) in resources.items() if k.startswith("photo-")}
    assert len(photos) == len(shown) >= 5 and all(
        mime == "image/jpeg" for k, (_, mime) in resources.items() if k.startswith("photo-"))
    for name, body in photos.items():
        assert body in pdf, f"{name}: stored JPEG not embedded byte for byte"
    filters = re.findall(rb"/Subtype\s*/Image\b.*?(/Filter\s*(?:/\w+|\[[^\]]*\]))", pdf, re.S)
    jpeg_filters = [f for f in filters if b"DCT" in f]
    assert len(jpeg_filters) == len(photos)
    assert all(re.fullmatch(rb"/Filter\s*/DCTDecode", f) for f in jpeg_filters), jpeg_filters
    # One PNG QR code per item, as an image drawn without smoothing, not vector paths.
    qrs = [body for k, (body, mime) in resources.items() if k.startswith("qr-")]
    assert len(qrs) == report.counts["listed"] and all(
        mime == "image/png" for k, (_, mime) in resources.items() if k.startswith("qr-"))
    path = write_pdf(pdf, tmp_path, "a1")
    lines = [line.split() for line in run("pdfimages", "-list", str(path)).splitlines()[2:]]
    assert sorted((line[8], line[9]) for line in lines if line) == sorted(
        [("image", "no")] * len(qrs) + [("jpeg", "yes")] * len(photos))


def test_weekly_pdf_prints_each_items_facts_and_the_figures(app, world, tmp_path):
    """What the signing people read: header, counts, each item's place, status, times,
    deadline and age, and the summary by category (figures worked out by hand from
    seed_week, printed on the Monday after at 20:00 Beijing time)."""
    s = seed_week(app, world)
    text = "\n".join(page_texts(write_pdf(render(app, "compound", world.a1), tmp_path, "a1")))
    whole = flat(text)
    assert "小区：小区A1·社区A·物业X" in whole and "打印时间：2026-03-0920:00" in whole
    assert "本周上报3待整改4已超期3待回头看1本周复查销号2本周退回整改1" in whole
    lines = {n: flat(block) for n, block in re.findall(r"编号(\d+)(.*?)(?=编号\d+|分类汇总)", text, re.S)}
    expected = {
        s.new_reported: ["楼道堆物/堵塞消防通道已上报已超期", "1栋·楼层3",
                         "已上报03-0300:00·整改期限03-0400:00·已6天未销号"],
        s.new_ack: ["小广告已受理已超期", "已上报03-0400:00·已受理03-0401:00·整改期限03-0700:00·已5天未销号"],
        s.open_overdue: ["飞线充电已受理已超期", "整改期限02-2100:00·已17天未销号"],
        s.fixed: ["水箱异味已整改，待回头看", "整改完成03-0400:00"],
        s.verified: ["环境卫生已销号", "复查通过03-0500:00"],
        s.on_spot: ["小广告已销号新上报立行立改", "电梯间小广告，已当场清除",
                    "整改完成03-0600:10·复查通过03-0600:10"],
        s.reopened: ["绿化/枯树已退回整改", "已退回整改03-0600:00·已13天未销号"],
    }
    for item_id, facts in expected.items():
        for fact in facts:
            assert fact in lines[str(item_id)], (item_id, fact, lines[str(item_id)])
    assert "天未销号" not in lines[str(s.fixed)] + lines[str(s.verified)]  # only open ones age
    assert "已超期" not in lines[str(s.reopened)]  # a failed check starts a new deadline
    summary = flat(text.split("分类汇总")[1])
    for row in ("飞线充电01100", "楼道堆物/堵塞消防通道11100", "小广告21101", "环境卫生00001",
                "水箱异味00010", "绿化/枯树01000", "合计34312"):
        assert row in summary, row


def test_user_text_is_escaped_in_the_html(app, world):
    seed_week(app, world)
    with app.app_context(), weekly.rendering_locale("zh"):
        report = weekly.build("compound", db.session.get(Compound, world.a1), WEEK, now=NOW,
                              tz=TZ, form=hazard_form())
        resources, names = weekly.resources_for(report, BASE_URL)
        from flask import render_template
        html = render_template("pdf/weekly.html",
                               **weekly._context(report, BASE_URL, TZ, names))
    assert '&lt;img src=&#34;file:///etc/passwd&#34;&gt;' in html
    assert 'src="file:' not in html
    assert set(re.findall(r'src="([^"]+)"', html)) <= {f"patrol-res:{k}" for k in resources}


def test_empty_week_is_one_clear_page(app, world, tmp_path):
    seed_week(app, world)
    path = write_pdf(render(app, "compound", world.a1, week=Week(2025, 1)), tmp_path, "empty")
    assert page_count(path) == 1
    text = flat(page_texts(path)[0])
    for expected in ("小区A1·每周问题清单", "2025-W01", "本周没有问题记录", "第1页/共1页",
                     "物业签字", "社区签字", "日期"):
        assert expected in text, expected
    assert qr_texts(path) == [[]]


def test_english_when_asked(app, world, tmp_path):
    s = seed_week(app, world)
    path = write_pdf(render(app, "compound", world.a1, lang="en"), tmp_path, "en")
    text = "".join(page_texts(path))
    for expected in ("Weekly problem list", "Page 1 of", "New this week",
                     "Property company signature:", "Stairwell clutter", f"No.{s.new_reported}"):
        assert expected in text, expected
    assert "每周问题清单" not in text and "第 1 页" not in text


# --- the fetcher -----------------------------------------------------------------------------

class _Counter(BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802
        self.hits.append(self.path)
        self.send_response(302)
        self.send_header("Location", "file:///etc/passwd")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    _Counter.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Counter.hits
    server.shutdown()
    server.server_close()


HUGE_DATA_URI = "data:image/png;base64," + "iVBORw0KGgo" * 200_000     # about 2 MB


def test_fetcher_refuses_everything_it_was_not_handed(local_server):
    url, hits = local_server
    fetcher = SafeFetcher({"qr-1": (b"<svg/>", "image/svg+xml")})
    assert fetcher.fetch("patrol-res:qr-1").read() == b"<svg/>"
    for bad in ("file:///etc/passwd", f"{url}/x.png", "http://127.0.0.1:1/", HUGE_DATA_URI,
                "file:///dev/urandom", "patrol-res:qr-2", "patrol-res:../../etc/passwd",
                "https://images.invalid/a.png", "ftp://127.0.0.1/x"):
        with pytest.raises(FetchRefused):
            fetcher.fetch(bad)
    assert len(fetcher.refused) == 9
    assert all(len(u) <= 100 for u in fetcher.refused)   # a huge URI is not logged whole
    assert hits == []


def test_markup_reaching_out_renders_without_fetching(local_server, tmp_path):
    """Even markup that is not escaped (a template bug) cannot read files or the network."""
    url, hits = local_server
    html = f"""<html><head>
      <link rel="stylesheet" href="{url}/style.css">
      <link rel="stylesheet" href="file:///etc/passwd">
      <style>@import url("{url}/import.css");
        body {{ background: url("file:///dev/urandom"); }}
        @font-face {{ font-family: x; src: url("{url}/font.woff"); }}</style></head>
      <body><p>安全</p>
      <img src="file:///etc/passwd"><img src="{url}/pixel.png"><img src="{HUGE_DATA_URI}">
      <object data="file:///etc/passwd"></object><embed src="file:///etc/passwd">
      <iframe src="{url}/frame"></iframe><svg><image href="file:///etc/passwd"/></svg>
      </body></html>"""
    fetcher = SafeFetcher({})
    started = time.monotonic()
    pdf = document_from_html(html, fetcher=fetcher).write_pdf()
    assert time.monotonic() - started < 30
    path = write_pdf(pdf, tmp_path, "hostile")
    assert hits == []                                      # nothing reached the server
    assert images(path) == []                              # nothing was embedded
    text = "".join(page_texts(path))
    assert "安全" in text and "root:" not in text
    refused = " ".join(fetcher.refused)
    for needle in ("file:///etc/passwd", f"{url}/style.css", f"{url}/pixel.png", "data:image/png",
                   "file:///dev/urandom"):
        assert needle in refused, needle


# --- the web download -----------------------------------------------------------------------

def _get(client, who, scope, ident, week="2026-W10"):
    if who:
        sign_in(client, who)
    return client.get(f"/reports/weekly.pdf?scope={scope}&id={ident}&week={week}")


@pytest.mark.parametrize("who, scope, target, status", [
    ("staff_a", "community", "ca", 200),
    ("staff_a", "compound", "a2", 200),
    ("staff_a", "community", "cb", 404),
    ("staff_a", "compound", "b1", 404),
    ("staff_a", "company", "x", 404),
    ("mgr_x", "company", "x", 200),
    ("mgr_x", "compound", "b1", 200),
    ("mgr_x", "compound", "a2", 404),
    ("mgr_x", "company", "y", 404),
    ("mgr_x", "community", "ca", 404),
    ("admin", "company", "y", 200),
    ("admin", "community", "cb", 200),
    ("vol_a", "compound", "a1", 403),
    # The owners' committee: its own compound's list only (issue 12).
    ("com_a1", "compound", "a1", 200),
    ("com_a1", "compound", "a2", 404),
    ("com_a1", "community", "ca", 404),
    ("com_a1", "company", "x", 404),
])
def test_download_permissions(app, world, client, who, scope, target, status):
    resp = _get(client, getattr(world, who), scope, getattr(world, target))
    assert resp.status_code == status
    if status == 200:
        assert resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF-")
        assert (f'filename="weekly-2026-W10-{scope}-{getattr(world, target)}.pdf"'
                in resp.headers["Content-Disposition"])
    else:
        assert resp.mimetype != "application/pdf"


@DATE_SENSITIVE
def test_download_bad_requests(app, world, client):
    assert _get(client, None, "compound", world.a1).status_code in (302, 401)
    sign_in(client, world.staff_a)
    assert client.get(f"/reports/weekly.pdf?scope=street&id={world.a1}").status_code == 400
    assert client.get(f"/reports/weekly.pdf?scope=compound&id={world.a1}&week=2026-W99"
                      ).status_code == 400
    assert client.get("/reports/weekly.pdf?scope=compound&id=999999").status_code == 404
    # No week: the current one.
    assert client.get(f"/reports/weekly.pdf?scope=compound&id={world.a1}").status_code == 200


def test_download_in_the_users_language(app, world, client, tmp_path):
    seed_week(app, world)
    sign_in(client, world.staff_a)
    zh = _get(client, None, "compound", world.a1)
    text = flat(page_texts(write_pdf(zh.data, tmp_path, "zh"))[0])
    assert re.search(r"第1页/共\d+页", text) and "每周问题清单" in text
    client.post("/lang", data={"lang": "en", "next": "/"})
    en = _get(client, None, "compound", world.a1)
    text = page_texts(write_pdf(en.data, tmp_path, "en"))[0]
    assert "Weekly problem list" in text and re.search(r"Page 1 of \d+", text)
    assert "每周问题清单" not in text


def test_manager_download_keeps_to_the_company(app, world, client, tmp_path):
    s = seed_week(app, world)
    resp = _get(client, world.mgr_x, "company", world.x)
    pages = page_texts(write_pdf(resp.data, tmp_path, "x"))
    numbers = [i for text in pages for i in item_numbers(text)]
    assert s.in_b1 in numbers and s.in_a2 not in numbers


@DATE_SENSITIVE
def test_pages_link_to_the_weekly_lists(app, world, client):
    sign_in(client, world.staff_a)
    page = client.get("/reports/weekly").get_data(as_text=True)
    assert "社区A" in page and "小区A1" in page and "小区A2" in page and "小区B1" not in page
    # Weeks are picked by their dates from a list (no <input type=week>, a bare text box
    # on iOS), this week first.
    this_week = Week.containing(utcnow(), TZ)
    options = re.findall(r'<option value="(\d{4}-W\d\d)">([^<]*)</option>', page)
    assert [label for label, _ in options][:2] == [this_week.label, this_week.previous().label]
    assert len(options) == 13 and 'type="week"' not in page
    monday, sunday = this_week.monday, this_week.sunday
    assert options[0][1] == f"{monday.month}月{monday.day}日–{sunday.month}月{sunday.day}日 (本周)"
    assert 'id="weekly-lists"' in client.get("/overview").get_data(as_text=True)
    show = client.get(f"/compounds/{world.a1}").get_data(as_text=True)
    assert f"/reports/weekly.pdf?scope=compound&amp;id={world.a1}" in show
    resp = client.get(f"/reports/weekly?target=compound:{world.a1}&week=2026-W10")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(
        f"/reports/weekly.pdf?scope=compound&id={world.a1}&week=2026-W10")

    assert "wechat-pdf" not in page
    wechat = client.get("/reports/weekly", headers={
        "User-Agent": "Mozilla/5.0 (Linux; Android 12) MicroMessenger/8.0.47"}).get_data(as_text=True)
    assert "在浏览器打开" in wechat.split('class="presence wechat-pdf"')[1].split("</p>")[0]

    sign_in(client, world.mgr_x)
    assert 'id="weekly-lists"' in client.get("/inbox").get_data(as_text=True)
    page = client.get("/reports/weekly").get_data(as_text=True)
    assert "物业X" in page and "小区B1" in page and "小区A2" not in page

    sign_in(client, world.vol_a)
    assert client.get("/reports/weekly").status_code == 403
    assert "/reports/weekly.pdf" not in client.get(f"/compounds/{world.a1}").get_data(as_text=True)


# --- the batch command ----------------------------------------------------------------------

@DATE_SENSITIVE
def test_cli_batch_for_the_demo_community(app, tmp_path):
    from patrol.models import Item
    from patrol.seed import seed_demo
    with app.app_context():
        seed_demo()
        community = db.session.execute(db.select(Community)).scalar_one()
        compounds = sorted(((c.id, c.name) for c in community.compounds), key=lambda c: c[1])
        name = community.name
    runner = app.test_cli_runner()

    out = tmp_path / "lists"
    result = runner.invoke(args=["weekly", "--community", name, "--week", "this", "-o", str(out)])
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.pdf"))
    assert len(files) == len(compounds)
    this_week = Week.containing(utcnow(), TZ).label
    total_pages = 0
    for cid, cname in compounds:
        [path] = [f for f in files if f.name.startswith(f"weekly-{this_week}-{cid}-")]
        assert cname in path.name
        texts = page_texts(path)
        total_pages += len(texts)
        assert f"{cname}·每周问题清单" in flat(texts[0])
        assert f"第1页/共{len(texts)}页" in flat(texts[0])

    combined = tmp_path / "all.pdf"
    result = runner.invoke(args=["weekly", "--community", name, "--week", "this", "--combined",
                                 "-o", str(combined)])
    assert result.exit_code == 0, result.output
    assert page_count(combined) == total_pages
    whole = flat("".join(page_texts(combined)))
    assert all(cname in whole for _, cname in compounds)
    # Every QR code in the combined file opens an item of this community.
    with app.app_context():
        ids = set(db.session.execute(db.select(Item.id)).scalars())
    decoded = [t for page in qr_texts(combined) for t in page]
    assert decoded and all(re.fullmatch(rf"{BASE_URL}/items/(\d+)", t) for t in decoded)
    assert {int(t.rsplit("/", 1)[1]) for t in decoded} <= ids
    assert len(decoded) == len(set(decoded))


def test_cli_options(app, world, tmp_path):
    seed_week(app, world)
    runner = app.test_cli_runner()
    one = tmp_path / "a1.pdf"
    result = runner.invoke(args=["weekly", "--compound", "小区A1", "--week", "2026-W10",
                                 "--lang", "en", "-o", str(one)])
    assert result.exit_code == 0, result.output
    assert "Weekly problem list" in page_texts(one)[0]

    out = tmp_path / "x"
    result = runner.invoke(args=["weekly", "--company", "物业X", "--week", "2026-W10", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.pdf"))) == 2           # A1 and B1

    for args in (["--community", "没有这个社区"], ["--compound", "小区A1", "--week", "2026-W99"],
                 [], ["--community", "社区A"]):          # the last: two compounds, one .pdf file
        bad = tmp_path / "bad.pdf"
        result = runner.invoke(args=["weekly", *args, "-o", str(bad)])
        assert result.exit_code != 0, args
        assert not bad.exists()


def test_items_not_acknowledged_in_time_are_marked(app, world, tmp_path):
    """Escalated items carry their mark on paper too, as in every list."""
    s = seed_week(app, world)
    with app.app_context(), weekly.rendering_locale("zh"):
        report = weekly.build("compound", db.session.get(Compound, world.a1), WEEK, now=NOW,
                              tz=TZ, form=hazard_form(), ack_limit=timedelta(hours=12))
        late = {e.item.id for entries in report.sections.values() for e in entries if e.ack_late}
        pdf = weekly.render_pdf(report, base_url=BASE_URL, tz=TZ)
    assert late == {s.new_reported}
    # On paper: the mark is printed once, in the late item's own heading line.
    text = "\n".join(page_texts(write_pdf(pdf, tmp_path, "late")))
    marked = [line for line in text.splitlines() if "超时未受理" in line]
    assert len(marked) == 1 and item_numbers(marked[0]) == [s.new_reported], marked


def test_a_long_unbroken_note_wraps_left_of_the_photos(app, world, tmp_path):
    """A pasted link with no spaces ran under the photos and the QR code and off the page:
    every word of the text column ends left of the first photo (84 mm from the right edge
    of the text area), and the link is printed as far as the list cuts a note."""
    link = "http://long.invalid/" + "a" * 300
    with app.app_context():
        vol = db.session.get(User, world.vol_a)
        svc.report(form=hazard_form(), compound=db.session.get(Compound, world.a1),
                   reporter=vol, clean={"category": "flyers", "note": link, "extra": {}},
                   photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")],
                   now=START + timedelta(days=1))
        db.session.commit()
    path = write_pdf(render(app, "compound", world.a1), tmp_path, "long")
    words = re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)"[^>]*>([^<]*)</word>',
                       run("pdftotext", "-bbox", str(path), "-"))
    mm = 72 / 25.4
    photos_start = 595.28 - 13 * mm - 84 * mm
    text = [(float(x1), w) for _x0, x1, w in words if "aaaa" in w]
    assert text and all(x1 <= photos_start + 1 for x1, _w in text), text
    assert "".join(w for _x1, w in text).count("a") >= 100
