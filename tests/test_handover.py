"""Handing a compound to another company (物业更换, services/handover.py): items before, at
and after the date, each choice for the open ones (passed on / closed), ratings, weekly
lists, scorecards, both managers' access, contract periods, refusals, audit and the page."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from patrol import lifecycle, permissions, scoring
from patrol.extensions import db
from patrol.lifecycle import Action, Status
from patrol.models import AuditEntry, Company, Compound, Contract, Item, ItemEvent, User
from patrol.services import handover, ratings, weekly
from patrol.services import items as svc
from patrol.services.items import ActionInput
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes
from tests.test_migrations import ENGINES, empty_app  # noqa: F401  (fixture)

TZ = "Asia/Shanghai"
DAY = date(2026, 11, 18)                          # the effective date (local)
AT = handover.start_of(DAY, TZ)                   # its first moment, naive UTC
WINDOW = timedelta(hours=2)
H, D = timedelta(hours=1), timedelta(days=1)


def _u(i):
    return db.session.get(User, i)


def _report(w, compound_id, at, who=None, category="flying_wire"):
    vol = _u(who or w.vol_a)
    item = svc.report(form=hazard_form(), compound=db.session.get(Compound, compound_id),
                      reporter=vol, clean={"category": category, "extra": {}},
                      photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")], now=at)
    db.session.flush()
    return item


def _act(item, action, who, at, **given):
    svc.act(item, action, _u(who), at, ActionInput(**given), form=hazard_form(), window=WINDOW)
    db.session.flush()


def _history(w):
    """Before the date (October, company X): one never acknowledged, one acknowledged,
    one fixed and awaiting its check, one closed (verified)."""
    t = AT - 31 * D
    items = {name: _report(w, w.a1, t + i * H)
             for i, name in enumerate(("waiting", "acked", "fixed", "done"))}
    for name in ("acked", "fixed", "done"):
        _act(items[name], Action.ACKNOWLEDGE, w.mgr_x, t + 5 * H)
    for name in ("fixed", "done"):
        photo = save_upload(jpeg_bytes(), uploader=_u(w.mgr_x), kind="after")
        _act(items[name], Action.FIX, w.mgr_x, t + 10 * H, note="修好了", photos=[photo])
    svc.record_presence(_u(w.vol_a), db.session.get(Compound, w.a1), t + 11 * H)
    photo = save_upload(jpeg_bytes(), uploader=_u(w.vol_a), kind="after")
    _act(items["done"], Action.VERIFY, w.vol_a, t + 11 * H + 10 * 60 * timedelta(seconds=1),
         photos=[photo], rating=4)
    db.session.commit()
    return {k: v.id for k, v in items.items()}


def _hand_over(w, *, when=AT, choice="transfer", choices=None, to=None, day=DAY, who=None):
    done = handover.hand_over(db.session.get(Compound, w.a1), db.session.get(Company, to or w.y),
                              day, actor=_u(who or w.staff_a), now=when, tz=TZ,
                              default_choice=choice, choices=choices)
    db.session.commit()
    return done


OPEN_BEFORE = ("waiting", "acked", "fixed")


@pytest.mark.parametrize("choice", ["transfer", "close"])
def test_handover_items_figures_and_access(db_app, choice):
    with db_app.app_context():
        w = build_world()
        before = _history(w)
        done = _hand_over(w, choice=choice)
        at_item = _report(w, w.a1, AT).id                 # at the handover
        after_item = _report(w, w.a1, AT + D).id          # a day later
        db.session.commit()
        now = AT + 2 * D
        compound = db.session.get(Compound, w.a1)
        assert compound.company_id == w.y

        # Items keep the company they were reported for.
        for name, item_id in before.items():
            assert db.session.get(Item, item_id).company_id == w.x, name
        assert db.session.get(Item, at_item).company_id == w.y
        assert db.session.get(Item, after_item).company_id == w.y

        # Every open item of the old company is closed as handed over; the closed one is not touched.
        for name in OPEN_BEFORE:
            item = db.session.get(Item, before[name])
            assert item.status == Status.HANDED_OVER.value and item.closed_at == AT, name
            last = item.events[-1]
            assert (last.action, last.from_status, last.to_status) == (
                "hand_over", {"waiting": "reported", "acked": "acknowledged",
                              "fixed": "fixed"}[name], "handed_over")
            assert last.reason == handover.REASONS[choice]
            assert last.data["to_company_id"] == w.y and last.data["choice"] == choice
            assert lifecycle.allowed_actions(item.status, "manager") == []
        assert db.session.get(Item, before["done"]).status == Status.VERIFIED.value

        # Passed on: one new item each for the new company, reported at the handover,
        # its history naming the item it continues (and the old one naming it).
        successors = db.session.execute(
            db.select(Item).where(Item.compound_id == w.a1, Item.company_id == w.y,
                                  Item.id.not_in([at_item, after_item]))).scalars().all()
        if choice == "transfer":
            assert len(successors) == 3 and len(done.transferred) == 3 and not done.closed
            for old, new in done.transferred:
                assert new.status == "reported" and new.created_at == AT
                assert new.events[0].data["transferred_from"] == old.id
                assert old.events[-1].data["successor"] == new.id
                assert [p.key for p in new.photos] == [p.key for p in old.photos
                                                       if p.kind == "before"]
                assert (new.category, new.building_id, new.note) == (
                    old.category, old.building_id, old.note)
        else:
            assert successors == [] and len(done.closed) == 3 and not done.transferred

        # Contract periods: X until the date, Y from it.
        periods = [(c.company_id, c.starts_on, c.ends_on) for c in handover.contracts(compound)]
        assert periods == [(w.x, None, DAY), (w.y, DAY, None)]

        # Ratings and scorecards: October stays X's (with the handed-over items in it),
        # November is Y's; the handed-over items count for X.
        october, november = scoring.Period(2026, "month", 10), scoring.Period(2026, "month", 11)
        rated = ratings.rate_period(october, now=now)
        x_oct = rated.of(w.x)
        assert {f.id for f in x_oct.facts} == set(before.values())
        assert {f.id for f in x_oct.facts if f.counted} == set(before.values())
        assert rated.of(w.y) is None or rated.of(w.y).items == 0
        waiting = next(f for f in x_oct.facts if f.id == before["waiting"])
        assert waiting.status == "handed_over" and waiting.ack_waiting and waiting.fix_waiting
        nov = ratings.rate_period(november, now=now)
        assert nov.of(w.x) is None or nov.of(w.x).items == 0
        assert nov.of(w.y).items == 2 + (3 if choice == "transfer" else 0)
        x_chart = {c.code: c for c in ratings.monthly(w.x, november, months=2, now=now)}
        y_chart = {c.code: c for c in ratings.monthly(w.y, november, months=2, now=now)}
        assert _count(x_chart["2026-10"]) == 4 and _count(x_chart["2026-11"]) == 0
        assert _count(y_chart["2026-10"]) == 0
        assert _count(y_chart["2026-11"]) == 2 + (3 if choice == "transfer" else 0)

        # Weekly lists: the week before the handover is X's; in the handover's week the
        # handed-over items are closed (off the list) and Y has its items.
        x, y = db.session.get(Company, w.x), db.session.get(Company, w.y)
        form = hazard_form()
        old_week = weekly.Week.containing(AT - 31 * D, TZ)
        listed = _listed(weekly.build("company", x, old_week, now=now, tz=TZ, form=form))
        assert listed == set(before.values())
        assert _listed(weekly.build("company", y, old_week, now=now, tz=TZ, form=form)) == set()
        this_week = weekly.Week.containing(AT, TZ)
        assert _listed(weekly.build("company", x, this_week, now=now, tz=TZ, form=form)) == set()
        y_listed = _listed(weekly.build("company", y, this_week, now=now, tz=TZ, form=form))
        assert y_listed == {at_item, after_item} | {n.id for _, n in done.transferred}
        # The week just before the handover, printed today, still shows X's open items.
        last_week = this_week.previous()
        assert _listed(weekly.build("company", x, last_week, now=now, tz=TZ, form=form)) == {
            before[n] for n in OPEN_BEFORE}

        # Access: X's manager loses the compound but reads its own past items; Y's sees
        # the compound and the items from the date, not X's.
        mgr_x, mgr_y = _u(w.mgr_x), _u(w.mgr_y)
        assert not permissions.can_see_compound(mgr_x, compound)
        assert permissions.can_see_compound(mgr_y, compound)
        for item_id in before.values():
            item = db.session.get(Item, item_id)
            assert permissions.can_see_item(mgr_x, item)
            assert not permissions.can_see_item(mgr_y, item)
            assert lifecycle.allowed_actions(item.status, mgr_x.role) == []
        for item_id in [at_item, after_item, *(n.id for _, n in done.transferred)]:
            item = db.session.get(Item, item_id)
            assert not permissions.can_see_item(mgr_x, item)
            assert permissions.can_see_item(mgr_y, item)
            assert permissions.can_act_on_item(mgr_y, item)
        visible_x = set(db.session.execute(db.select(Item.id).where(
            permissions.item_filter(mgr_x, Item), Item.compound_id == w.a1)).scalars())
        assert visible_x == set(before.values())
        assert w.a1 not in set(db.session.execute(db.select(Compound.id).where(
            permissions.compound_filter(mgr_x, Compound))).scalars())

        # Audit: one row for the act.
        entry = db.session.execute(db.select(AuditEntry).where(
            AuditEntry.action == "compound.handover")).scalar_one()
        assert entry.actor_id == w.staff_a and entry.object_id == w.a1
        assert entry.before == {"company_id": w.x} and entry.after["company_id"] == w.y
        assert entry.after["effective_on"] == DAY.isoformat()

    # The same through the pages (SQLite and PostgreSQL alike).
    client = db_app.test_client()
    sign_in(client, w.mgr_x)
    assert client.get(f"/compounds/{w.a1}").status_code == 403
    assert client.get(f"/items/{before['waiting']}").status_code == 200
    assert client.get(f"/items/{at_item}").status_code == 403
    refused = client.post(f"/items/{before['waiting']}/act", data={"action": "acknowledge"})
    assert refused.status_code in (403, 409, 422)
    with db_app.app_context():
        assert db.session.get(Item, before["waiting"]).status == "handed_over"
    sign_in(client, w.mgr_y)
    assert client.get(f"/compounds/{w.a1}").status_code == 200
    assert client.get(f"/items/{at_item}").status_code == 200
    assert client.get(f"/items/{before['waiting']}").status_code == 403


def _count(month):
    return month.reported


def _listed(report):
    return {e.item.id for e in report.entries}


def test_a_choice_per_item(app, world):
    with app.app_context():
        w = world
        before = _history(w)
        done = _hand_over(w, choice="close", choices={before["acked"]: "transfer"})
        assert [old.id for old, _ in done.transferred] == [before["acked"]]
        assert sorted(i.id for i in done.closed) == sorted([before["waiting"], before["fixed"]])
        assert db.session.get(Item, before["fixed"]).events[-1].reason == "closed_at_handover"


def test_recorded_after_the_date(app, world):
    """The usual case: staff record on the day (or later) a handover that took effect
    at midnight; the new item is reported when it is recorded."""
    with app.app_context():
        before = _history(world)
        when = AT + 9 * H
        done = _hand_over(world, when=when)
        assert {new.created_at for _, new in done.transferred} == {when}
        assert db.session.get(Item, before["waiting"]).closed_at == when


def test_refusals_change_nothing(app, world):
    with app.app_context():
        w = world
        before = _history(w)
        late = _report(w, w.a1, AT + H).id   # reported for X after the date
        db.session.commit()
        cases = [
            (dict(day=DAY), "items", "reported_after"),
            (dict(day=DAY + D), "effective_on", "future"),
            (dict(day=DAY, to=w.x), "company", "same"),
            (dict(day=DAY, who=w.staff_b), "actor", "forbidden"),
            (dict(day=DAY, who=w.mgr_x), "actor", "forbidden"),
            (dict(day=DAY, choice="maybe"), "choice", "bad_choice"),
        ]
        for kwargs, key, code in cases:
            with pytest.raises(handover.HandoverInvalid) as err:
                _hand_over(w, when=AT + 2 * H, **kwargs)
            assert err.value.errors.get(key) == code, kwargs
            db.session.rollback()
        assert db.session.get(Compound, w.a1).company_id == w.x
        assert db.session.execute(db.select(Contract)).first() is None
        assert db.session.get(Item, late).status == "reported"
        assert db.session.get(Item, before["waiting"]).status == "reported"
        # The day after the late item: accepted; it was X's and is handed over too.
        done = _hand_over(w, when=AT + 2 * D, day=DAY + D)
        assert late in [old.id for old, _ in done.transferred]
        # A second handover cannot start on or before the current period's start.
        with pytest.raises(handover.HandoverInvalid) as err:
            _hand_over(w, when=AT + 2 * D, day=DAY + D, to=w.x)
        assert err.value.errors == {"effective_on": "before_period"}


def test_the_generic_action_endpoint_cannot_hand_over(app, world):
    """hand_over needs a recorded handover (Evidence.HANDOVER), which only the service has."""
    with app.app_context():
        item = _report(world, world.a1, AT - D)
        db.session.commit()
        with pytest.raises(lifecycle.TransitionError) as err:
            _act(item, Action.HAND_OVER, world.staff_a, AT)
        assert err.value.code == "missing_evidence" and "handover" in err.value.detail


def test_the_staff_page(app, world):
    with app.app_context():
        before = _history(world)
    client = app.test_client()
    url = f"/compounds/{world.a1}/handover"
    for who, status in ((world.vol_a, 403), (world.mgr_x, 403), (world.com_a1, 403),
                        (world.staff_b, 404)):
        sign_in(client, who)
        assert client.get(url).status_code == status, who
        assert client.post(url, data={"company_id": world.y}).status_code == status, who
    sign_in(client, world.staff_a)
    page = client.get(url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "物业更换" in text and 'name="viewport"' in text
    assert f'name="choice_{before["acked"]}"' in text
    # A refusal answers in Chinese and changes nothing.
    bad = client.post(url, data={"company_id": world.x, "effective_on": DAY.isoformat(),
                                 "choice": "transfer"})
    assert bad.status_code == 422 and "物业" in bad.get_data(as_text=True)
    ok = client.post(url, data={"company_id": world.y, "effective_on": DAY.isoformat(),
                                "choice": "transfer", f"choice_{before['acked']}": "close"})
    assert ok.status_code == 302
    with app.app_context():
        assert db.session.get(Compound, world.a1).company_id == world.y
        assert db.session.get(Item, before["acked"]).events[-1].reason == "closed_at_handover"
        assert db.session.get(Item, before["waiting"]).events[-1].reason == "transferred"
    assert "物业更换" in client.get(ok.headers["Location"]).get_data(as_text=True)


def test_the_command(app, world):
    with app.app_context():
        _history(world)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["handover", "--compound", "小区A1", "--to", "物业Y", "--date",
                                 DAY.isoformat(), "--open-items", "close", "--by", "staff_a"])
    assert result.exit_code == 0, result.output
    assert "3 closed" in result.output
    with app.app_context():
        assert db.session.get(Compound, world.a1).company_id == world.y
    again = runner.invoke(args=["handover", "--compound", "小区A1", "--to", "物业Y", "--date",
                                DAY.isoformat(), "--by", "staff_a"])
    assert again.exit_code != 0 and "same" in again.output


def test_a_compound_without_a_company(app, world):
    """Its items were nobody's: handed to a company, the open ones are passed on (or
    closed) the same way, and its first contract period starts on the date."""
    with app.app_context():
        compound = db.session.get(Compound, world.a1)
        compound.company_id = None
        db.session.commit()
        orphan = _report(world, world.a1, AT - D)
        db.session.commit()
        assert orphan.company_id is None
        done = _hand_over(world)
        assert [old.id for old, _ in done.transferred] == [orphan.id]
        assert done.transferred[0][1].company_id == world.y
        periods = [(c.company_id, c.starts_on, c.ends_on)
                   for c in handover.contracts(db.session.get(Compound, world.a1))]
        assert periods == [(world.y, DAY, None)]
        assert permissions.can_see_compound(_u(world.mgr_y), db.session.get(Compound, world.a1))


@pytest.mark.parametrize("empty_app", ENGINES, indirect=True)
def test_downgrading_refuses_while_an_item_was_handed_over(empty_app):
    """The schema before e4b7a1c9d2f6 has no word for it: refuse, keep every row."""
    app, _ = empty_app
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    w = build_world()
    _report(w, w.a1, AT - D)
    db.session.commit()
    _hand_over(w)
    db.session.remove()
    result = runner.invoke(args=["db", "downgrade", "d8e4b6c1a9f2"])
    assert result.exit_code != 0
    assert "handed over" in (result.output + str(result.exception))
    assert db.session.scalar(db.select(db.func.count()).select_from(ItemEvent).where(
        ItemEvent.action == "hand_over")) == 1
    assert db.session.get(Compound, w.a1).company_id == w.y


def test_an_item_acted_on_during_the_handover_is_a_worded_refusal(app, world, monkeypatch):
    """A manager acknowledges an open item between the handover's reading of the open
    items and its writing them (PostgreSQL lets that commit in between): it was a 500.
    Simulated by bumping an item's version in the same transaction, after the read."""
    with app.app_context():
        before = _history(world)
    read = handover.open_items

    def read_then_changed(compound):
        items = read(compound)
        db.session.execute(db.text("UPDATE item SET version = version + 1 WHERE id = :id"),
                           {"id": before["waiting"]})
        return items

    monkeypatch.setattr(handover, "open_items", read_then_changed)
    client = sign_in(app.test_client(), world.staff_a)
    url = f"/compounds/{world.a1}/handover"
    page = client.post(url, data={"company_id": world.y, "effective_on": DAY.isoformat(),
                                  "choice": "transfer"})
    assert page.status_code == 409 and "请核对清单后重新办理" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Compound, world.a1).company_id == world.x    # nothing changed
