"""Item tallies (models/counts.py, services/counts.py) and the list pages' keyset pages
(issue 15 §4): the tallies equal a GROUP BY of the items after every kind of change, on
SQLite and PostgreSQL; the figures the overview and the inbox read from them equal a
direct count for every filter, date range and instant; a list paged by cursor returns
every row exactly once, ties in the sort key included."""
from __future__ import annotations

import random
import re
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from patrol import permissions
from patrol.extensions import db
from patrol.lifecycle import OWED, RULES, Action, Status, TransitionError
from patrol.models import (Company, Compound, Department, Item, ItemTally, ItemTallyDay, User,
                           utcnow)
from patrol.models.counts import ItemTallyDayDue
from patrol.services import counts as tallies
from patrol.services import escalation, handover
from patrol.services import items as svc
from patrol.services import residents
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

WINDOW = timedelta(hours=2)
TZ = "Asia/Shanghai"
H, D = timedelta(hours=1), timedelta(days=1)
CATEGORIES = ("flying_wire", "fire_exit", "blocked_passage")


def _u(i):
    return db.session.get(User, i)


TALLIES = (ItemTally, ItemTallyDay, ItemTallyDayDue)


def recount() -> tuple[Counter, Counter, Counter]:
    """What the tallies must hold: each item's keys counted afresh (in Python, from the
    item table, independent of the listener)."""
    want: tuple[Counter, Counter, Counter] = (Counter(), Counter(), Counter())
    for row in db.session.execute(select(*[getattr(Item, a) for a in tallies.KEY_ATTRS])):
        for counter, key in zip(want, tallies._keys(dict(zip(tallies.KEY_ATTRS, row,
                                                              strict=True))), strict=True):
            if key is not None:
                counter[key] += 1
    return want


def stored() -> tuple[Counter, Counter, Counter]:
    def read(model):
        cols = [getattr(model, c) for c in tallies.KEY_COLUMNS[model]]
        return Counter({tuple(r[:-1]): r[-1] for r in db.session.execute(
            select(*cols, model.n)) if r[-1]})
    return tuple(read(model) for model in TALLIES)


def assert_tallies_match(what=""):
    db.session.expire_all()
    have, want = stored(), recount()
    for model, h, w in zip(TALLIES, have, want, strict=True):
        assert h == w, f"{model.__tablename__} differs after {what}"
        assert all(n >= 0 for n in h.values())
    # The overdue figure of the date filter reads the due days' rows as a part of the
    # day's: every owed item is in both.
    day, due = have[1], have[2]
    owed = Counter()
    for (community, _due, d, compound, company, status, category), n in due.items():
        owed[(community, d, compound, company, status, category)] += n
    assert owed == Counter({k: n for k, n in day.items() if k[4] in tallies.OWED_VALUES})


def _categories():
    codes = [c["code"] for c in hazard_form().categories]
    return [c for c in CATEGORIES if c in codes] or codes[:3]


# --- the tallies after every kind of change -------------------------------------------------

def test_tallies_follow_a_random_walk_of_every_transition(db_app):
    """Report, acknowledge, fix, verify, reopen, reject, merge, route, extend, fix on the
    spot, resident acceptance, and a hand-over, in a random order over random items:
    after each commit (or refusal) the tallies equal a GROUP BY of the items."""
    rng = random.Random(15)
    with db_app.app_context():
        w = build_world()
        dept = Department(name="供水A", kind="water", community_id=w.ca)
        db.session.add(dept)
        db.session.flush()
        dept_user = User(username="dept_a", display_name="dept_a", role="department",
                         department_id=dept.id)
        db.session.add(dept_user)
        db.session.commit()
        form, cats = hazard_form(), _categories()
        t = handover.start_of(date(2026, 11, 18), TZ) - 6 * D
        kinds, refusals = Counter(), Counter()

        def photos(user):
            return [save_upload(jpeg_bytes(color=(rng.randrange(256), 40, 40)), uploader=user,
                                kind="after")]

        def act(item, action, user, at, **given):
            svc.act(item, action, user, at, svc.ActionInput(**given), form=form,
                    window=WINDOW)

        def report(at):
            vol = _u(w.vol_a)
            compound = db.session.get(Compound, rng.choice((w.a1, w.a2)))
            svc.report(form=form, compound=compound, reporter=vol,
                       clean={"category": rng.choice(cats), "extra": {}},
                       photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")], now=at)

        def accept_resident(at):
            compound = db.session.get(Compound, w.a1)
            values = {"category": rng.choice(cats),
                      "building": str(compound.buildings[0].id), "note": "楼道堆物",
                      "phone": "138 0013 8000"}
            out = residents.submit(
                compound, values, [residents.Upload("p.jpg", jpeg_bytes())],
                f"device-{rng.getrandbits(40):012x}", "127.0.0.1", at,
                residents.Limits(device_limit=99, max_photos=3, secret="test-secret"),
                form=form)
            db.session.commit()
            residents.accept(out.report, _u(w.staff_a), at, form)

        def responsible(item):
            if item.department_id:
                return dept_user
            return _u(w.mgr_x if item.company_id == w.x else w.mgr_y)

        def step(at):
            items = db.session.execute(select(Item)).scalars().all()
            kind = rng.choice(["report", "acknowledge", "fix", "verify", "reopen", "reject",
                               "merge", "route", "extend", "fix_on_spot", "resident",
                               "acknowledge", "fix", "route_back"])
            if kind == "report" or not items:
                report(at)
                return "report"
            if kind == "resident":
                accept_resident(at)
                return "resident"
            action_of = {"acknowledge": Action.ACKNOWLEDGE, "fix": Action.FIX,
                         "verify": Action.VERIFY, "reopen": Action.REOPEN,
                         "reject": Action.REJECT, "merge": Action.MERGE, "route": Action.ROUTE,
                         "route_back": Action.ROUTE, "extend": Action.EXTEND_DEADLINE,
                         "fix_on_spot": Action.FIX_ON_SPOT}
            # Mostly items the action applies to (lifecycle.RULES), sometimes any: a
            # refusal must change nothing either.
            sources = {s.value for s in RULES[action_of[kind]].sources}
            fitting = [i for i in items if i.status in sources]
            item = rng.choice(fitting if fitting and rng.random() < 0.85 else items)
            vol, staff = _u(w.vol_a), _u(w.staff_a)
            if kind == "acknowledge":
                act(item, Action.ACKNOWLEDGE, responsible(item), at,
                    deadline=at + rng.choice((6, 30, 80)) * H)
            elif kind == "fix":
                who = responsible(item)
                act(item, Action.FIX, who, at, note="修好了", photos=photos(who))
            elif kind in ("verify", "reopen", "fix_on_spot"):
                svc.record_presence(vol, item.compound, at - 10 * timedelta(minutes=1))
                action = {"verify": Action.VERIFY, "reopen": Action.REOPEN,
                          "fix_on_spot": Action.FIX_ON_SPOT}[kind]
                act(item, action, vol, at, photos=photos(vol), reason="not_fixed",
                    rating=4)
            elif kind == "reject":
                act(item, Action.REJECT, staff, at, reason="not_a_hazard")
            elif kind == "merge":
                others = [o for o in items if o.id != item.id
                          and o.compound_id == item.compound_id and o.status in
                          {s.value for s in OWED} | {"fixed"}]
                if not others:
                    return None
                act(item, Action.MERGE, staff, at, target_id=rng.choice(others).id)
            elif kind == "route":
                act(item, Action.ROUTE, staff, at, department_id=dept.id,
                    reason="department_duty")
            elif kind == "route_back":
                act(item, Action.ROUTE, staff, at, to_company=True, reason="company_duty")
            elif kind == "extend":
                act(item, Action.EXTEND_DEADLINE, staff, at, deadline=at + 5 * D,
                    reason="needs_materials")
            return kind

        for i in range(90):
            at = t + i * 50 * timedelta(minutes=1)
            try:
                kind = step(at)
                db.session.commit()
                if kind:
                    kinds[kind] += 1
            except TransitionError as err:
                db.session.rollback()
                kind = "refused"
                refusals[err.code] += 1
            assert_tallies_match(f"step {i} ({kind})")
        # A hand-over: the open items of A1 closed (handed_over), successors for company Y.
        at = handover.start_of(date(2026, 11, 18), TZ)
        handover.hand_over(db.session.get(Compound, w.a1), db.session.get(Company, w.y),
                           date(2026, 11, 18), actor=_u(w.staff_a), now=at, tz=TZ,
                           default_choice=handover.TRANSFER)
        db.session.commit()
        assert_tallies_match("hand-over")
        assert db.session.execute(select(db.func.count()).select_from(Item).where(
            Item.status == Status.HANDED_OVER.value)).scalar_one() > 0
        # Every kind of change happened at least once (the walk is fixed by its seed).
        for kind in ("report", "acknowledge", "fix", "verify", "reject", "merge", "route",
                     "resident"):
            assert kinds[kind] > 0, (kind, kinds, refusals)
        # A deleted item leaves the tallies too.
        victim = db.session.execute(select(Item).where(~Item.events.any())).scalars().first()
        if victim is not None:
            db.session.delete(victim)
            db.session.commit()
            assert_tallies_match("delete")


def test_a_change_the_listener_missed_is_caught(app, world):
    """The check can fail: a status written behind the ORM's back leaves the tallies
    stale, and the comparison says so; `rebuild` puts them right."""
    with app.app_context():
        _seed_items(world, random.Random(1), 20, utcnow())
        assert_tallies_match("seeding")
        db.session.execute(db.update(Item).where(Item.status != "verified")
                           .values(status="verified"))
        db.session.commit()
        with pytest.raises(AssertionError):
            assert_tallies_match("a Core UPDATE")
        with db.engine.begin() as conn:
            tallies.rebuild(conn)
        assert_tallies_match("rebuild")


# --- the figures the pages read ----------------------------------------------------------

def _seed_items(w, rng, n, now):
    """Items straight through the ORM (the listener keeps the tallies), with created and
    deadline times scattered over days around `now` and every status."""
    statuses = [s.value for s in Status if s != Status.MERGED]
    compounds = [db.session.get(Compound, c) for c in (w.a1, w.a2, w.b1)]
    cats = _categories()
    for i in range(n):
        compound = rng.choice(compounds)
        created = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 12))
        deadline = None if rng.random() < 0.1 else \
            created + timedelta(minutes=rng.randrange(30, 60 * 24 * 8))
        status = rng.choice(statuses)
        fixed_at = created + timedelta(minutes=rng.randrange(10, 60 * 24 * 3)) \
            if status in ("fixed", "verified") and rng.random() < 0.95 else None
        db.session.add(Item(compound_id=compound.id, community_id=compound.community_id,
                            company_id=compound.company_id, category=rng.choice(cats),
                            form_id="hazard", form_version=1, status=status,
                            reporter_id=w.vol_a, created_at=created, updated_at=created,
                            deadline=deadline, fixed_at=fixed_at))
        if i % 50 == 49:
            db.session.commit()
    db.session.commit()


def _direct(scope, conds, now, since, until, overdue_only):
    overdue = Item.status.in_(tallies.OWED_VALUES) & (Item.deadline < now)
    where = [scope(Item), *conds(Item)]
    if since:
        where.append(Item.created_at >= since)
    if until:
        where.append(Item.created_at < until)
    if overdue_only:
        where.append(overdue)
    return sorted((s, c, n, o) for s, c, n, o in db.session.execute(
        select(Item.status, Item.category, db.func.count(),
               db.func.count(db.case((overdue, 1))))
        .where(*where).group_by(Item.status, Item.category)))


def test_figures_equal_a_direct_count(db_app):
    rng = random.Random(7)
    with db_app.app_context():
        w = build_world()
        now = utcnow()
        _seed_items(w, rng, 400, now)
        users = [_u(w.staff_a), _u(w.mgr_x), _u(w.admin)]
        cats = _categories()
        for trial in range(60):
            user = rng.choice(users)
            scope = lambda M, user=user: permissions.item_filter(user, M)  # noqa: E731
            f_status = rng.choice([None, "open", "reported", "fixed", "verified"])
            f_cat = rng.choice([None, *cats])
            f_compound = rng.choice([None, w.a1])

            def conds(M, f_status=f_status, f_cat=f_cat, f_compound=f_compound):
                out = []
                if f_status == "open":
                    out.append(M.status.in_(["reported", "acknowledged", "fixed",
                                             "reopened"]))
                elif f_status:
                    out.append(M.status == f_status)
                if f_cat:
                    out.append(M.category == f_cat)
                if f_compound:
                    out.append(M.compound_id == f_compound)
                return out
            since = until = None
            if trial % 3:
                # Part-days at both ends, whole days, one day, empty ranges, open ends.
                since = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 13))
                until = since + timedelta(minutes=rng.randrange(0, 60 * 24 * 9))
                if trial % 7 == 0:
                    since = None
                elif trial % 5 == 0:
                    until = None
                elif trial % 4 == 0:
                    since = tallies.day_start(since.date())
                    until = tallies.day_start(until.date())
            at = now + timedelta(minutes=rng.randrange(-60 * 24 * 2, 60 * 24 * 3))
            # Fixes waiting past their look-back limit (the overview's figure).
            before = at - timedelta(minutes=rng.randrange(0, 60 * 24 * 4))
            assert tallies.lookback_late(db.session, scope, before) == \
                db.session.execute(select(db.func.count()).select_from(Item).where(
                    scope(Item), escalation.lookback_late_cond(before, timedelta(0)))
                ).scalar_one(), (trial, before)
            for overdue_only in (False, True):
                got = sorted(tallies.figures(db.session, scope, conds, at, since=since,
                                             until=until, overdue_only=overdue_only))
                want = _direct(scope, conds, at, since, until, overdue_only)
                assert got == want, (trial, since, until, at, overdue_only)
        # Ranges that end later than `at` (a filter "until today"): the last day comes from
        # its tally less the items dated after `until`; with `at` in the past, the items
        # made between `at` and now stand for items dated ahead of the clock.
        scope = lambda M: permissions.item_filter(_u(w.staff_a), M)  # noqa: E731
        for trial in range(24):
            at = now + timedelta(minutes=rng.randrange(-60 * 24 * 2, 60 * 12))
            until = at + timedelta(minutes=rng.randrange(0, 60 * 30))
            since = None if trial % 4 == 0 else \
                until - timedelta(minutes=rng.randrange(0, 60 * 24 * 10))
            for overdue_only in (False, True):
                got = sorted(tallies.figures(db.session, scope, lambda M: [], at,
                                             since=since, until=until,
                                             overdue_only=overdue_only))
                want = _direct(scope, lambda M: [], at, since, until, overdue_only)
                assert got == want, ("ahead", trial, since, until, at, overdue_only)


# --- keyset pages ---------------------------------------------------------------------------

ITEM_LINK = re.compile(r'href="/items/(\d+)"')
NEXT = re.compile(r'<a class="btn" rel="next" href="([^"]+)"')
PREV = re.compile(r'<a class="btn" rel="prev" href="([^"]+)"')


def _walk(client, url, pattern):
    pages, seen = [], []
    while url:
        html = client.get(url).get_data(as_text=True)
        ids = [int(i) for i in dict.fromkeys(ITEM_LINK.findall(html))]
        pages.append(ids)
        seen += ids
        m = pattern.search(html)
        url = m.group(1).replace("&amp;", "&") if m else None
        assert len(pages) < 50, "the pager never ends"
    return pages, seen


@pytest.mark.parametrize("who,start,order", [
    ("staff_a", "/overview", "created"),
    ("staff_a", "/overview?category=fire_exit", "created"),
    ("mgr_x", "/inbox?tab=new", "updated"),
    ("mgr_x", "/inbox?tab=overdue", "deadline"),
])
def test_keyset_pages_return_every_row_once_with_ties(db_app, who, start, order):
    """Many items share their sort key (same minute): walking the pages by their "next"
    links returns each exactly once and in order, and "previous" walks back the same
    pages."""
    with db_app.app_context():
        w = build_world()
        db_app.config["PAGE_SIZE"] = 7
        now = utcnow()
        compounds = [db.session.get(Compound, c) for c in (w.a1, w.a2)]
        stamps = [now - 3 * D, now - 2 * D, now - 2 * D, now - D]   # ties
        for i in range(40):
            compound = compounds[i % 2]
            at = stamps[i % 4]
            db.session.add(Item(compound_id=compound.id, community_id=compound.community_id,
                                company_id=compound.company_id,
                                category="fire_exit" if i % 3 else "flying_wire",
                                form_id="hazard", form_version=1, status="reported",
                                reporter_id=w.vol_a, created_at=at, updated_at=at,
                                deadline=at + H))
        db.session.commit()
        user = _u(getattr(w, who))
        expected = db.session.execute(
            select(Item.id).where(permissions.item_filter(user, Item),
                                  *([Item.category == "fire_exit"] if "category" in start
                                    else []))
            .order_by(*({"created": [Item.created_at.desc(), Item.id.desc()],
                         "updated": [Item.updated_at.desc(), Item.id.desc()],
                         "deadline": [Item.deadline.asc(), Item.id.desc()]}[order])))
        expected = list(expected.scalars())
    client = db_app.test_client()
    sign_in(client, getattr(w, who))
    pages, seen = _walk(client, start, NEXT)
    assert seen == expected          # every row once, in the list's order
    assert len(pages) == -(-len(expected) // 7) and len(pages) > 2
    # Back from the last page by "previous": the same pages, in reverse.
    html = client.get(start).get_data(as_text=True)
    url = start
    while (m := NEXT.search(html)):
        url = m.group(1).replace("&amp;", "&")
        html = client.get(url).get_data(as_text=True)
    back, _ = _walk(client, url, PREV)
    assert back == pages[::-1]
    # An old link by page number still gives that page.
    numbered = client.get(start + ("&" if "?" in start else "?") + "page=2").get_data(
        as_text=True)
    assert [int(i) for i in dict.fromkeys(ITEM_LINK.findall(numbered))] == pages[1]
    # A malformed cursor is the first page, not an error.
    assert client.get(start + ("&" if "?" in start else "?") + "after=xyz").status_code == 200


def test_compound_page_numbers_over_both_parts(db_app):
    """The compound page (fixes waiting for the check first, then the rest, newest
    first) by page number: every open item once, in that order."""
    with db_app.app_context():
        w = build_world()
        db_app.config["PAGE_SIZE"] = 6
        now = utcnow()
        compound = db.session.get(Compound, w.a1)
        for i in range(31):
            at = now - (i // 3) * H
            db.session.add(Item(compound_id=compound.id, community_id=compound.community_id,
                                company_id=compound.company_id, category="fire_exit",
                                form_id="hazard", form_version=1,
                                status=("fixed", "reported", "acknowledged", "verified")[i % 4],
                                reporter_id=w.vol_a, created_at=at, updated_at=at))
        db.session.commit()
        awaiting = db.case((Item.status == "fixed", 0), else_=1)
        expected = list(db.session.execute(
            select(Item.id).where(Item.compound_id == w.a1,
                                  Item.status.in_(["reported", "acknowledged", "fixed",
                                                   "reopened"]))
            .order_by(awaiting, Item.created_at.desc(), Item.id.desc())).scalars())
    client = db_app.test_client()
    sign_in(client, w.vol_a)
    seen = []
    for number in range(1, 10):
        html = client.get(f"/compounds/{w.a1}?page={number}").get_data(as_text=True)
        seen += [int(i) for i in dict.fromkeys(ITEM_LINK.findall(html))]
    assert seen == expected
    assert f"({len(expected)})" in client.get(f"/compounds/{w.a1}").get_data(as_text=True)


def test_tallies_hold_after_the_demo_district(app):
    """The demo's history sets keys (a department by routing) on items whose values the
    session had not loaded: the listener must still see the old ones."""
    from patrol.seed import seed_demo
    with app.app_context():
        seed_demo()
        assert_tallies_match("the demo district")


def test_a_key_set_on_an_expired_item_moves_it_from_its_old_key(app, world):
    """After a commit every attribute is expired: a key set without reading it first must
    still take the item from its old key (the columns keep active history)."""
    with app.app_context():
        _seed_items(world, random.Random(2), 6, utcnow())
        db.session.commit()
        items = db.session.execute(select(Item).order_by(Item.id)).scalars().all()
        db.session.commit()                          # expires them
        items[0].company_id = world.y
        items[1].category = "fire_exit" if items[1].category != "fire_exit" else "flying_wire"
        items[2].status = Status.REJECTED.value
        db.session.commit()
        assert_tallies_match("keys set on expired items")
