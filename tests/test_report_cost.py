"""What one report costs the server (issue 15 §3, bench/report_cpu.py): the outbox's two
requests and the statements each sends, and the form taken alike urlencoded (how the
outbox sends it now) and multipart (how records already queued on phones were made)."""
from __future__ import annotations

import io
import logging
import uuid
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from sqlalchemy import event

from patrol.extensions import db
from patrol.models import Compound, Item, NotifyEndpoint, Team, TeamCompound
from patrol.services import notify
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

SYNC = {"X-Patrol-Sync": "1"}
NOTE = "车棚有飞线\r\n第二行: a+b=c&d %20 ✓"


@contextmanager
def statements(app):
    seen: list[str] = []

    def listen(conn, cursor, statement, *rest):
        seen.append(" ".join(statement.split()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def upload(client, color=(200, 60, 40)) -> int:
    resp = client.post("/photos", headers=SYNC, content_type="multipart/form-data",
                       data={"kind": "before", "photo": (io.BytesIO(jpeg_bytes(color=color)),
                                                         "p.jpg")})
    assert resp.status_code == 201, resp.data[:300]
    return resp.get_json()["id"]


def fields(photo_id: int, building_id: int) -> list[tuple[str, str]]:
    """The outbox's fields (static/js/offline.js sendOne), in its order."""
    return [("client_uuid", str(uuid.uuid4())), ("lat", ""), ("lon", ""),
            ("category", "flying_wire"), ("building", str(building_id)), ("unit", "2单元"),
            ("floor", "3楼"), ("note", NOTE), ("device_at", "2026-11-18T01:59:00.000Z"),
            ("kept_photos", str(photo_id)), ("sent_at", "2026-11-18T02:00:00.000Z")]


def stored(app, item_id: int) -> dict:
    with app.app_context():
        item = db.session.get(Item, item_id)
        return {"note": item.note, "category": item.category, "building": item.building_id,
                "unit": item.unit, "floor": item.floor, "answers": item.answers,
                "device_created_at": item.device_created_at, "status": item.status,
                "photos": [(p.kind, p.width) for p in item.photos],
                "events": [(e.action, e.note) for e in item.events]}


def test_a_report_urlencoded_is_stored_as_the_same_report_multipart(db_app):
    with db_app.app_context():
        w = build_world()
        building_id = db.session.get(Compound, w.a1).buildings[1].id
    client = sign_in(db_app.test_client(), w.vol_a)
    answers = []
    for body in ("multipart", "urlencoded"):
        sent = fields(upload(client), building_id)
        if body == "multipart":
            resp = client.post(f"/compounds/{w.a1}/report", headers=SYNC,
                               content_type="multipart/form-data", data=dict(sent))
        else:
            resp = client.post(f"/compounds/{w.a1}/report", headers=SYNC,
                               content_type="application/x-www-form-urlencoded;charset=UTF-8",
                               data=urlencode(sent))
        assert resp.status_code == 201, resp.data[:300]
        answers.append(resp.get_json())
        again = client.post(f"/compounds/{w.a1}/report", headers=SYNC,
                            content_type="application/x-www-form-urlencoded",
                            data=urlencode(sent))   # a resend after a lost answer
        assert again.status_code == 200
        assert again.get_json() == {**answers[-1], "duplicate": True}
    first, second = (stored(db_app, a["id"]) for a in answers)
    # The phone's time, corrected by the server's clock at arrival (sent_at): not equal.
    times = first.pop("device_created_at"), second.pop("device_created_at")
    assert abs((times[0] - times[1]).total_seconds()) < 30
    assert first == second
    assert first["note"] == NOTE and first["photos"] == [("before", 640)]
    assert all(a["url"] == f"/compounds/{w.a1}" and a["duplicate"] is False for a in answers)


def test_the_outbox_requests_send_only_the_statements_they_need(db_app, caplog):
    """The photo: the sign-in and the row. The report: nothing read again after its commit
    (the answer, the flash and the request's log line use what the request already had)."""
    with db_app.app_context():
        w = build_world()
    client = sign_in(db_app.test_client(), w.vol_a)
    client.get("/sync/token")
    with statements(db_app) as photo:
        photo_id = upload(client)
    assert len(photo) == 2, photo                      # the user, INSERT photo
    assert photo[1].startswith("INSERT INTO photo")
    caplog.set_level(logging.INFO, logger="patrol.requests")
    with statements(db_app) as report:
        resp = client.post(f"/compounds/{w.a1}/report", headers=SYNC,
                           content_type="application/x-www-form-urlencoded",
                           data=urlencode([("client_uuid", str(uuid.uuid4())),
                                           ("category", "flyers"),
                                           ("kept_photos", str(photo_id))]))
    assert resp.status_code == 201, resp.data[:300]
    # the user, the compound, its buildings, the resend check, the kept photo, the
    # compound held and its company read (a handover at the same moment: test_races.py),
    # 3 tallies, INSERT item, the walk it may be part of, INSERT item_event, UPDATE photo,
    # receivers
    assert len(report) == 14, "\n".join(report)
    # Not `SET id = id`: SQLite checks every table referring to a written key (test below).
    assert sum(s.startswith('UPDATE "compound" SET "address" = "address"') or
               (s.startswith("SELECT compound.company_id") and s.endswith("FOR SHARE"))
               for s in report) == 1
    assert report[-1].startswith("SELECT notify_endpoint"), report[-1]
    assert sum(s.startswith("INSERT INTO item_tally") for s in report) == 3
    line = [r.getMessage() for r in caplog.records if r.name == "patrol.requests"][-1]
    assert line.startswith(f"POST /compounds/{w.a1}/report 201 ")
    assert line.endswith(f" user={w.vol_a}")


@pytest.mark.parametrize("teams", ["assigned", "none"])
def test_a_new_items_receivers_include_the_compounds_teams_in_one_statement(db_app, teams):
    """notify_item finds the teams' receivers in the statement that finds the others."""
    with db_app.app_context():
        w = build_world()
        other = Team(name="B队", community_id=w.cb)
        db.session.add(other)
        db.session.flush()
        if teams == "none":
            db.session.execute(db.delete(TeamCompound).where(TeamCompound.compound_id == w.a1))
        for name, owner in (("队", {"team_id": w.team}), ("别队", {"team_id": other.id}),
                            ("社区", {"community_id": w.ca})):
            db.session.add(NotifyEndpoint(name=name, kind="json", events=["new_item"],
                                          target=f"https://{uuid.uuid4().hex}.invalid/h",
                                          **owner))
        db.session.commit()
        found = notify.endpoints_for("new_item", community_id=w.ca, compound_id=w.a1,
                                     teams_of_compound=w.a1)
        listed = notify.endpoints_for("new_item", community_id=w.ca, compound_id=w.a1,
                                      team_ids=notify.compound_team_ids(w.a1))
        assert [e.name for e in found] == [e.name for e in listed]
        assert {e.name for e in found} == ({"队", "社区"} if teams == "assigned" else {"社区"})


def test_holding_a_compound_on_sqlite_reads_no_table_that_refers_to_it(tmp_path):
    """With foreign keys on, writing a row's id (even to itself) makes SQLite check every
    table that refers to it: all of `presence`, twice, while it holds the only write lock
    (17 ms at 200,000 scans). The hold writes a column nothing refers to: its program has
    no foreign-key check."""
    from patrol.services import row_locks
    from tests.conftest import make_app
    app = make_app(tmp_path)
    with app.app_context():
        w = build_world()
        statements_seen = []
        engine = db.engine

        def listen(conn, cursor, statement, *rest):
            statements_seen.append(statement)

        event.listen(engine, "before_cursor_execute", listen)
        try:
            assert row_locks.hold(Compound.company_id, w.a1) == w.x
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        db.session.rollback()
        [update] = [s for s in statements_seen if s.startswith("UPDATE")]
        conn = db.session.connection()

        def program(sql):
            return [r[1] for r in conn.exec_driver_sql("EXPLAIN " + sql, (w.a1,))]

        written_id = program('UPDATE "compound" SET id = id WHERE id = ?')
        held = program(update)
        db.session.rollback()
    assert "FkCounter" in written_id            # the check reads the referring tables
    assert "FkCounter" not in held, held
