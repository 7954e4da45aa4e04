"""The monthly statistics pack (issue 14): pure parts (weeks of a month, percentiles, small
samples, look-back bins), the numbers against the database, the PDF read back with
pdftotext (Chinese, charts, page numbers), the page, who may see it, and the staff's
choice of up to three before/after highlights.

Data are built relative to utcnow() (the suite runs at a fixed instant): the pack is for
the month before the current one, so every week of it is over.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func

from patrol import display
from patrol.extensions import db
from patrol.ledger import percentile
from patrol.lifecycle import OWED, Action
from patrol.models import (AuditEntry, Community, Company, Compound, Item, MonthlyHighlight,
                           Patrol, PatrolMember, Street, Team, User, utcnow)
from patrol.scoring import Period
from patrol.services import coverage
from patrol.services import items as svc
from patrol.services import monthly_pack
from patrol.services import patrols as patrol_service
from patrol.services.monthly_pack import WeekBucket, bin_counts, month_weeks, stat
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes
from tests.pdftools import distinct_shapes, glyph_shapes, require_poppler, run, write_pdf

TZ = "Asia/Shanghai"
HOSTILE = "<b>x</b>&"           # a company's name: user text in SVG, HTML and PDF


# --- pure ----------------------------------------------------------------------------------

def test_percentile_is_linear_between_ranks():
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1, 2, 3, 4], 0.5) == 2.5                # the median
    assert percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)
    assert percentile([3, 1, 2], 0.0) == 1 and percentile([3, 1, 2], 1.0) == 3
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_stat_marks_small_samples():
    s = stat("物业X", [1.0, 2.0, 3.0, 10.0], min_n=5)
    assert (s.n, s.median, s.p90, s.small) == (4, 2.5, 7.9, True)
    assert not stat("物业X", [1.0] * 5, min_n=5).small
    empty = stat("物业Y", [], min_n=5)
    assert (empty.n, empty.median, empty.p90, empty.small) == (0, None, None, True)


def test_weeks_of_a_month_are_clipped_and_future_weeks_have_no_data():
    period = Period.parse("2026-11")                  # 1 Nov 2026 is a Sunday
    by_week = {date(2026, 10, 26): {"小广告": 2}, date(2026, 11, 9): {"小广告": 1, "水箱异味": 3}}
    weeks = month_weeks(period, date(2026, 11, 18), by_week)
    assert [(w.first, w.last) for w in weeks] == [
        (date(2026, 11, 1), date(2026, 11, 1)), (date(2026, 11, 2), date(2026, 11, 8)),
        (date(2026, 11, 9), date(2026, 11, 15)), (date(2026, 11, 16), date(2026, 11, 22)),
        (date(2026, 11, 23), date(2026, 11, 29)), (date(2026, 11, 30), date(2026, 11, 30))]
    assert [w.total for w in weeks] == [2, 0, 4, 0, None, None]   # 0: a week without items
    assert [w.label for w in weeks] == ["W44", "W45", "W46", "W47", "W48", "W49"]
    assert weeks[0].dates == "11-01" and weeks[1].dates == "11-02–11-08"
    assert isinstance(weeks[0], WeekBucket)


def test_look_back_bins():
    assert bin_counts([0, 0.5, 1, 2.9, 3, 6.9, 7, 30]) == [2, 1, 1, 2, 2]


# --- a seeded month --------------------------------------------------------------------------

def seed(app) -> SimpleNamespace:
    """Community A (in a street) with items in both its compounds over last month, patrols
    by two volunteers and two schedules; items outside the month or the community that
    must stay out. Company Y is renamed HOSTILE."""
    with app.app_context():
        ids = build_world()
        get = db.session.get
        form, window = hazard_form(), app.config["VERIFY_WINDOW"]
        period = monthly_pack.month_of(utcnow(), TZ).shift(-1)
        start, end = period.bounds_utc(TZ)
        ca = get(Community, ids.ca)
        street = Street(name="和平街道")
        ca.street = street
        get(Company, ids.y).name = HOSTILE
        vol, vol_b, mgr_x, mgr_y = (get(User, i) for i in (ids.vol_a, ids.vol_b, ids.mgr_x,
                                                          ids.mgr_y))
        staff = get(User, ids.staff_a)
        mate = User(username="vol_a2", display_name="王阿姨", role="volunteer",
                    community_id=ids.ca, team_id=ids.team, title="组长")
        street_staff = User(username="street_a", display_name="街道", role="street_staff",
                            street=street, password_hash="x")
        db.session.add_all([street, mate, street_staff])
        db.session.flush()
        a1, a2, b1 = get(Compound, ids.a1), get(Compound, ids.a2), get(Compound, ids.b1)
        day, hour = timedelta(days=1), timedelta(hours=1)
        colours = iter(range(1, 200))

        def photo(who, kind="before"):
            n = next(colours)
            return save_upload(jpeg_bytes(color=(n * 37 % 256, n * 91 % 256, n * 53 % 256)),
                               uploader=who, kind=kind)

        def new(compound, at, category, who=vol):
            clean = {"category": category, "building": compound.buildings[0].id, "floor": "2",
                     "note": "楼道问题", "extra": {}}
            return svc.report(form=form, compound=compound, reporter=who, clean=clean,
                              photos=[photo(who)], now=at)

        def step(item, action, who, at, **given):
            if action in (Action.VERIFY, Action.REOPEN, Action.FIX_ON_SPOT):
                svc.record_presence(who, item.compound, at - timedelta(minutes=5))
            svc.act(item, action, who, at, svc.ActionInput(**given), form=form, window=window)

        s = SimpleNamespace(period=period, start=start, end=end, street=street.id,
                            street_staff=street_staff.id, mate=mate.id)
        s.verified = new(a1, start + day, "flyers")
        step(s.verified, Action.ACKNOWLEDGE, mgr_x, start + day + hour)
        step(s.verified, Action.FIX, mgr_x, start + 3 * day, note="已清理",
             photos=[photo(mgr_x, "after")])
        step(s.verified, Action.VERIFY, vol, start + 4 * day, photos=[photo(vol, "after")])
        s.fixed = new(a1, start + 2 * day, "flyers")
        step(s.fixed, Action.ACKNOWLEDGE, mgr_x, start + 2 * day + hour)
        step(s.fixed, Action.FIX, mgr_x, start + 7 * day, note="已清理",
             photos=[photo(mgr_x, "after")])
        s.overdue_x = new(a1, start + 3 * day, "flying_wire")
        step(s.overdue_x, Action.ACKNOWLEDGE, mgr_x, start + 3 * day + hour)
        s.overdue_y = new(a2, start + 8 * day, "flyers")
        s.verified_y = new(a2, start + 9 * day, "water_tank")
        step(s.verified_y, Action.ACKNOWLEDGE, mgr_y, start + 9 * day + hour)
        step(s.verified_y, Action.FIX, mgr_y, start + 10 * day, note="已清洗",
             photos=[photo(mgr_y, "after")])
        step(s.verified_y, Action.VERIFY, vol, start + 12 * day + 6 * hour,
             photos=[photo(vol, "after")])
        s.sanitation = [new(a1, start + 15 * day + i * hour, "sanitation") for i in range(2)]
        s.on_spot = new(a1, start + 22 * day, "flyers")
        step(s.on_spot, Action.FIX_ON_SPOT, vol, start + 22 * day + hour,
             photos=[photo(vol, "after")])
        # Out of the pack: before the month, after it, another community.
        s.before = new(a1, start - 2 * day, "flyers")
        s.after = new(a1, end + hour, "flyers")
        s.in_b1 = new(b1, start + 5 * day, "flyers", who=vol_b)
        # Patrols: two volunteers together in A1 (70 and 60 minutes), one alone in A2.
        p1, _ = patrol_service.start(vol, a1, start + 4 * day + 2 * hour)
        patrol_service.start(mate, a1, start + 4 * day + 2 * hour + timedelta(minutes=10))
        patrol_service.end(p1, vol, start + 4 * day + 3 * hour + timedelta(minutes=10),
                           summary="none")
        p2, _ = patrol_service.start(vol, a2, start + 10 * day + 2 * hour)
        patrol_service.end(p2, vol, start + 10 * day + 2 * hour + timedelta(minutes=45),
                           summary="none")
        # Patrol schedules: A1 once a week, A2 twice a month.
        team = get(Team, ids.team)
        coverage.set_schedule(staff, team=team, compound=a1, checkpoint=None, period="week",
                              times=1, now=start)
        coverage.set_schedule(staff, team=team, compound=a2, checkpoint=None, period="month",
                              times=2, now=start)
        db.session.commit()
        for key, value in list(vars(s).items()):
            if isinstance(value, Item):
                setattr(s, key, value.id)
            elif isinstance(value, list):
                setattr(s, key, [v.id for v in value])
        s.world = ids
        return s


@pytest.fixture
def month(db_app):
    return seed(db_app)


def build_pack(app, s, scope="community", target_id=None):
    with app.app_context():
        model = Community if scope == "community" else Street
        target = db.session.get(model, target_id or (s.world.ca if scope == "community"
                                                     else s.street))
        return monthly_pack.build(scope, target, s.period, now=utcnow(), tz=TZ,
                                  min_items=app.config["RATING_MIN_ITEMS"])


def render(app, s, scope="community") -> bytes:
    with app.app_context(), display.language("zh"):
        model = Community if scope == "community" else Street
        target = db.session.get(model, s.world.ca if scope == "community" else s.street)
        pack = monthly_pack.build(scope, target, s.period, now=utcnow(), tz=TZ,
                                  min_items=app.config["RATING_MIN_ITEMS"])
        return monthly_pack.render_pdf(pack, tz=TZ, lang="zh")


# --- reading the database directly ----------------------------------------------------------

def db_category_counts(s) -> dict[str, int]:
    return dict(db.session.execute(
        db.select(Item.category, func.count(Item.id))
        .where(Item.community_id == s.world.ca, Item.created_at >= s.start,
               Item.created_at < s.end).group_by(Item.category)).all())


def db_week_counts(s) -> dict[tuple[str, date], int]:
    out: dict = {}
    for category, created in db.session.execute(
            db.select(Item.category, Item.created_at)
            .where(Item.community_id == s.world.ca, Item.created_at >= s.start,
                   Item.created_at < s.end)):
        local = display.local(created, "%Y-%m-%d", tz=TZ)
        day = date.fromisoformat(local)
        key = (category, day - timedelta(days=day.weekday()))
        out[key] = out.get(key, 0) + 1
    return out


def db_overdue_by_company(s, now) -> dict[str, int]:
    return dict(db.session.execute(
        db.select(Company.name, func.count(Item.id)).join(Company, Company.id == Item.company_id)
        .where(Item.community_id == s.world.ca, Item.created_at >= s.start,
               Item.created_at < s.end, Item.status.in_([o.value for o in OWED]),
               Item.deadline < now).group_by(Company.name)).all())


def db_items_by_company(s) -> dict[str, int]:
    return dict(db.session.execute(
        db.select(Company.name, func.count(Item.id)).join(Company, Company.id == Item.company_id)
        .where(Item.community_id == s.world.ca, Item.created_at >= s.start,
               Item.created_at < s.end).group_by(Company.name)).all())


def db_minutes(s) -> int:
    return db.session.execute(
        db.select(func.sum(func.coalesce(PatrolMember.corrected_minutes, PatrolMember.minutes)))
        .join(Patrol, Patrol.id == PatrolMember.patrol_id)
        .join(User, User.id == PatrolMember.user_id)
        .where(User.community_id == s.world.ca, Patrol.started_at >= s.start,
               Patrol.started_at < s.end, Patrol.ended_at.is_not(None))).scalar_one()


# --- the numbers ------------------------------------------------------------------------------

def test_pack_numbers(db_app, month):
    s = month
    pack = build_pack(db_app, s)
    with db_app.app_context(), display.language("zh"):
        labels = {code: display.category_label(code, "zh") for code in db_category_counts(s)}
        assert dict(pack.categories) == {labels[c]: n for c, n in db_category_counts(s).items()}
        assert pack.figures.total == 8
        assert all(w.counts is not None for w in pack.weeks)        # a month that is over
        assert sum(w.total for w in pack.weeks) == 8
        assert {(name, n) for name, n, _total in pack.overdue_by_company} == set(
            db_overdue_by_company(s, utcnow()).items())
        assert pack.hours_minutes == db_minutes(s) == 75 + 60 + 45
        assert {v.name: v.minutes for v in pack.hours} == {"vol_a": 120, "王阿姨": 60}
    # Time to fix: X's after 2 and 5 days, Y's after 1 day; every group is a small sample
    # with the default minimum of 5. The volunteer's fix on the spot (0 days) is in the
    # month's figure but no company's (docs/scoring.md leaves it out of theirs too).
    by_party = {st.name: st for st in pack.fix_by_company}
    assert (by_party["物业X"].n, by_party["物业X"].median, by_party["物业X"].small) == \
        (2, 3.5, True)
    assert (by_party[HOSTILE].n, by_party[HOSTILE].median) == (1, 1.0)
    assert pack.fix_all.n == 4
    # Look-back: checks 1 day (X) and 2.25 days (Y) after the fix.
    assert sorted(pack.figures.lookback_days) == [1.0, 2.2]
    assert pack.lookback_bins == [0, 1, 1, 0, 0]
    # Coverage: 2 compounds, both patrolled; A1's weekly schedule met in one week.
    assert (pack.coverage.compounds, pack.coverage.patrolled, pack.coverage.patrols) == (2, 2, 2)
    met = [w.met for w in pack.coverage.weeks]
    assert sum(met) == 1 and all(w.met + w.short == 1 for w in pack.coverage.weeks)
    [a2_month] = pack.coverage.month_rows
    assert (a2_month.done, a2_month.due, a2_month.state) == (1, 2, "missed")
    # Every company is rated: X on its five items (three overdue: the black list), Y too
    # few for the list.
    assert {f.company_id for f in pack.ratings} == {s.world.x, s.world.y}
    assert [f.company_id for f in pack.black] == [s.world.x] and pack.red == []
    assert [f.company_id for f in pack.unranked] == [s.world.y]


def test_street_pack_covers_its_communities_only(db_app, month):
    s = month
    pack = build_pack(db_app, s, "street")
    assert pack.community_ids == [s.world.ca]
    assert pack.figures.total == 8                   # B1's item is in no street


# --- the PDF -------------------------------------------------------------------------------------

def page_texts(path) -> list[str]:
    pages = run("pdftotext", "-enc", "UTF-8", "-layout", str(path), "-").split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def rows_starting(text: str, label: str) -> list[list[str]]:
    """The rest of every line that starts with `label`, split on spaces."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(label):
            out.append(line[len(label):].split())
    return out


def blue_pixels(path, page: int) -> int:
    """Pixels of the charts' blue (#0a58a8) on a page rendered at 50 dpi."""
    from PIL import Image
    out = path.with_name(f"{path.stem}-p{page}")
    run("pdftoppm", "-r", "50", "-f", str(page), "-l", str(page), "-singlefile", "-png",
        str(path), str(out))
    with Image.open(f"{out}.png") as im:
        return sum(1 for r, g, b in im.convert("RGB").get_flattened_data()
                   if abs(r - 10) < 30 and abs(g - 88) < 30 and abs(b - 168) < 30)


def test_pdf_reads_back_as_the_database_says(db_app, month, tmp_path):
    require_poppler()
    s = month
    path = write_pdf(render(db_app, s), tmp_path, "pack")
    pages = page_texts(path)
    n = len(pages)
    assert n >= 2
    for number, text in enumerate(pages, 1):
        assert f"第{number}页/共{n}页" in re.sub(r"\s+", "", text)
        assert "月度统计材料" in text                      # the running header
    assert distinct_shapes(glyph_shapes(path, "月度统计材料")), "Chinese drawn as empty boxes"
    assert blue_pixels(path, 1) > 200, "no chart drawn on the first page"
    whole = "\n".join(pages)
    flat = re.sub(r"\s+", "", whole)
    with db_app.app_context():
        pack = build_pack(db_app, s)
        mondays = [w.monday for w in pack.weeks]
        weeks = db_week_counts(s)
        # Items by category and week: each category's row is its weeks and its total.
        for code, total in db_category_counts(s).items():
            label = display.category_label(code, "zh")
            expected = [str(weeks.get((code, m), 0)) for m in mondays] + [str(total)]
            assert expected in rows_starting(whole, label), (label, rows_starting(whole, label))
        # Overdue by company: overdue, then items reported.
        items = db_items_by_company(s)
        overdue = db_overdue_by_company(s, utcnow())
        assert overdue == {"物业X": 3, HOSTILE: 1}
        for name, count in overdue.items():
            assert [str(count), str(items[name])] in rows_starting(whole, name), name
        # Volunteer hours.
        hours = f"{db_minutes(s) / 60:.2f}"
        assert f"服务时长合计{hours}小时" in flat
    assert "8" in rows_starting(whole, "上报问题")[0]          # the summary line
    assert "样本不足" in flat                                   # small samples are marked
    assert HOSTILE in whole                                     # user text printed as text


def test_pdf_of_the_demo_community_renders(app, tmp_path):
    """The demo data (patrol.seed): Chinese text, charts, page numbers; the month in
    progress shows its weeks to come as no data."""
    require_poppler()
    from patrol.seed import seed_demo
    with app.app_context(), display.language("zh"):
        seed_demo()
        community = db.session.execute(db.select(Community)).scalars().first()
        now = utcnow()
        pack = monthly_pack.build("community", community, monthly_pack.month_of(now, TZ),
                                  now=now, tz=TZ, min_items=5)
        pdf = monthly_pack.render_pdf(pack, tz=TZ, lang="zh")
        name = community.name
    path = write_pdf(pdf, tmp_path, "demo")
    pages = page_texts(path)
    flat = re.sub(r"\s+", "", "".join(pages))
    assert f"{name}·月度统计材料" in flat
    assert f"第1页/共{len(pages)}页" in flat
    assert blue_pixels(path, 1) > 100
    if any(w.counts is None for w in pack.weeks):
        assert "无数据" in flat


# --- the page and who may see it -----------------------------------------------------------------

@pytest.mark.parametrize("who,scope,target,status", [
    ("staff_a", "community", "ca", 200), ("staff_a", "community", "cb", 404),
    ("staff_b", "community", "ca", 404), ("admin", "community", "cb", 200),
    ("street_staff", "street", "street", 200), ("street_staff", "community", "ca", 200),
    ("street_staff", "community", "cb", 404), ("staff_a", "street", "street", 404),
    ("admin", "street", "street", 200),
    ("vol_a", "community", "ca", 403), ("mgr_x", "community", "ca", 403),
    ("com_a1", "community", "ca", 403),
])
def test_who_may_see_a_pack(db_app, month, who, scope, target, status):
    s = month
    user_id = s.street_staff if who == "street_staff" else getattr(s.world, who)
    target_id = s.street if target == "street" else getattr(s.world, target)
    client = sign_in(db_app.test_client(), user_id)
    r = client.get(f"/monthly?scope={scope}&id={target_id}&month={s.period.code}")
    assert r.status_code == status
    if status == 200:
        pdf = client.get(f"/monthly.pdf?scope={scope}&id={target_id}&month={s.period.code}")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    else:
        assert client.get(f"/monthly.pdf?scope={scope}&id={target_id}"
                          f"&month={s.period.code}").status_code == status


def test_page_shows_charts_tables_and_escapes_user_text(db_app, month):
    s = month
    client = sign_in(db_app.test_client(), s.world.staff_a)
    html = client.get(f"/monthly?scope=community&id={s.world.ca}&month={s.period.code}"
                      ).get_data(as_text=True)
    assert html.count("<svg") == 7 and html.count("<desc") == 7
    assert 'role="img"' in html and "table-categories" in html
    assert HOSTILE not in html and "&lt;b&gt;x&lt;/b&gt;&amp;" in html
    assert "<b>x</b>" not in html
    # The default (no arguments) is the user's own community, this month.
    assert client.get("/monthly").status_code == 200
    assert client.get("/monthly?month=2026-13").status_code == 400
    # Linked from the staff nav and from the weekly lists.
    assert 'id="nav-monthly"' in html
    assert 'id="weekly-to-monthly"' in client.get("/reports/weekly").get_data(as_text=True)


# --- highlights ------------------------------------------------------------------------------------

def choose(client, s, item_id, scope="community", target_id=None):
    return client.post("/monthly/highlights", data={
        "scope": scope, "id": target_id or s.world.ca, "month": s.period.code, "item": item_id})


def chosen_ids(app, s, scope="community"):
    with app.app_context():
        column = MonthlyHighlight.community_id if scope == "community" else \
            MonthlyHighlight.street_id
        return list(db.session.execute(
            db.select(MonthlyHighlight.item_id).where(column == (s.world.ca if scope ==
                                                                 "community" else s.street))
            .order_by(MonthlyHighlight.position)).scalars())


def make_eligible(app, s, n) -> list[int]:
    """n more items of A1 verified last month with before and after photos."""
    with app.app_context():
        get = db.session.get
        form, window = hazard_form(), app.config["VERIFY_WINDOW"]
        vol, a1 = get(User, s.world.vol_a), get(Compound, s.world.a1)
        out = []
        for i in range(n):
            at = s.start + timedelta(days=16, hours=i)
            item = svc.report(form=form, compound=a1, reporter=vol, clean={
                "category": "flyers", "building": a1.buildings[0].id, "floor": "1",
                "note": "小广告", "extra": {}},
                photos=[save_upload(jpeg_bytes(color=(i * 40, 20, 20)), uploader=vol,
                                    kind="before")], now=at)
            svc.record_presence(vol, a1, at + timedelta(minutes=15))
            svc.act(item, Action.FIX_ON_SPOT, vol, at + timedelta(minutes=20),
                    svc.ActionInput(photos=[save_upload(jpeg_bytes(color=(20, i * 40, 20)),
                                                        uploader=vol, kind="after")]),
                    form=form, window=window)
            out.append(item.id)
        db.session.commit()
        return out


def test_staff_choose_up_to_three_highlights(db_app, month, tmp_path):
    s = month
    client = sign_in(db_app.test_client(), s.world.staff_a)
    page = client.get(f"/monthly/highlights?scope=community&id={s.world.ca}"
                      f"&month={s.period.code}").get_data(as_text=True)
    # Offered: verified last month with a photo before and after; not the one without.
    assert f"/items/{s.verified}" in page and f"/items/{s.on_spot}" in page
    assert f"/items/{s.verified_y}" in page
    assert f"/items/{s.fixed}" not in page
    more = make_eligible(db_app, s, 1)
    for item_id in (s.verified, s.on_spot, s.verified_y):
        assert choose(client, s, item_id).status_code == 302
    assert chosen_ids(db_app, s) == [s.verified, s.on_spot, s.verified_y]
    assert choose(client, s, more[0]).status_code == 302           # a fourth: refused
    assert chosen_ids(db_app, s) == [s.verified, s.on_spot, s.verified_y]
    assert choose(client, s, s.verified).status_code == 302        # again: no duplicate
    assert len(chosen_ids(db_app, s)) == 3
    # Not eligible: not verified, another community, another month.
    for item_id in (s.fixed, s.in_b1, s.before, s.overdue_y):
        assert choose(client, s, item_id).status_code == 404
    with db_app.app_context():
        actions = [a for (a,) in db.session.execute(
            db.select(AuditEntry.action).where(AuditEntry.action.like("monthly_highlight%")))]
        assert actions == ["monthly_highlight.add"] * 3
        first = db.session.execute(db.select(MonthlyHighlight.id).where(
            MonthlyHighlight.item_id == s.verified)).scalar_one()
    # Removing one makes room; the removal is audited.
    r = client.post("/monthly/highlights", data={"scope": "community", "id": s.world.ca,
                                                 "month": s.period.code, "remove": first})
    assert r.status_code == 302
    assert choose(client, s, more[0]).status_code == 302
    assert chosen_ids(db_app, s) == [s.on_spot, s.verified_y, more[0]]
    # The PDF shows the three pairs as thumbnails.
    path = write_pdf(client.get(f"/monthly.pdf?scope=community&id={s.world.ca}"
                                f"&month={s.period.code}").data, tmp_path, "hl")
    sizes = [line.split()[3:5] for line in run("pdfimages", "-list", str(path)).splitlines()[2:]]
    assert len(sizes) == 6 and all(max(int(w), int(h)) <= 320 for w, h in sizes)
    text = run("pdftotext", "-enc", "UTF-8", str(path), "-")
    for item_id in (s.on_spot, s.verified_y, more[0]):
        assert f"编号{item_id}" in re.sub(r"\s+", "", text)


def test_highlight_permissions(db_app, month):
    s = month
    for who in (s.world.vol_a, s.world.mgr_x, s.world.com_a1):
        client = sign_in(db_app.test_client(), who)
        assert choose(client, s, s.verified).status_code == 403
        assert client.get(f"/monthly/highlights?scope=community&id={s.world.ca}"
                          ).status_code == 403
    other = sign_in(db_app.test_client(), s.world.staff_b)
    assert choose(other, s, s.verified).status_code == 404
    # Street staff choose for their street (its own three, apart from the community's).
    street = sign_in(db_app.test_client(), s.street_staff)
    assert choose(street, s, s.verified, "street", s.street).status_code == 302
    assert chosen_ids(db_app, s, "street") == [s.verified]
    assert chosen_ids(db_app, s) == []


def test_highlight_post_needs_the_csrf_token(tmp_path):
    from tests.conftest import make_app
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    s = seed(app)
    client = sign_in(app.test_client(), s.world.staff_a)
    assert choose(client, s, s.verified).status_code == 400
    assert chosen_ids(app, s) == []


def test_no_wall_clock(db_app, month):
    """The pack reads the app's clock only: the same month built twice gives the same."""
    s = month
    a, b = build_pack(db_app, s), build_pack(db_app, s)
    assert a.figures.total == b.figures.total and a.period == b.period
    assert isinstance(a.printed_at, datetime)


def test_a_walk_left_open_counts_with_its_hours_in_the_pack(db_app, month):
    """The pack ends quiet patrols first, as the hours pages do: a walk nobody ended
    counted as a patrol but not its hours, until /hours was opened (review of data out)."""
    s = month
    with db_app.app_context():
        from patrol.models import User
        vol = db.session.get(User, s.world.vol_a)
        at = s.start + timedelta(days=3, hours=1)
        patrol, _started = patrol_service.start(vol, db.session.get(Compound, s.world.a1), at)
        db.session.commit()
        patrol_id = patrol.id
    staff = sign_in(db_app.test_client(), s.world.staff_a)
    page = staff.get(f"/monthly?scope=community&id={s.world.ca}&month={s.period.code}")
    assert page.status_code == 200
    with db_app.app_context():
        from patrol.models import Patrol
        walk = db.session.get(Patrol, patrol_id)
        assert walk.ended_by == "quiet" and walk.ended_at is not None
        assert all(m.minutes is not None for m in walk.members)


def test_time_to_fix_counts_fixes_that_held_and_each_party_its_own():
    """A reopened item's fix did not hold (its stale fixed_at gave the company credit), and
    a volunteer's 立行立改 is in the month's figure but no party's."""
    from patrol.ledger import month_figures
    day = datetime(2026, 11, 2, 9, 0)

    def row(fixed_days, **extra):
        return {"category": "小广告", "party": "物业X", "status": "x", "reported_at": day,
                "fixed_at": day + timedelta(days=fixed_days), **extra}

    out = month_figures([row(2), row(5, fix_holds=False), row(0.01, fixed_on_spot=True)])
    assert sorted(out.fix_days) == [0.0, 2.0]
    assert out.fix_days_by_company == {"物业X": [2.0]}
    assert sorted(out.fix_days_by_category["小广告"]) == [0.0, 2.0]
