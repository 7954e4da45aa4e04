"""The item lifecycle: one transition table, pure Python, no Flask.

reported → acknowledged → fixed → verified (closed, 销号)
fixed → reopened (failed on-the-spot check) → acknowledged | fixed
staff may reject or merge open items; a volunteer may record a fix on the spot (立行立改).
staff may extend the deadline of an item the company still owes work on, with a
reason (a self-transition: the status stays, the history records the new deadline).

Views and services never assign a status themselves: they call `transition()`,
which checks the move, the actor's role and the evidence, and returns the new
status plus what must go into the append-only history.

Reading that history back is `replay()`, a fold over an item's events that takes
the status after each event from the same table. The weekly lists, the ratings
and anything else that asks "what happened to this item, and when" use it, so an
action added to RULES is followed everywhere without further edits.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Status(str, enum.Enum):
    REPORTED = "reported"
    ACKNOWLEDGED = "acknowledged"
    FIXED = "fixed"
    VERIFIED = "verified"
    REOPENED = "reopened"
    REJECTED = "rejected"
    MERGED = "merged"
    HANDED_OVER = "handed_over"     # closed when its compound went to another company
    ANSWERED = "answered"           # 已解答: a demand answered in writing, not a fix

    @property
    def is_open(self) -> bool:
        return self not in CLOSED


CLOSED = frozenset({Status.VERIFIED, Status.REJECTED, Status.MERGED, Status.HANDED_OVER,
                    Status.ANSWERED})
OPEN = frozenset(Status) - CLOSED
# States in which the property company still owes work (deadline applies).
OWED = frozenset({Status.REPORTED, Status.ACKNOWLEDGED, Status.REOPENED})


class Role(str, enum.Enum):
    VOLUNTEER = "volunteer"
    MANAGER = "manager"
    STAFF = "staff"
    STREET_STAFF = "street_staff"   # 街道工作人员: every community of their street
    COMMITTEE = "committee"
    ADMIN = "admin"
    DEPARTMENT = "department"       # 部门: water, power, lifts, 城管, the community itself


class Action(str, enum.Enum):
    ACKNOWLEDGE = "acknowledge"
    FIX = "fix"
    VERIFY = "verify"
    REOPEN = "reopen"
    REJECT = "reject"
    MERGE = "merge"
    FIX_ON_SPOT = "fix_on_spot"
    EXTEND_DEADLINE = "extend_deadline"
    HAND_OVER = "hand_over"      # the compound changed company (物业更换): services/handover.py
    ROUTE = "route"              # staff give the item to a department, or back to the company
    DISPUTE = "dispute"          # the responsible party says "不属于我们的职责"
    DECIDE_DISPUTE = "decide_dispute"   # staff keep the item with its party (else: ROUTE)
    ANSWER = "answer"            # a written answer (部门解答) to a demand that is not a fix
    APPROVE_ANSWER = "approve_answer"   # staff accept the answer: closed as answered
    SUPPORT = "support"          # another report of the same problem (N 人反映)
    FLAG = "flag"                # the owners' committee asks for supervision (督办)
    UNFLAG = "unflag"            # staff lift the flag (closing the item lifts it too)
    COMMENT = "comment"          # a reply in the history; the status stays


class Evidence(str, enum.Enum):
    """What an action must carry. Checked here so every entry point agrees."""
    NOTE = "note"            # free text explaining the fix
    PHOTO = "photo"          # at least one photo
    REASON = "reason"        # a coded reason (reopen / reject / extend)
    DEADLINE = "deadline"    # a deadline (acknowledge / extend)
    PRESENCE = "presence"    # scanned this compound's QR within the window
    TARGET = "target"        # another item (merge)
    HANDOVER = "handover"    # a recorded change of company (only services/handover.py has it)
    PARTY = "party"          # the department or company an item is routed to
    ANSWER = "answer"        # a written answer on record (approve_answer)


REOPEN_REASONS = ("not_fixed", "badly_fixed", "other")
REJECT_REASONS = ("not_a_hazard", "not_our_compound", "other")
EXTEND_REASONS = ("needs_materials", "needs_owners", "major_work", "weather", "other")
ROUTE_REASONS = ("department_duty", "company_duty", "dispute_upheld", "other")
DISPUTE_DECISIONS = ("is_responsible", "shared_duty", "other")
FLAG_REASONS = ("slow", "repeated", "safety", "residents_complain", "other")


@dataclass(frozen=True)
class Rule:
    action: Action
    sources: frozenset[Status]
    target: Status | None          # None: a self-transition (the status stays)
    roles: frozenset[Role]
    evidence: frozenset[Evidence] = field(default_factory=frozenset)


def _rule(action: Action, sources: Iterable[Status], target: Status | None,
          roles: Iterable[Role], evidence: Iterable[Evidence] = ()) -> Rule:
    return Rule(action, frozenset(sources), target, frozenset(roles), frozenset(evidence))


SAME = None  # target of a self-transition


S, R, A, E = Status, Role, Action, Evidence

# The one table. Admins deliberately cannot verify or fix: verification is a
# field act, and fixing belongs to the responsible party: the property company, or
# the department staff routed the item to (permissions.is_responsible says which).
RULES: dict[Action, Rule] = {r.action: r for r in (
    _rule(A.ACKNOWLEDGE, {S.REPORTED, S.REOPENED}, S.ACKNOWLEDGED,
          {R.MANAGER, R.DEPARTMENT}, {E.DEADLINE}),
    _rule(A.FIX, {S.ACKNOWLEDGED, S.REOPENED}, S.FIXED,
          {R.MANAGER, R.DEPARTMENT}, {E.NOTE, E.PHOTO}),
    _rule(A.VERIFY, {S.FIXED}, S.VERIFIED,
          {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, {E.PHOTO, E.PRESENCE}),
    _rule(A.REOPEN, {S.FIXED}, S.REOPENED,
          {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, {E.REASON, E.PHOTO, E.PRESENCE}),
    _rule(A.REJECT, {S.REPORTED, S.ACKNOWLEDGED, S.REOPENED}, S.REJECTED,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.REASON}),
    _rule(A.MERGE, {S.REPORTED, S.ACKNOWLEDGED, S.REOPENED}, S.MERGED,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.TARGET}),
    _rule(A.FIX_ON_SPOT, {S.REPORTED}, S.VERIFIED,
          {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}, {E.PHOTO, E.PRESENCE}),
    _rule(A.EXTEND_DEADLINE, OWED, SAME,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.DEADLINE, E.REASON}),
    # Closing an open item when its compound goes to another company: the old company
    # stays answerable for it (docs/scoring.md); a transfer gives the new one a new item.
    _rule(A.HAND_OVER, OPEN, S.HANDED_OVER,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.HANDOVER}),
    # Routing starts over: the new party acknowledges afresh, with a new deadline.
    _rule(A.ROUTE, OWED, S.REPORTED,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.PARTY, E.REASON}),
    _rule(A.DISPUTE, OWED, SAME,
          {R.MANAGER, R.DEPARTMENT}, {E.NOTE}),
    _rule(A.DECIDE_DISPUTE, OWED, SAME,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.REASON}),
    _rule(A.ANSWER, OWED, SAME,
          {R.DEPARTMENT, R.STAFF, R.STREET_STAFF}, {E.NOTE}),
    _rule(A.APPROVE_ANSWER, OWED, S.ANSWERED,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}, {E.ANSWER}),
    _rule(A.SUPPORT, OPEN, SAME,
          {R.VOLUNTEER, R.STAFF, R.STREET_STAFF}),
    _rule(A.FLAG, OPEN, SAME,
          {R.COMMITTEE}, {E.REASON}),
    _rule(A.UNFLAG, OPEN, SAME,
          {R.STAFF, R.STREET_STAFF, R.ADMIN}),
    # Every party may reply while the item is open; closed items stay final.
    _rule(A.COMMENT, OPEN, SAME,
          set(Role), {E.NOTE}),
)}


class TransitionError(Exception):
    """An illegal move. `code` is stable; views translate it for the user."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Outcome:
    action: Action
    source: Status
    target: Status


def allowed_actions(status: Status, role: Role) -> list[Action]:
    """Actions the role may take from this status (ignoring evidence)."""
    return [a for a, r in RULES.items() if Status(status) in r.sources and Role(role) in r.roles]


def transition(status: Status | str, action: Action | str, role: Role | str,
               evidence: AbstractSet[Evidence | str] = frozenset()) -> Outcome:
    """Check one move and return its outcome, or raise TransitionError.

    `evidence` is the set of Evidence kinds the caller has actually gathered
    (a photo saved, a presence found within the window, a reason chosen, …).
    """
    try:
        status, action, role = Status(status), Action(action), Role(role)
    except ValueError as exc:
        raise TransitionError("unknown", str(exc)) from None
    rule = RULES[action]
    if role not in rule.roles:
        raise TransitionError("forbidden_role", f"{role.value} may not {action.value}")
    if status not in rule.sources:
        raise TransitionError("bad_state", f"cannot {action.value} from {status.value}")
    missing = rule.evidence - {Evidence(e) for e in evidence}
    if missing:
        raise TransitionError("missing_evidence", ",".join(sorted(m.value for m in missing)))
    return Outcome(action, status, status if rule.target is SAME else rule.target)


def presence_valid(scanned_at: datetime | None, now: datetime, window: timedelta) -> bool:
    """On the spot means: scanned this compound's QR no more than `window` ago."""
    return scanned_at is not None and timedelta(0) <= now - scanned_at <= window


def is_overdue(status: Status | str, deadline: datetime | None, now: datetime) -> bool:
    """Derived, never stored: only items the company still owes work on can be late."""
    return deadline is not None and Status(status) in OWED and now > deadline


def is_due_soon(status: Status | str, deadline: datetime | None, now: datetime,
                horizon: timedelta) -> bool:
    return (deadline is not None and Status(status) in OWED
            and now <= deadline <= now + horizon)


def is_ack_late(status: Status | str, created_at: datetime | None, now: datetime,
                limit: timedelta) -> bool:
    """Derived: reported and still not acknowledged `limit` after the report."""
    return (created_at is not None and Status(status) == Status.REPORTED
            and now > created_at + limit)


def is_escalated(status: Status | str, created_at: datetime | None, deadline: datetime | None,
                 now: datetime, ack_limit: timedelta) -> bool:
    """On the community staff's escalation list: overdue, or not acknowledged in time."""
    return is_overdue(status, deadline, now) or is_ack_late(status, created_at, now, ack_limit)


def check_extension(requested: datetime | None, current: datetime | None, now: datetime) -> datetime:
    """An extension must move the deadline later than both now and the current deadline."""
    if requested is None:
        raise TransitionError("missing_evidence", Evidence.DEADLINE.value)
    if requested <= now:
        raise TransitionError("deadline_past", "deadline must be in the future")
    if current is not None and requested <= current:
        raise TransitionError("deadline_not_later", "an extension must move the deadline later")
    return requested


def clamp_deadline(requested: datetime | None, default: datetime, role: Role) -> datetime:
    """A manager may shorten the default deadline but never extend it."""
    if requested is None:
        return default
    if Role(role) == Role.MANAGER and requested > default:
        raise TransitionError("deadline_extension", "only staff may extend a deadline")
    return requested


# --- an item's history, replayed ---------------------------------------------------------
#
# The status after each event comes from RULES (a self-transition keeps it). Every other
# fact is read off the move between two statuses, never off an action's name: entering
# ACKNOWLEDGED is an acknowledgement, leaving FIXED is the on-the-spot check of a fix
# (passed if it closes the item as VERIFIED), reaching VERIFIED from anything but FIXED is
# a fix on the spot, entering owed work from outside it starts a deadline, and so on.

REPORT = "report"   # the event that creates an item; not an Action (nobody takes it)


@dataclass(frozen=True)
class Event:
    """One entry of an item's history, as plain data."""
    at: datetime
    action: str                       # REPORT or an Action's value
    deadline: datetime | None = None  # the deadline this event set (report, acknowledge, …)
    rating: int | None = None         # the 1–5 stars a verifier gave

    @classmethod
    def from_record(cls, at: datetime, action: str, data: dict[str, Any] | None) -> Event:
        """From a stored ItemEvent (`data` is its JSON column); a malformed deadline or
        rating is left out."""
        data = data or {}
        deadline = None
        if data.get("deadline"):
            try:
                deadline = datetime.fromisoformat(data["deadline"])
            except (TypeError, ValueError):
                pass
        rating = data.get("rating")
        return cls(at, action, deadline, int(rating) if isinstance(rating, int) else None)


def rule_for(action: Action | str) -> Rule | None:
    """The table's rule for an Action or an action's name; None if the table has none."""
    name = getattr(action, "value", action)
    return next((r for a, r in RULES.items() if getattr(a, "value", a) == name), None)


def status_after(status: Status | None, action: Action | str) -> Status | None:
    """The status after `action` taken in `status`, by the table: the report creates the
    item, a self-transition keeps the status, an action the table does not know changes
    nothing. The history is what happened: the move is not checked again here."""
    if getattr(action, "value", action) == REPORT:
        return Status.REPORTED
    rule = rule_for(action)
    if rule is None or rule.target is SAME:
        return status
    return Status(rule.target)


@dataclass
class Replay:
    """What an item's history says, as of the last event replayed."""
    status: Status | None = None          # None: not reported (yet)
    deadline: datetime | None = None
    statuses: list[tuple[datetime, Status | None]] = field(default_factory=list)  # each change
    deadlines: list[tuple[datetime, datetime]] = field(default_factory=list)  # each deadline set
    reported_at: datetime | None = None
    first_acknowledged_at: datetime | None = None
    acknowledged_at: datetime | None = None         # the latest acknowledgement
    first_fix_at: datetime | None = None            # the company's first fix (→ fixed)
    fixed_at: datetime | None = None                # the latest fix, the company's or on the spot
    verified_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_at: datetime | None = None             # the latest reopening
    reopens: int = 0
    first_check: bool | None = None   # the first on-the-spot check of a fix: passed or not
    fixed_on_spot: bool = False       # verified with no fix by the company (立行立改)
    rating: int | None = None         # the stars given when it was verified
    late: bool = False                # at some moment still owed work after its deadline

    def status_at(self, moment: datetime) -> Status | None:
        """The status at `moment` (within what was replayed)."""
        status = None
        for at, s in self.statuses:
            if at > moment:
                break
            status = s
        return status


def replay(events: Iterable[Event], *, until: datetime | None = None,
           default_hours: float | None = None) -> Replay:
    """Fold an item's history into a Replay. Pure.

    `events`: Events (or anything with `at`, `action`, `deadline`, `rating`), in any
    order; ties in time keep the given order. Events after `until` are ignored, and
    with `until` the item counts as late if it is overdue then.
    `default_hours`: for histories recorded before report and reopen events carried
    their deadline: an event that starts owed work (the report, a reopening) without a
    deadline sets one that many hours later, as the category's default did.
    """
    out = Replay()
    for ev in sorted(events, key=lambda e: e.at):
        if until is not None and ev.at > until:
            break
        at, before = ev.at, out.status
        after = status_after(before, ev.action)
        # An owed stretch that lasts past its deadline makes the item late, whatever
        # ends it (a late acknowledgement, a late fix, an extension granted afterwards).
        if before in OWED and out.deadline is not None and at > out.deadline:
            out.late = True
        deadline = ev.deadline
        if deadline is None and default_hours is not None and after in OWED \
                and before not in OWED:
            deadline = at + timedelta(hours=default_hours)
        if deadline is not None:
            out.deadline = deadline
            out.deadlines.append((at, deadline))
        if getattr(ev.action, "value", ev.action) == REPORT and out.reported_at is None:
            out.reported_at = at
        if after != before:
            out.statuses.append((at, after))
            if after == Status.ACKNOWLEDGED:
                out.first_acknowledged_at = out.first_acknowledged_at or at
                out.acknowledged_at = at
            elif after == Status.FIXED:
                out.first_fix_at = out.first_fix_at or at
                out.fixed_at = at
            elif after == Status.REOPENED:
                out.reopened_at = at
                out.reopens += 1
            if after == Status.VERIFIED:
                out.verified_at = at
                if before != Status.FIXED:
                    out.fixed_on_spot, out.fixed_at = True, at
                if ev.rating is not None:
                    out.rating = max(1, min(5, int(ev.rating)))
            if before == Status.FIXED and out.first_check is None:
                out.first_check = after == Status.VERIFIED
            if after in CLOSED and before not in CLOSED:
                out.closed_at = at
        out.status = after
    if until is not None and out.status is not None and is_overdue(out.status, out.deadline,
                                                                     until):
        out.late = True
    return out
