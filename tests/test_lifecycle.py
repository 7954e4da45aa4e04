"""The transition table, every (state, action, role) combination, with no app running."""
from datetime import datetime, timedelta
from itertools import product

import pytest

from patrol.lifecycle import (Action, Evidence, Role, Status, TransitionError, allowed_actions,
                              check_extension, clamp_deadline, is_ack_late, is_due_soon,
                              is_escalated, is_overdue, presence_valid, transition)

S, A, R, E = Status, Action, Role, Evidence

# Written out by hand from the issue, independently of lifecycle.RULES:
# action: (from-states, roles, to-state, evidence needed); to-state None = stays the same
OWED_ = {S.REPORTED, S.ACKNOWLEDGED, S.REOPENED}
OPEN_ = {S.REPORTED, S.ACKNOWLEDGED, S.FIXED, S.REOPENED}
EXPECTED = {
    # The responsible party: the company's managers, or the department it was routed to.
    A.ACKNOWLEDGE: ({S.REPORTED, S.REOPENED}, {R.MANAGER, R.DEPARTMENT}, S.ACKNOWLEDGED,
                    {E.DEADLINE}),
    A.FIX: ({S.ACKNOWLEDGED, S.REOPENED}, {R.MANAGER, R.DEPARTMENT}, S.FIXED, {E.NOTE, E.PHOTO}),
    A.VERIFY: ({S.FIXED}, {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, S.VERIFIED, {E.PHOTO, E.PRESENCE}),
    A.REOPEN: ({S.FIXED}, {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, S.REOPENED,
               {E.REASON, E.PHOTO, E.PRESENCE}),
    A.REJECT: ({S.REPORTED, S.ACKNOWLEDGED, S.REOPENED}, {R.STAFF, R.STREET_STAFF, R.ADMIN}, S.REJECTED,
               {E.REASON}),
    A.MERGE: ({S.REPORTED, S.ACKNOWLEDGED, S.REOPENED}, {R.STAFF, R.STREET_STAFF, R.ADMIN}, S.MERGED,
              {E.TARGET}),
    A.FIX_ON_SPOT: ({S.REPORTED}, {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, S.VERIFIED, {E.PHOTO, E.PRESENCE}),
    A.EXTEND_DEADLINE: ({S.REPORTED, S.ACKNOWLEDGED, S.REOPENED}, {R.STAFF, R.STREET_STAFF, R.ADMIN}, None,
                        {E.DEADLINE, E.REASON}),
    # 物业更换: every open item, by staff or admins, only with a recorded handover.
    A.HAND_OVER: ({S.REPORTED, S.ACKNOWLEDGED, S.FIXED, S.REOPENED}, {R.STAFF, R.STREET_STAFF, R.ADMIN},
                  S.HANDED_OVER, {E.HANDOVER}),
    # Issue 12, the seed's chain. Routing gives the item to a department (or back to the
    # company): the new party acknowledges afresh.
    A.ROUTE: (OWED_, {R.STAFF, R.STREET_STAFF, R.ADMIN}, S.REPORTED, {E.PARTY, E.REASON}),
    A.DISPUTE: (OWED_, {R.MANAGER, R.DEPARTMENT}, None, {E.NOTE}),
    A.DECIDE_DISPUTE: (OWED_, {R.STAFF, R.STREET_STAFF, R.ADMIN}, None, {E.REASON}),
    # A department or staff answer in writing; staff approval closes it as answered.
    A.ANSWER: (OWED_, {R.DEPARTMENT, R.STAFF, R.STREET_STAFF}, None, {E.NOTE}),
    A.APPROVE_ANSWER: (OWED_, {R.STAFF, R.STREET_STAFF, R.ADMIN}, S.ANSWERED, {E.ANSWER}),
    # Supporting reports come from those who walk the compounds (and staff's triage).
    A.SUPPORT: (OPEN_, {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, None, set()),
    # 督办: the committee flags, staff lift it.
    A.FLAG: (OPEN_, {R.COMMITTEE}, None, {E.REASON}),
    A.UNFLAG: (OPEN_, {R.STAFF, R.STREET_STAFF, R.ADMIN}, None, set()),
    # Every party replies while the item is open.
    A.COMMENT: (OPEN_, set(Role), None, {E.NOTE}),
}
ALL_EVIDENCE = frozenset(Evidence)


@pytest.mark.parametrize("status,action,role", list(product(Status, Action, Role)),
                         ids=lambda v: v.value)
def test_every_combination(status, action, role):
    sources, roles, target, _ = EXPECTED[action]
    if status in sources and role in roles:
        outcome = transition(status, action, role, ALL_EVIDENCE)
        assert (outcome.source, outcome.target) == (status, target or status)
        assert action in allowed_actions(status, role)
    else:
        with pytest.raises(TransitionError) as err:
            transition(status, action, role, ALL_EVIDENCE)
        assert err.value.code == ("forbidden_role" if role not in roles else "bad_state")
        assert action not in allowed_actions(status, role)


@pytest.mark.parametrize("action", list(Action), ids=lambda v: v.value)
def test_each_piece_of_evidence_is_required(action):
    sources, roles, _, needed = EXPECTED[action]
    status, role = sorted(sources)[0], sorted(roles)[0]
    transition(status, action, role, needed)  # exactly the needed evidence suffices
    for missing in needed:
        with pytest.raises(TransitionError) as err:
            transition(status, action, role, needed - {missing})
        assert err.value.code == "missing_evidence"
        assert missing.value in err.value.detail


def test_closed_states_are_final():
    for status in (S.VERIFIED, S.REJECTED, S.MERGED, S.HANDED_OVER, S.ANSWERED):
        for role in Role:
            assert allowed_actions(status, role) == []


def test_committee_only_supervises():
    """The owners' committee changes nothing about an item's state: it replies and flags."""
    for status in Status:
        assert set(allowed_actions(status, R.COMMITTEE)) <= {A.COMMENT, A.FLAG}
        for action in allowed_actions(status, R.COMMITTEE):
            assert transition(status, action, R.COMMITTEE, ALL_EVIDENCE).target == status


def test_unknown_values_are_refused():
    with pytest.raises(TransitionError) as err:
        transition("reported", "teleport", "manager")
    assert err.value.code == "unknown"


NOW = datetime(2026, 11, 27, 12, 0)


@pytest.mark.parametrize("ago,ok", [(None, False), (timedelta(0), True),
                                    (timedelta(minutes=119), True), (timedelta(hours=2), True),
                                    (timedelta(hours=2, seconds=1), False),
                                    (-timedelta(minutes=1), False)])
def test_presence_window(ago, ok):
    scanned = None if ago is None else NOW - ago
    assert presence_valid(scanned, NOW, timedelta(hours=2)) is ok


def test_overdue_is_derived_from_state_and_deadline():
    past, future = NOW - timedelta(minutes=1), NOW + timedelta(hours=1)
    assert is_overdue(S.ACKNOWLEDGED, past, NOW)
    assert is_overdue(S.REPORTED, past, NOW)
    assert is_overdue(S.REOPENED, past, NOW)
    assert not is_overdue(S.ACKNOWLEDGED, future, NOW)
    assert not is_overdue(S.FIXED, past, NOW)      # the company has done its part
    assert not is_overdue(S.VERIFIED, past, NOW)
    assert not is_overdue(S.ACKNOWLEDGED, None, NOW)
    assert is_due_soon(S.ACKNOWLEDGED, future, NOW, timedelta(hours=24))
    assert not is_due_soon(S.ACKNOWLEDGED, past, NOW, timedelta(hours=24))


def test_manager_may_shorten_but_not_extend_deadline():
    default = NOW + timedelta(hours=24)
    assert clamp_deadline(None, default, R.MANAGER) == default
    assert clamp_deadline(NOW + timedelta(hours=2), default, R.MANAGER) == NOW + timedelta(hours=2)
    with pytest.raises(TransitionError) as err:
        clamp_deadline(default + timedelta(minutes=1), default, R.MANAGER)
    assert err.value.code == "deadline_extension"
    assert clamp_deadline(default + timedelta(days=3), default, R.STAFF) == default + timedelta(days=3)


def test_staff_extension_must_move_the_deadline_later():
    current = NOW + timedelta(hours=2)
    later = NOW + timedelta(days=2)
    assert check_extension(later, current, NOW) == later
    assert check_extension(later, None, NOW) == later
    for bad, code in [(None, "missing_evidence"), (NOW - timedelta(minutes=1), "deadline_past"),
                      (current, "deadline_not_later"),
                      (current - timedelta(minutes=30), "deadline_not_later")]:
        with pytest.raises(TransitionError) as err:
            check_extension(bad, current, NOW)
        assert err.value.code == code
    # An overdue item may get a new deadline in the future.
    assert check_extension(later, NOW - timedelta(hours=5), NOW) == later


def test_escalation_is_derived():
    limit = timedelta(hours=12)
    old, fresh = NOW - timedelta(hours=12, seconds=1), NOW - timedelta(hours=11)
    future, past = NOW + timedelta(hours=1), NOW - timedelta(hours=1)
    assert is_ack_late(S.REPORTED, old, NOW, limit)
    assert not is_ack_late(S.REPORTED, NOW - limit, NOW, limit)   # exactly at the limit
    assert not is_ack_late(S.REPORTED, fresh, NOW, limit)
    assert not is_ack_late(S.ACKNOWLEDGED, old, NOW, limit)      # acknowledged in the end
    assert not is_ack_late(S.VERIFIED, old, NOW, limit)
    assert is_escalated(S.REPORTED, old, future, NOW, limit)     # not acknowledged in time
    assert is_escalated(S.ACKNOWLEDGED, fresh, past, NOW, limit)  # overdue
    assert not is_escalated(S.ACKNOWLEDGED, old, future, NOW, limit)
    assert not is_escalated(S.FIXED, old, past, NOW, limit)


# --- replaying a history ----------------------------------------------------------------

def test_replay_reads_every_fact_off_the_table():
    from patrol.lifecycle import Event, replay
    t, h = NOW, timedelta(hours=1)
    events = [Event(t, "report", t + 24 * h),
              Event(t + 2 * h, "acknowledge", t + 20 * h),
              Event(t + 5 * h, "fix"),
              Event(t + 6 * h, "reopen"),                    # an old history: no deadline
              Event(t + 7 * h, "acknowledge", t + 30 * h),
              Event(t + 8 * h, "extend_deadline", t + 40 * h),
              Event(t + 9 * h, "fix"),
              Event(t + 10 * h, "verify", rating=9)]
    seen = replay(events, default_hours=24)
    assert seen.status == S.VERIFIED and seen.closed_at == seen.verified_at == t + 10 * h
    assert [s.value for _, s in seen.statuses] == [
        "reported", "acknowledged", "fixed", "reopened", "acknowledged", "fixed", "verified"]
    assert seen.deadlines == [(t, t + 24 * h), (t + 2 * h, t + 20 * h),
                              (t + 6 * h, t + 30 * h),       # reopen + the default 24 h
                              (t + 7 * h, t + 30 * h), (t + 8 * h, t + 40 * h)]
    assert (seen.first_acknowledged_at, seen.acknowledged_at) == (t + 2 * h, t + 7 * h)
    assert (seen.first_fix_at, seen.fixed_at) == (t + 5 * h, t + 9 * h)
    assert (seen.reopened_at, seen.reopens, seen.first_check) == (t + 6 * h, 1, False)
    assert seen.rating == 5 and not seen.fixed_on_spot and not seen.late
    # As of a moment: later events are ignored, and being overdue then makes it late.
    middle = replay(events, until=t + 5 * h + timedelta(minutes=30))
    assert middle.status == S.FIXED and middle.reopens == 0 and middle.first_check is None
    assert replay(events[:2], until=t + 21 * h).late          # acknowledged, past 20 h
    assert replay([Event(t, "report")]).status == S.REPORTED
    assert replay([]).status is None


def test_replay_fix_on_the_spot_and_closing():
    from patrol.lifecycle import Event, replay
    t, h = NOW, timedelta(hours=1)
    on_spot = replay([Event(t, "report", t + h), Event(t + 2 * h, "fix_on_spot", rating=4)])
    assert on_spot.fixed_on_spot and on_spot.fixed_at == on_spot.verified_at == t + 2 * h
    assert on_spot.first_fix_at is None and on_spot.first_check is None and on_spot.rating == 4
    assert on_spot.late                       # owed work past its deadline until fixed
    rejected = replay([Event(t, "report"), Event(t + h, "reject")])
    assert rejected.status == S.REJECTED and rejected.closed_at == t + h
    assert rejected.verified_at is None
    # An action the table does not know (a retired one) changes no status.
    assert replay([Event(t, "report"), Event(t + h, "comment")]).status == S.REPORTED
