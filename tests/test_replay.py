"""One replay of an item's history (lifecycle.replay), derived from the transition table:
an action added to lifecycle.RULES is followed by the weekly lists, the scoring and the
ratings without an edit to any of them.

The action added here exists only in these tests: `withdraw_fix`, a property company
taking back a fix it recorded too early (fixed → acknowledged: work is owed again, with
a new deadline carried by the event, as acknowledging carries one).
"""
from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from patrol import lifecycle, scoring
from patrol.lifecycle import Event, Evidence, Role, Rule, Status
from patrol.services import weekly
from patrol.services.weekly import Ev, Week

H = timedelta(hours=1)
D = timedelta(days=1)
TZ = "Asia/Shanghai"
WEEK = Week.parse("2026-W10")
START, END = WEEK.bounds(TZ)


@pytest.fixture
def withdraw_fix(monkeypatch):
    """The table with one more action, added the way a real one would be: a member of
    Action and a Rule in RULES. Nothing else is patched."""
    extended = enum.Enum("Action", [(a.name, a.value) for a in lifecycle.Action]
                         + [("WITHDRAW_FIX", "withdraw_fix")], type=str)
    rules = {extended(a.value): replace(r, action=extended(a.value))
             for a, r in lifecycle.RULES.items()}
    rules[extended.WITHDRAW_FIX] = Rule(
        extended.WITHDRAW_FIX, frozenset({Status.FIXED}), Status.ACKNOWLEDGED,
        frozenset({Role.MANAGER}), frozenset({Evidence.REASON, Evidence.DEADLINE}))
    monkeypatch.setattr(lifecycle, "Action", extended)
    monkeypatch.setattr(lifecycle, "RULES", rules)
    return extended.WITHDRAW_FIX


def history(created, *steps):
    """steps: (time, action[, deadline])."""
    return [Event(created, "report", created + 24 * H),
            *(Event(at, action, *rest) for at, action, *rest in steps)]


def test_the_new_action_is_in_the_table(withdraw_fix):
    outcome = lifecycle.transition(Status.FIXED, "withdraw_fix", Role.MANAGER,
                                   {Evidence.REASON, Evidence.DEADLINE})
    assert outcome.target == Status.ACKNOWLEDGED
    assert withdraw_fix in lifecycle.allowed_actions(Status.FIXED, Role.MANAGER)


def test_replay_takes_the_status_from_the_table(withdraw_fix):
    t = datetime(2026, 3, 1)
    seen = lifecycle.replay(history(t, (t + H, "acknowledge", t + 20 * H), (t + 5 * H, "fix"),
                                    (t + 6 * H, "withdraw_fix", t + 30 * H)))
    assert seen.status == Status.ACKNOWLEDGED and seen.deadline == t + 30 * H
    assert [s for _, s in seen.statuses] == ["reported", "acknowledged", "fixed", "acknowledged"]
    assert seen.first_check is False          # the fix did not stand
    assert seen.acknowledged_at == t + 6 * H and seen.first_acknowledged_at == t + H
    assert seen.first_fix_at == seen.fixed_at == t + 5 * H
    assert seen.status_at(t + 5 * H) == Status.FIXED


def test_without_the_rule_the_event_changes_no_status():
    t = datetime(2026, 3, 1)
    seen = lifecycle.replay(history(t, (t + H, "acknowledge", t + 20 * H), (t + 5 * H, "fix"),
                                    (t + 6 * H, "withdraw_fix", t + 30 * H)))
    assert seen.status == Status.FIXED and seen.first_check is None


def test_scoring_follows_the_new_action(withdraw_fix):
    t = datetime(2026, 7, 1)
    item = scoring.ItemHistory(1, 1, t, tuple(history(
        t, (t + 2 * H, "acknowledge", t + 24 * H), (t + 10 * H, "fix"),
        (t + 12 * H, "withdraw_fix", t + 30 * H))))
    facts = scoring.item_facts(item, t + 48 * H)
    # Owed again after the withdrawal and past the new deadline: overdue; the first
    # check of the fix never came, the fix did not stand.
    assert facts.status == "acknowledged" and facts.counted
    assert facts.overdue and facts.decided and facts.first_check is False
    assert (facts.ack_hours, facts.fix_hours, facts.fix_waiting) == (2, 10, False)
    [figures] = scoring.rate([item], t, t + 30 * D, t + 48 * H, {1: "A"})
    assert (figures.items, figures.overdue, figures.checked, figures.passed) == (1, 1, 1, 0)


def test_weekly_replay_follows_the_new_action(withdraw_fix):
    created = START - 5 * D
    events = [Ev(created, "report", "reported"),
              Ev(created + H, "acknowledge", "acknowledged",
                 {"deadline": (created + 2 * D).isoformat()}),
              Ev(START - 4 * D, "fix", "fixed"),
              Ev(START + D, "withdraw_fix", "acknowledged",
                 {"deadline": (START + 2 * D).isoformat()}),
              # After the week: fixed and withdrawn again, with the deadline stored now.
              Ev(END + H, "fix", "fixed"),
              Ev(END + 2 * H, "withdraw_fix", "acknowledged",
                 {"deadline": (END + 3 * D).isoformat()})]
    state = weekly.replay(events, END, week_start=START, created_at=created, deadline_hours=24,
                          current_deadline=END + 3 * D)
    assert state.status == "acknowledged" and state.deadline == START + 2 * D
    assert lifecycle.is_overdue(state.status, state.deadline, END)
    assert weekly.classify(state, created_at=created, start=START, as_of=END) == "open"
    fixed = weekly.replay(events, START, week_start=START, created_at=created,
                          deadline_hours=24, current_deadline=END + 3 * D)
    assert weekly.classify(fixed, created_at=created, start=START, as_of=START) == "fixed"


def _allow_new_action(db):
    """What the migration for a new action would do: a CHECK on item_event.action lists
    every action, and this one is not in the schema the tests created."""
    from sqlalchemy import text
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(
            "ALTER TABLE item_event DROP CONSTRAINT IF EXISTS ck_item_event_action"))
    else:
        db.session.execute(text("PRAGMA ignore_check_constraints = ON"))


@pytest.mark.date_sensitive
def test_every_reader_follows_the_new_action_through_the_database(db_app, withdraw_fix):
    """Histories written as a service for the new action would write them; the weekly
    list and the ratings read them back from the database."""
    from patrol.display import hazard_form
    from patrol.extensions import db
    from patrol.models import Compound, ItemEvent, User, utcnow
    from patrol.services import items as svc
    from patrol.services import ratings
    from patrol.services.photo_store import save_upload
    from tests.factories import build_world, jpeg_bytes

    with db_app.app_context():
        w = build_world()
        tz = db_app.config["TIMEZONE"]
        now = utcnow()
        week = Week.containing(now, tz).previous()
        start, _ = week.bounds(tz)
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        form, window = hazard_form(), db_app.config["VERIFY_WINDOW"]
        created = start - 3 * D
        item = svc.report(form=form, compound=db.session.get(Compound, w.a1), reporter=vol,
                          clean={"category": "flying_wire", "extra": {}},
                          photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")],
                          now=created)
        svc.act(item, "acknowledge", mgr, created + H, svc.ActionInput(), form=form,
                window=window)
        svc.act(item, "fix", mgr, start - 2 * D, svc.ActionInput(
            note="已处理", photos=[save_upload(jpeg_bytes(), uploader=mgr, kind="after")]),
            form=form, window=window)
        deadline = start + 2 * D
        _allow_new_action(db)
        db.session.add(ItemEvent(item=item, actor_id=mgr.id, at=start + D, action="withdraw_fix",
                                 from_status="fixed", to_status="acknowledged", reason="other",
                                 data={"deadline": deadline.isoformat(timespec="seconds")}))
        item.status, item.deadline, item.updated_at = "acknowledged", deadline, start + D
        db.session.commit()

        report = weekly.build("compound", db.session.get(Compound, w.a1), week, now=now,
                              tz=tz, form=form)
        [entry] = report.sections["open"]
        assert entry.item.id == item.id and entry.overdue
        assert entry.state.status == "acknowledged" and entry.state.deadline == deadline
        assert not report.sections["fixed"]

        local = created.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).date()
        period = scoring.Period.containing(local, "month")
        rated = ratings.rate_period(period, names={w.x: "物业X"}, now=now)
        [facts] = [f for f in rated.of(w.x).facts if f.id == item.id]
        assert facts.status == "acknowledged" and facts.overdue
        assert facts.first_check is False and not facts.fix_waiting
