"""Two requests at the same moment, on both engines: each pair is released together by a
barrier, a few times, and what is left must be as if they had come one after the other.

Found by a review that raced every state change on PostgreSQL. Before the fixes these
failed there nearly every time (a resent check told "stale", a support lost, a resident's
report accepted twice or accepted and declined, a 500 on a support, two patrols where one
should be joined, a 500 or a second contract on a double handover, and a report made at
a handover's moment left with the company that no longer runs the compound).
"""
from __future__ import annotations

import io
import secrets
import threading
import uuid
from datetime import timedelta

import pytest
from flask import got_request_exception

from patrol.clock import local_date
from patrol.extensions import db
from patrol.lifecycle import Action, Status
from patrol.models import (Building, Compound, Contract, Item, ItemEvent, Patrol,
                           ResidentReport, Team, User, utcnow)
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

TRIALS = 3
SYNC = {"X-Patrol-Sync": "1"}       # as the phone's outbox sends: answers in JSON


@pytest.fixture
def race_app(db_app):
    """db_app with its world, a second staff member of community A and a second
    volunteer of its team, and every request's exception recorded (none may happen)."""
    db_app.config["PROPAGATE_EXCEPTIONS"] = False
    db_app.errors = []
    got_request_exception.connect(
        lambda sender, exception, **extra: db_app.errors.append(repr(exception)),
        db_app, weak=False)
    with db_app.app_context():
        db_app.w = build_world()
        w = db_app.w
        staff2 = User(username="staff_a2", display_name="staff_a2", role="staff",
                      community_id=w.ca)
        vol2 = User(username="vol_a2", display_name="vol_a2", role="volunteer",
                    community_id=w.ca, team_id=w.team, title="志愿者")
        db.session.add_all([staff2, vol2])
        db.session.commit()
        w.staff_a2, w.vol_a2 = staff2.id, vol2.id
    yield db_app
    assert db_app.errors == []


def at_once(*calls):
    """Run the calls in threads released together; their results, in order."""
    barrier = threading.Barrier(len(calls), timeout=30)
    out: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            out[i] = call()
        except Exception as exc:        # shown in the assertion that fails on it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def repeat(trial, times=TRIALS, *, with_number=False):
    """Run one race `times` times (a race that is lost once may be won the next time);
    `trial(n)` when it needs the round's number, to keep its rows apart."""
    for n in range(times):
        if with_number:
            trial(n)
        else:
            trial()


def client(app, user_id):
    return sign_in(app.test_client(), user_id)


def photo():
    return (io.BytesIO(jpeg_bytes()), "p.jpg")


def answer(response):
    return response.status_code, (response.get_json(silent=True) or {}).get("code")


def flashed(c, response):
    with c.session_transaction() as session:
        return response.status_code, [m for _c, m in session.get("_flashes", [])]


def count(app, query):
    with app.app_context():
        return db.session.scalar(query)


def reported(app, compound_id, *, fixed=False, days_ago=0):
    """An item of the compound, reported by vol_a; fixed (the volunteer on the spot)."""
    w = app.w
    with app.app_context():
        vol, mgr = db.session.get(User, w.vol_a), db.session.get(User, w.mgr_x)
        now, form, window = utcnow(), hazard_form(), timedelta(hours=2)
        compound = db.session.get(Compound, compound_id)
        item = svc.report(form=form, compound=compound, reporter=vol, now=now,
                          clean={"category": "flyers", "extra": {}},
                          photos=[save_upload(jpeg_bytes(), uploader=vol, kind="before")])
        db.session.flush()
        item.created_at = now - timedelta(days=days_ago)
        if fixed:
            svc.act(item, Action.ACKNOWLEDGE, mgr, now, svc.ActionInput(), form=form,
                    window=window)
            svc.act(item, Action.FIX, mgr, now, svc.ActionInput(
                note="ok", photos=[save_upload(jpeg_bytes(), uploader=mgr, kind="after")]),
                form=form, window=window)
            svc.record_presence(vol, compound, now)
        db.session.commit()
        return item.id, item.version


# --- items ------------------------------------------------------------------------------

def test_the_same_check_sent_twice_at_once_gets_the_same_success(race_app):
    """The outbox resends a check whose answer was lost; both sends must hear 200 (a 409
    shows the volunteer a refusal to discard), and the check is recorded once."""
    app, w = race_app, race_app.w

    def trial():
        item_id, version = reported(app, w.a1, fixed=True)
        key = str(uuid.uuid4())
        phones = [client(app, w.vol_a), client(app, w.vol_a)]

        def send(c):
            return answer(c.post(f"/items/{item_id}/act", headers=SYNC,
                                 content_type="multipart/form-data",
                                 data={"action": "verify", "version": str(version),
                                       "client_uuid": key, "photos": photo()}))

        assert at_once(*(lambda c=c: send(c) for c in phones)) == [(200, None)] * 2
        assert count(app, db.select(db.func.count()).select_from(ItemEvent).where(
            ItemEvent.item_id == item_id, ItemEvent.action == "verify")) == 1

    repeat(trial)


def test_two_people_saying_same_problem_at_once_both_count(race_app):
    app, w = race_app, race_app.w

    def trial():
        item_id, _v = reported(app, w.a1)
        people = [client(app, w.vol_a), client(app, w.staff_a)]

        def send(c):
            return answer(c.post(f"/items/{item_id}/support", headers=SYNC,
                                 content_type="multipart/form-data",
                                 data={"client_uuid": str(uuid.uuid4()), "note": "同一个",
                                       "photos": photo()}))

        assert at_once(*(lambda c=c: send(c) for c in people)) == [(201, None)] * 2
        with app.app_context():
            assert db.session.get(Item, item_id).support_count == 2

    repeat(trial)


# --- residents' reports in triage ----------------------------------------------------------

def pending_report(app):
    w = app.w
    with app.app_context():
        report = ResidentReport(compound_id=w.a1, community_id=w.ca, category="flyers",
                                note="居民反映", status="pending",
                                device_hash=secrets.token_hex(16),
                                receipt_hash=secrets.token_hex(16),
                                client_uuid=str(uuid.uuid4()))
        db.session.add(report)
        db.session.commit()
        return report.id


def items_now(app):
    return count(app, db.select(db.func.count()).select_from(Item))


@pytest.mark.parametrize("second", ["accept", "decline"])
def test_a_residents_report_is_handled_once_by_two_triagers(race_app, second):
    app, w = race_app, race_app.w

    def trial():
        report_id = pending_report(app)
        before = items_now(app)
        a, b = client(app, w.staff_a), client(app, w.staff_a2)
        answers = at_once(
            lambda: flashed(a, a.post(f"/triage/{report_id}/accept")),
            lambda: flashed(b, b.post(f"/triage/{report_id}/{second}",
                                      data={"reason": "other"})))
        assert [status for status, _m in answers] == [302, 302]
        made = items_now(app) - before
        with app.app_context():
            report = db.session.get(ResidentReport, report_id)
            if report.status == "accepted":
                assert made == 1 and report.item_id is not None
                assert report.decline_reason is None
            else:
                assert report.status == "declined" and made == 0 and report.item_id is None
        # One of them was told it is already handled.
        assert sum("已受理" in " ".join(m) or "不予受理" in " ".join(m)
                   for _s, m in answers) == 1, answers

    repeat(trial)


def test_two_reports_added_to_one_item_at_once_are_answered_in_words(race_app):
    app, w = race_app, race_app.w

    def trial():
        first, second = pending_report(app), pending_report(app)
        item_id, _v = reported(app, w.a1)
        a, b = client(app, w.staff_a), client(app, w.staff_a2)
        answers = at_once(
            lambda: flashed(a, a.post(f"/triage/{first}/support", data={"item_id": item_id})),
            lambda: flashed(b, b.post(f"/triage/{second}/support",
                                      data={"item_id": item_id})))
        assert [status for status, _m in answers] == [302, 302]
        with app.app_context():
            states = [db.session.get(ResidentReport, r).status for r in (first, second)]
            supports = db.session.get(Item, item_id).support_count
        # Each either counts on the item or stays in the queue with a worded message.
        assert supports == states.count("supported") >= 1
        assert set(states) <= {"supported", "pending"}

    repeat(trial)


# --- patrols ---------------------------------------------------------------------------

def open_patrols(app, compound_id):
    with app.app_context():
        return list(db.session.scalars(db.select(Patrol.id).where(
            Patrol.compound_id == compound_id, Patrol.ended_at.is_(None))))


def end_patrols(app):
    with app.app_context():
        for patrol in db.session.scalars(db.select(Patrol).where(Patrol.ended_at.is_(None))):
            patrol.ended_at, patrol.ended_by = patrol.last_activity_at, "tapped"
        db.session.commit()


def start(c, compound_id, key):
    r = c.post("/patrols/start", headers=SYNC, data={"compound": compound_id,
                                                     "client_uuid": key})
    body = r.get_json(silent=True) or {}
    return r.status_code, body.get("id"), body.get("started")


def test_the_same_offline_start_sent_twice_at_once_is_one_patrol(race_app):
    app, w = race_app, race_app.w

    def trial():
        end_patrols(app)
        key = str(uuid.uuid4())
        phones = [client(app, w.vol_a), client(app, w.vol_a)]
        answers = at_once(*(lambda c=c: start(c, w.a2, key) for c in phones))
        assert sorted(a[0] for a in answers) == [200, 201], answers
        assert answers[0][1] == answers[1][1] and open_patrols(app, w.a2) == [answers[0][1]]

    repeat(trial)


def test_two_of_a_team_starting_at_once_patrol_together(race_app):
    app, w = race_app, race_app.w

    def trial():
        end_patrols(app)
        phones = [client(app, w.vol_a), client(app, w.vol_a2)]
        answers = at_once(*(lambda c=c: start(c, w.a2, str(uuid.uuid4())) for c in phones))
        assert sorted((a[0], a[2]) for a in answers) == [(200, False), (201, True)], answers
        assert len(open_patrols(app, w.a2)) == 1

    repeat(trial)


# --- handover (物业更换) ---------------------------------------------------------------------

def compound_of_x(app, with_item: bool):
    """A new compound of company X in community A (the team's), with an item reported
    three days ago when asked."""
    w = app.w
    with app.app_context():
        compound = Compound(name=f"小区{uuid.uuid4().hex[:6]}", community_id=w.ca,
                            company_id=w.x)
        compound.buildings = [Building(name="1栋", sort_key=1)]
        db.session.add(compound)
        db.session.flush()
        team = db.session.get(Team, w.team)      # held: the append needs its parent
        team.compounds.append(compound)
        db.session.commit()
        compound_id = compound.id
    if with_item:
        reported(app, compound_id, days_ago=3)
    return compound_id


def today(app):
    return local_date(utcnow(), app.config["TIMEZONE"]).isoformat()


def open_items_follow_the_company(app, compound_id):
    """No open item of the compound is left with a company that no longer runs it."""
    with app.app_context():
        company = db.session.get(Compound, compound_id).company_id
        open_ = [s.value for s in Status if s.is_open]
        return list(db.session.execute(db.select(Item.id, Item.company_id).where(
            Item.compound_id == compound_id, Item.status.in_(open_),
            Item.company_id != company)))


@pytest.mark.parametrize("with_item", [False, True])
def test_a_handover_sent_twice_at_once_is_made_once(race_app, with_item):
    app, w = race_app, race_app.w

    def trial():
        compound_id = compound_of_x(app, with_item)
        forms = [client(app, w.staff_a), client(app, w.staff_a)]
        answers = at_once(*(lambda c=c: c.post(
            f"/compounds/{compound_id}/handover",
            data={"company_id": w.y, "effective_on": today(app)}).status_code
            for c in forms))
        assert sorted(answers) == [302, 422], answers
        with app.app_context():
            periods = db.session.execute(db.select(Contract.company_id, Contract.ends_on).where(
                Contract.compound_id == compound_id).order_by(Contract.id)).all()
        assert [c for c, _e in periods] == [w.x, w.y] and periods[1][1] is None
        assert open_items_follow_the_company(app, compound_id) == []

    repeat(trial)


def test_a_report_made_as_the_compound_is_handed_over_goes_to_who_runs_it(race_app):
    app, w = race_app, race_app.w

    def trial():
        compound_id = compound_of_x(app, with_item=True)
        staff, vol = client(app, w.staff_a), client(app, w.vol_a)
        handed, sent = at_once(
            lambda: staff.post(f"/compounds/{compound_id}/handover",
                               data={"company_id": w.y, "effective_on": today(app)}
                               ).status_code,
            lambda: answer(vol.post(f"/compounds/{compound_id}/report", headers=SYNC,
                                    content_type="multipart/form-data",
                                    data={"category": "flyers", "note": "新的",
                                          "client_uuid": str(uuid.uuid4()),
                                          "photos": photo()})))
        assert sent == (201, None)
        # The handover came first (the report is the new company's), or the report did
        # and the handover is refused for an item reported after its date.
        assert handed in (302, 422)
        assert open_items_follow_the_company(app, compound_id) == []

    repeat(trial, TRIALS + 2)




# --- a second review: residents, offline scans, admin forms, ending a patrol ---------------

def test_a_residents_form_sent_twice_at_once_is_one_report(race_app):
    """The same form (client id) from the same phone (its device cookie): both sends get
    the receipt, one report is kept. Open311 sends the same way (device_id)."""
    app, w = race_app, race_app.w
    with app.app_context():
        gate = db.session.get(Compound, w.a1).qr_token

    def trial():
        key, device = str(uuid.uuid4()), secrets.token_urlsafe(24)
        phones = [app.test_client(), app.test_client()]
        for phone in phones:
            phone.set_cookie("patrol_device", device)
        answers = at_once(*(lambda c=c: c.post(
            f"/c/{gate}/report", content_type="multipart/form-data",
            data={"category": "flyers", "note": "门口小广告", "client_uuid": key,
                  "photos": photo()}).status_code for c in phones))
        assert answers == [302, 302]
        assert count(app, db.select(db.func.count()).select_from(ResidentReport).where(
            ResidentReport.client_uuid == key)) == 1

    repeat(trial)


def test_a_residents_rating_sent_twice_at_once_is_kept_once(race_app):
    from patrol.models.people import hash_secret
    app, w = race_app, race_app.w

    def trial():
        item_id, _v = reported(app, w.a1)
        token = secrets.token_hex(20)
        with app.app_context():
            db.session.get(Item, item_id).status = Status.VERIFIED.value
            report = ResidentReport(compound_id=w.a1, community_id=w.ca, category="flyers",
                                    status="accepted", item_id=item_id,
                                    device_hash=secrets.token_hex(16),
                                    receipt_hash=hash_secret(token),
                                    client_uuid=str(uuid.uuid4()))
            db.session.add(report)
            db.session.commit()
            report_id = report.id
        phones = [app.test_client(), app.test_client()]
        answers = at_once(*(lambda c=c, stars=stars: flashed(c, c.post(
            f"/r/{token}", data={"stars": str(stars)})) for c, stars in zip(phones, (1, 5), strict=True)))
        thanked = [stars for (_s, messages), stars in zip(answers, (1, 5), strict=True)
                   if "感谢您的评价。" in messages]
        with app.app_context():
            kept = db.session.get(ResidentReport, report_id).rating
        assert thanked == [kept], (answers, kept)

    repeat(trial)


def test_an_offline_gate_scan_sent_twice_at_once_is_one_scan(race_app):
    from datetime import timezone

    from patrol.models import Presence
    app, w = race_app, race_app.w
    with app.app_context():
        gate = db.session.get(Compound, w.a2).qr_token

    def trial(minutes_ago):
        at = (utcnow() - timedelta(minutes=minutes_ago)).replace(tzinfo=timezone.utc)
        phones = [client(app, w.vol_a), client(app, w.vol_a)]
        answers = at_once(*(lambda c=c: c.post("/sync/presence", headers=SYNC, data={
            "token": gate, "device_at": at.isoformat()}).status_code for c in phones))
        assert sorted(answers) == [200, 201]
        assert count(app, db.select(db.func.count()).select_from(Presence).where(
            Presence.user_id == w.vol_a,
            Presence.device_at == at.replace(tzinfo=None))) == 1

    repeat(lambda n: trial(50 - 5 * n), with_number=True)


@pytest.mark.parametrize("what", ["account", "team", "compound", "company", "street",
                                  "buildings"])
def test_an_admin_form_sent_twice_at_once_makes_one_row_and_no_error(race_app, what):
    """A double tap on 保存: one row, the other send told in words (or finding it there)."""
    from patrol.models import Company, Street
    app, w = race_app, race_app.w

    def trial(n):
        tag = f"{n}{uuid.uuid4().hex[:4]}"
        who, url, data, query = {
            "account": (w.staff_a, "/people/accounts",
                        {"role": "staff", "username": f"acct{tag}", "display_name": "张三",
                         "password": "long-enough-pw"},
                        db.select(User.id).where(User.username == f"acct{tag}")),
            "team": (w.staff_a, "/people/teams", {"name": f"B队{tag}"},
                     db.select(Team.id).where(Team.name == f"B队{tag}")),
            "compound": (w.staff_a, f"/places/communities/{w.ca}/compounds/new",
                         {"name": f"幸福{tag}"},
                         db.select(Compound.id).where(Compound.name == f"幸福{tag}")),
            "company": (w.staff_a, "/places/companies/new", {"name": f"物业{tag}"},
                        db.select(Company.id).where(Company.name == f"物业{tag}")),
            "street": (w.admin, "/places/streets", {"name": f"街道{tag}"},
                       db.select(Street.id).where(Street.name == f"街道{tag}")),
            "buildings": (w.staff_a, f"/places/compounds/{w.a1}/buildings",
                          {"buildings": f"{n + 3}栋"},
                          db.select(Building.id).where(Building.compound_id == w.a1,
                                                       Building.name == f"{n + 3}栋")),
        }[what]
        forms = [client(app, who), client(app, who)]
        answers = at_once(*(lambda c=c: c.post(url, data=data).status_code for c in forms))
        assert all(a in (302, 303, 422) for a in answers), answers
        with app.app_context():
            assert len(db.session.execute(query).all()) == 1

    repeat(trial, with_number=True)


def race_the_end(app, summary, other):
    """vol_a starts a walk at A2 (any walk before ended), then ends it with `summary` at
    the moment `other()` is sent: (the walk's id, [the end's status, other's answer])."""
    end_patrols(app)
    ender = client(app, app.w.vol_a)
    patrol_id = start(ender, app.w.a2, str(uuid.uuid4()))[1]
    return patrol_id, at_once(
        lambda: ender.post(f"/patrols/{patrol_id}/end", headers=SYNC,
                           data={"summary": summary}).status_code,
        other)


def test_ending_a_patrol_as_a_teammate_joins_settles_everyone(race_app):
    """A ends the walk while B scans a checkpoint: B either joined first (and has the
    ended walk's minutes) or starts a new walk; never a member without minutes."""
    from patrol.models import Checkpoint, PatrolMember
    app, w = race_app, race_app.w
    with app.app_context():
        checkpoint = Checkpoint(compound_id=w.a2, name="1栋")
        db.session.add(checkpoint)
        db.session.commit()
        sticker = checkpoint.qr_token

    def trial():
        b = client(app, w.vol_a2)
        patrol_id, answers = race_the_end(app, "none",
                                          lambda: b.get(f"/k/{sticker}").status_code)
        assert answers[0] == 200 and answers[1] in (200, 302), answers
        with app.app_context():
            minutes = db.session.scalars(db.select(PatrolMember.minutes).where(
                PatrolMember.patrol_id == patrol_id)).all()
        assert None not in minutes, minutes

    repeat(trial, TRIALS + 2)


def test_a_report_made_as_the_patrol_ends_is_among_what_it_found(race_app):
    app, w = race_app, race_app.w

    def trial():
        again = client(app, w.vol_a)

        def report():
            return answer(again.post(f"/compounds/{w.a2}/report", headers=SYNC,
                                     content_type="multipart/form-data",
                                     data={"category": "flyers", "note": "x",
                                           "client_uuid": str(uuid.uuid4()),
                                           "photos": photo()}))

        patrol_id, answers = race_the_end(app, "found", report)
        assert answers == [200, (201, None)], answers
        with app.app_context():
            found = db.session.get(Patrol, patrol_id).found_count
            on_it = db.session.scalar(db.select(db.func.count()).select_from(ItemEvent).where(
                ItemEvent.patrol_id == patrol_id, ItemEvent.action == "report"))
        assert (found or 0) >= on_it, (found, on_it)

    repeat(trial, TRIALS + 2)
