"""The scoring module on hand-built histories, with figures worked out by hand
(docs/scoring.md gives the formula). No app, no database."""
from datetime import datetime, timedelta

import pytest

from patrol import scoring
from patrol.scoring import Event, ItemHistory, Period

S = datetime(2026, 7, 1)          # period start (naive UTC, as stored)
E = datetime(2026, 10, 1)         # period end
NOW = S + timedelta(days=30)
H = timedelta(hours=1)


def item(id, company, created, *steps, deadline_h=24):
    """steps: (hours after the report, action[, deadline hours after the report][, rating])."""
    events = [Event(created, "report", created + deadline_h * H)]
    for step in steps:
        hours, action, *rest = step
        deadline = rating = None
        for value in rest:
            if action == "verify":
                rating = value
            else:
                deadline = created + value * H
        events.append(Event(created + hours * H, action, deadline, rating))
    return ItemHistory(id, company, created, tuple(events))


def day(n):
    return S + timedelta(days=n)


def company_a(cid=1):
    """Five items with every kind of outcome (worked through in test_company_a)."""
    return [
        item(cid * 100 + 1, cid, day(1), (2, "acknowledge", 24), (10, "fix"), (20, "verify", 5)),
        item(cid * 100 + 2, cid, day(2), (4, "acknowledge", 24), (30, "fix"), (40, "verify", 3)),
        item(cid * 100 + 3, cid, day(3), (1, "acknowledge", 24), (20, "fix"),
             (22, "reopen", 46), (40, "fix"), (44, "verify", 4)),
        item(cid * 100 + 4, cid, day(4), (6, "acknowledge", 24), (20, "extend_deadline", 72),
             (60, "fix")),
        item(cid * 100 + 5, cid, NOW - 100 * H),   # never acknowledged
    ]


def perfect(cid, n=5):
    return [item(cid * 100 + k, cid, day(k), (1, "acknowledge", 24), (5, "fix"), (6, "verify", 5))
            for k in range(1, n + 1)]


def test_item_facts_one_by_one():
    facts = [scoring.item_facts(h, NOW) for h in company_a()]
    assert [(f.ack_hours, f.fix_hours) for f in facts] == [
        (2, 10), (4, 30), (1, 20), (6, 60), (100, 100)]
    assert [f.ack_waiting for f in facts] == [False] * 4 + [True]
    assert [f.overdue for f in facts] == [False, True, False, False, True]
    assert [f.decided for f in facts] == [True] * 5
    assert [f.first_check for f in facts] == [True, True, False, None, None]
    assert [f.rating for f in facts] == [5, 3, 4, None, None]
    assert [f.status for f in facts] == ["verified", "verified", "verified", "fixed", "reported"]


def test_company_a():
    """ack [2,4,1,6,100] → median 4 h; fix [10,30,20,60,100] → median 30 h;
    5 decided, 2 overdue → on time 3/5; first checks pass, pass, fail → 2/3;
    ratings 5,3,4 → 4.0. Score = 35·0.6 + 25·2/3 + 25·(4−1)/4 + 15·1 = 71.41… → 71.4."""
    [f] = scoring.rate(company_a(), S, E, NOW, {1: "A"})
    assert f.items == 5
    assert f.median_ack_hours == 4 and f.median_fix_hours == 30
    assert (f.ack_waiting, f.fix_waiting) == (1, 1)
    assert (f.decided, f.overdue, f.on_time_rate) == (5, 2, 0.6)
    assert (f.checked, f.passed) == (3, 2)
    assert f.first_pass_rate == pytest.approx(2 / 3) and f.reopen_rate == pytest.approx(1 / 3)
    assert (f.ratings, f.satisfaction) == (3, 4.0)
    assert f.points == {"on_time": (35, 0.6), "first_pass": (25, pytest.approx(2 / 3)),
                        "satisfaction": (25, 0.75), "ack_speed": (15, 1.0)}
    assert f.score == 71.4
    assert f.stars == 3 and f.listing is None and f.rank == 1 and f.sufficient


def test_deadline_extension_granted_in_time_is_not_late_but_after_the_fact_is():
    in_time = item(1, 1, S, (6, "acknowledge", 24), (20, "extend_deadline", 72), (60, "fix"))
    too_late = item(2, 1, S, (6, "acknowledge", 24), (30, "extend_deadline", 72), (60, "fix"))
    assert not scoring.item_facts(in_time, NOW).overdue
    assert scoring.item_facts(too_late, NOW).overdue


def test_not_yet_due_items_are_not_decided():
    pending = item(1, 1, NOW - 2 * H, (1, "acknowledge", 24))
    facts = scoring.item_facts(pending, NOW)
    assert (facts.decided, facts.overdue, facts.ack_hours, facts.fix_hours) == (False, False, 1, 2)
    # The same item seen a day later is overdue.
    later = scoring.item_facts(pending, NOW + 30 * H)
    assert later.overdue and later.decided


def test_events_after_now_are_ignored():
    history = item(1, 1, S, (2, "acknowledge", 24), (10, "fix"), (20, "verify", 5))
    facts = scoring.item_facts(history, S + 5 * H)
    assert facts.status == "acknowledged" and facts.fix_waiting and facts.fix_hours == 5
    assert facts.rating is None and facts.first_check is None


def test_rejected_merged_and_fixed_on_the_spot_items_are_not_counted():
    histories = perfect(1) + [
        item(11, 1, day(8), (2, "reject")),
        item(12, 1, day(8), (50, "merge")),            # even though it was overdue first
        item(13, 1, day(9), (0.2, "fix_on_spot")),
        item(14, None, day(9)),                          # no company: nobody to rate
    ]
    [f] = scoring.rate(histories, S, E, NOW, {1: "A"})
    assert f.items == 5 and f.overdue == 0 and f.score == 100.0


def test_only_items_reported_in_the_period_count():
    histories = perfect(1) + [item(20, 1, S - H), item(21, 1, E)]  # just before / at the end
    [f] = scoring.rate(histories, S, E, NOW, {1: "A"})
    assert f.items == 5


def test_insufficient_data_is_not_graded_nor_ranked():
    histories = perfect(1, n=4) + perfect(2, n=5)
    ranked = scoring.rate(histories, S, E, NOW, {1: "Few", 2: "Enough"})
    enough, few = ranked
    assert (enough.company_id, enough.rank, enough.stars, enough.listing) == (2, 1, 5, "red")
    assert few.company_id == 1 and few.items == 4 and not few.sufficient
    assert (few.rank, few.stars, few.listing) == (None, None, None)
    assert few.score == 100.0   # the figures are still computed and shown
    # A company with no items at all in the period.
    [empty] = scoring.rate([], S, E, NOW, {3: "Idle"})
    assert (empty.items, empty.score, empty.rank, empty.median_ack_hours) == (0, None, None, None)
    # The threshold is a parameter (RATING_MIN_ITEMS).
    [few] = scoring.rate(perfect(1, n=4), S, E, NOW, {1: "Few"}, min_items=4)
    assert few.sufficient and few.rank == 1


def test_ties_share_a_rank_and_are_listed_by_name():
    histories = perfect(1) + perfect(2) + company_a(3) + perfect(4)
    names = {1: "Delta", 2: "Beta", 3: "Alpha", 4: "Gamma"}
    ranked = scoring.rate(histories, S, E, NOW, names)
    assert [(names[f.company_id], f.rank, f.score) for f in ranked] == [
        ("Beta", 1, 100.0), ("Delta", 1, 100.0), ("Gamma", 1, 100.0), ("Alpha", 4, 71.4)]
    # The order of the input does not matter.
    again = scoring.rate(list(reversed(histories)), S, E, NOW, dict(reversed(names.items())))
    assert [(f.company_id, f.rank) for f in again] == [(f.company_id, f.rank) for f in ranked]


def test_black_list_and_missing_components():
    # Nothing acknowledged, everything overdue: on time 0, ack speed 0, no checks/ratings.
    ignored = [item(k, 1, NOW - (100 + k) * H) for k in range(5)]
    [f] = scoring.rate(ignored, S, E, NOW, {1: "A"})
    assert f.median_ack_hours == 102 and f.on_time_rate == 0.0
    assert f.first_pass_rate is None and f.satisfaction is None
    assert f.points == {"on_time": (35, 0.0), "ack_speed": (15, 0.0)}
    assert (f.score, f.stars, f.listing) == (0.0, 1, "black")


def test_weights_are_rescaled_when_a_component_is_missing():
    """Fixed on time, acknowledged after 16 h (speed (28−16)/24 = 0.5), no check yet:
    100 · (35·1 + 15·0.5) / (35 + 15) = 85.0 → 4 stars, red list."""
    histories = [item(k, 1, day(k), (16, "acknowledge", 48), (30, "fix"), deadline_h=48)
                 for k in range(1, 6)]
    [f] = scoring.rate(histories, S, E, NOW, {1: "A"})
    assert f.points == {"on_time": (35, 1.0), "ack_speed": (15, 0.5)}
    assert (f.score, f.stars, f.listing) == (85.0, 4, "red")


def test_black_list_by_on_time_rate_alone():
    """Fast and well rated, but 3 of 5 late: on time 0.4 < 0.6 → black, whatever the score."""
    histories = [item(k, 1, day(k), (1, "acknowledge", 24), (30 if k <= 3 else 5, "fix"),
                      (31, "verify", 5)) for k in range(1, 6)]
    [f] = scoring.rate(histories, S, E, NOW, {1: "A"})
    assert f.on_time_rate == 0.4
    assert f.score == 79.0      # 35·0.4 + 25 + 25 + 15
    assert (f.stars, f.listing) == (4, "black")


@pytest.mark.parametrize("hours,speed", [(0, 1), (4, 1), (16, 0.5), (22, 0.25), (28, 0), (99, 0)])
def test_ack_speed(hours, speed):
    assert scoring.ack_speed(hours) == speed


@pytest.mark.parametrize("score,stars", [(100, 5), (90, 5), (89.9, 4), (75, 4), (74.9, 3),
                                         (60, 3), (40, 2), (39.9, 1), (0, 1)])
def test_stars(score, stars):
    assert scoring.stars_for(score) == stars


def test_lists_thresholds():
    assert scoring.listing_for(80, 0.9) == "red"
    assert scoring.listing_for(79.9, 1.0) is None
    assert scoring.listing_for(95, 0.89) is None
    assert scoring.listing_for(95, None) is None
    assert scoring.listing_for(49.9, None) == "black"
    assert scoring.listing_for(50, 0.6) is None
    assert scoring.listing_for(90, 0.59) == "black"


def test_scores_round_half_up():
    assert scoring.round_half_up(72.25) == 72.3      # round() would give 72.2
    assert scoring.round_half_up(72.24) == 72.2


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    histories = [item(k, 1, day(k), (h, "acknowledge", 24))
                 for k, h in enumerate((1, 2, 3, 10, 11, 12), start=1)]
    [f] = scoring.rate(histories, S, E, NOW, {1: "A"})
    assert f.median_ack_hours == 6.5


def test_periods():
    q = Period.parse("2026-q3")
    assert (q.code, q.kind, q.months) == ("2026-Q3", "quarter", 3)
    assert q.bounds_utc("Asia/Shanghai") == (datetime(2026, 6, 30, 16), datetime(2026, 9, 30, 16))
    m = Period.parse("2026-12")
    assert m.shift(1).code == "2027-01" and m.shift(-12).code == "2025-12"
    assert Period.parse("2026-Q1").shift(-1).code == "2025-Q4"
    assert Period.containing(datetime(2026, 11, 27).date(), "quarter").code == "2026-Q4"
    for bad in ("", "2026", "2026-13", "2026-Q5", "26-01", "2026-00", "x-Q1", "2026-123"):
        with pytest.raises(ValueError):
            Period.parse(bad)


def test_monthly_counts_and_chart_geometry():
    months = [Period(2026, "month", 7), Period(2026, "month", 8)]
    bounds = [(datetime(2026, 7, 1), datetime(2026, 8, 1)), (datetime(2026, 8, 1), datetime(2026, 9, 1))]
    counts = scoring.monthly_counts(company_a(), months, bounds, NOW)
    assert counts == [scoring.MonthCount("2026-07", 5, 2, 3), scoring.MonthCount("2026-08", 0, 0, 0)]
    chart = scoring.bar_chart(counts, width=200, height=100, left=20, bottom=20, top_pad=10)
    assert chart.top == 5 and [v for _, v in chart.gridlines] == [0, 1, 2, 3, 4, 5]
    reported, overdue = chart.bars[0], chart.bars[1]
    assert (reported.kind, reported.value, reported.height, reported.y) == ("reported", 5, 70.0, 10.0)
    assert (overdue.kind, overdue.value, overdue.height, overdue.y) == ("overdue", 2, 28.0, 52.0)
    assert chart.bars[2].height == 0 and chart.bars[2].y == 80.0
    assert [text for _, text in chart.labels] == ["07", "08"]


# --- issue 12: answered items, items routed to a department, opinions --------------------

def test_an_answered_item_counts_like_a_fixed_one_but_is_never_checked():
    """Reported at day 1; acknowledged after 2 h; a department's answer at 10 h, approved by
    staff at 12 h (24 h deadline): settled in 12 h, on time, no check, no rating."""
    h = item(1, 1, day(1), (2, "acknowledge", 24), (10, "answer"), (12, "approve_answer"))
    f = scoring.item_facts(h, NOW)
    assert (f.status, f.counted, f.fix_hours, f.fix_waiting, f.decided, f.overdue,
            f.first_check, f.rating) == ("answered", True, 12, False, True, False, None, None)
    # Approved after its deadline (30 h > 24 h): decided, and overdue.
    late = scoring.item_facts(item(2, 1, day(1), (2, "acknowledge", 24), (30, "approve_answer")),
                              NOW)
    assert (late.decided, late.overdue, late.fix_hours) == (True, True, 30)


def test_items_routed_to_a_department_leave_the_company_cohort():
    routed = item(9, 1, day(9), (1, "route"))
    routed = ItemHistory(routed.id, routed.company_id, routed.created_at, routed.events,
                         department_id=7)
    figs = scoring.rate(perfect(1) + [routed], S, E, NOW, {1: "A"})
    assert figs[0].items == 5 and 9 not in [f.id for f in figs[0].facts]


def test_opinions_are_plain_means_shown_from_a_minimum_number():
    # 5 + 4 + 4 = 13 over 3 = 4.333… → 4.33
    assert scoring.opinion([5, 4, 4], min_n=3) == scoring.Opinion(3, 4.33, True)
    assert scoring.opinion([5, 4, 4], min_n=5) == scoring.Opinion(3, 4.33, False)
    assert scoring.opinion([], min_n=1) == scoring.Opinion(0, None, False)
    assert scoring.opinion([3, 9, 0], min_n=1) == scoring.Opinion(1, 3.0, True)   # out of range
    per = scoring.opinions([(1, 5), (2, 1), (1, 2), (3, 4)], [1, 2], min_n=2)
    assert per == {1: scoring.Opinion(2, 3.5, True), 2: scoring.Opinion(1, 1.0, False)}
