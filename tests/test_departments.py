"""Departments (部门): routing an item to a department and back, the department's own
inbox, a manager's dispute and staff's decision, a department's written answer closing a
demand as answered, replies from every party in scope, and the committee's 督办 flag."""
from __future__ import annotations

from datetime import timedelta

import pytest

from patrol.extensions import db
from patrol.lifecycle import Action, TransitionError
from patrol.models import (Compound, Delivery, Department, Item, NotifyEndpoint, User, utcnow)
from patrol.services import items as svc
from patrol.web.helpers import hazard_form
from tests.conftest import sign_in
from tests.factories import PASSWORD, build_world, jpeg_bytes  # noqa: F401

from werkzeug.security import generate_password_hash

WINDOW = timedelta(minutes=30)


@pytest.fixture
def w(app):
    """The factories' world, two departments (one per community) with a user each, and
    one item in 小区A1 and one in 小区B1."""
    with app.app_context():
        w = build_world()
        da = Department(name="供水A", kind="water", community_id=w.ca, phone="0731-1")
        db_ = Department(name="供电B", kind="power", community_id=w.cb)
        db.session.add_all([da, db_])
        db.session.flush()
        pw = generate_password_hash(PASSWORD)
        wa = User(username="water_a", display_name="供水A员工", role="department",
                  department_id=da.id, password_hash=pw)
        pb = User(username="power_b", display_name="供电B员工", role="department",
                  department_id=db_.id, password_hash=pw)
        db.session.add_all([wa, pb])
        db.session.commit()
        w.dept_a, w.dept_b, w.water_a, w.power_b = da.id, db_.id, wa.id, pb.id
        w.item_a = _report(w.a1, w.vol_a).id
        w.item_b = _report(w.b1, w.vol_b).id
        db.session.commit()
        return w


def _report(compound_id, reporter_id, now=None, category="water_tank"):
    compound = db.session.get(Compound, compound_id)
    return svc.report(form=hazard_form(), compound=compound,
                      reporter=db.session.get(User, reporter_id),
                      clean={"category": category, "extra": {}}, photos=[], now=now or utcnow())


def _act(item_id, action, user_id, now=None, **given):
    item = db.session.get(Item, item_id)
    ev = svc.act(item, action, db.session.get(User, user_id), now or utcnow(),
                 svc.ActionInput(**given), form=hazard_form(), window=WINDOW)
    db.session.commit()
    return ev


def _post(client, item_id, **data):
    item = db.session.get(Item, item_id)
    data.setdefault("version", str(item.version))
    return client.post(f"/items/{item_id}/act", data=data)


def _photo(user_id):
    from patrol.services.photo_store import save_upload
    return save_upload(jpeg_bytes(), uploader=db.session.get(User, user_id), kind="after")


# --- routing ----------------------------------------------------------------------------

def test_route_to_a_department_and_back(app, w):
    client = sign_in(app.test_client(), w.staff_a)
    with app.app_context():
        hours = hazard_form().category("water_tank")["deadline_hours"]
        # The company acknowledges first; routing starts the department afresh.
        _act(w.item_a, Action.ACKNOWLEDGE, w.mgr_x)
        page = client.get(f"/items/{w.item_a}").get_data(as_text=True)
        assert 'id="act-route"' in page and "供水A" in page and "供电B" not in page
        resp = _post(client, w.item_a, action="route", party=str(w.dept_a),
                     reason="department_duty", note="市政管网")
        assert resp.status_code == 302
        db.session.expire_all()
        item = db.session.get(Item, w.item_a)
        routed = item.events[-1]
        assert (item.status, item.department_id, item.acknowledged_at) == (
            "reported", w.dept_a, None)
        # The deadline restarts from the hand-over, by the category's rule.
        assert item.deadline == routed.at + timedelta(hours=hours)
        assert (routed.action, routed.reason, routed.data["department_id"]) == (
            "route", "department_duty", w.dept_a)

        # Back to the company, with its own reason; later, so a new deadline.
        later = routed.at + timedelta(hours=5)
        _act(w.item_a, Action.ROUTE, w.staff_a, later, to_company=True, reason="company_duty")
        item = db.session.get(Item, w.item_a)
        assert (item.status, item.department_id, item.deadline) == (
            "reported", None, later + timedelta(hours=hours))
        hand_overs = [(e.action, e.reason, e.data.get("department_id"), e.data.get("company_id"))
                      for e in item.events if e.action == "route"]
        assert hand_overs == [("route", "department_duty", w.dept_a, None),
                              ("route", "company_duty", None, w.x)]
        page = client.get(f"/items/{w.item_a}").get_data(as_text=True)
        assert page.count('class="ev-route"') == 2 and "供水A" in page


def test_routing_is_refused_outside_reach(app, w):
    with app.app_context():
        # A department of another community is not in reach: no party, nothing changes.
        with pytest.raises(TransitionError):
            _act(w.item_a, Action.ROUTE, w.staff_a, department_id=w.dept_b,
                 reason="department_duty")
        db.session.rollback()
        # Back to the company when it is the company's already: nowhere to go.
        with pytest.raises(TransitionError):
            _act(w.item_a, Action.ROUTE, w.staff_a, to_company=True, reason="company_duty")
        db.session.rollback()
    # Managers, volunteers and other communities' staff do not route.
    for user in (w.mgr_x, w.vol_a, w.staff_b):
        client = sign_in(app.test_client(), user)
        with app.app_context():
            resp = _post(client, w.item_a, action="route", party=str(w.dept_a),
                         reason="department_duty")
            assert resp.status_code == 403, user
            assert db.session.get(Item, w.item_a).department_id is None


def test_department_inbox_sees_only_its_items_and_acts_on_them(app, w):
    with app.app_context():
        _act(w.item_a, Action.ROUTE, w.staff_a, department_id=w.dept_a, reason="department_duty")
        _act(w.item_b, Action.ROUTE, w.staff_b, department_id=w.dept_b, reason="department_duty")
        other = _report(w.a1, w.vol_a, category="flyers").id   # still the company's
        db.session.commit()
    client = sign_in(app.test_client(), w.water_a)
    assert client.get("/").headers["Location"].endswith("/inbox")
    inbox = client.get("/inbox?tab=new").get_data(as_text=True)
    assert f'href="/items/{w.item_a}"' in inbox
    assert f'href="/items/{w.item_b}"' not in inbox and f'href="/items/{other}"' not in inbox
    assert "供水A" in inbox
    for item_id in (w.item_b, other):
        assert client.get(f"/items/{item_id}").status_code == 403
        assert client.post(f"/items/{item_id}/act", data={"action": "comment",
                                                          "note": "x"}).status_code == 403
    assert client.get("/overview").status_code == 403
    page = client.get(f"/items/{w.item_a}").get_data(as_text=True)
    for action in ("acknowledge", "dispute", "answer", "comment"):
        assert f'id="act-{action}"' in page, action
    for action in ("route", "approve_answer", "flag", "verify"):
        assert f'id="act-{action}"' not in page, action
    assert 'id="responsible"' in page and "供水A" in page
    with app.app_context():
        assert _post(client, w.item_a, action="acknowledge").status_code == 302
        resp = client.post(f"/items/{w.item_a}/act", data={
            "action": "fix", "note": "已更换阀门", "version": str(db.session.get(Item, w.item_a).version),
            "photos": [(__import__("io").BytesIO(jpeg_bytes()), "fix.jpg")]},
            content_type="multipart/form-data")
        assert resp.status_code == 302
        assert db.session.get(Item, w.item_a).status == "fixed"


def test_a_manager_no_longer_acts_on_an_item_routed_away(app, w):
    with app.app_context():
        _act(w.item_a, Action.ROUTE, w.staff_a, department_id=w.dept_a, reason="department_duty")
    client = sign_in(app.test_client(), w.mgr_x)
    page = client.get(f"/items/{w.item_a}")
    assert page.status_code == 200        # still the company's item to read
    html = page.get_data(as_text=True)
    assert 'id="act-acknowledge"' not in html and 'id="act-dispute"' not in html
    with app.app_context():
        for action, extra in (("acknowledge", {}), ("dispute", {"note": "不是我们的"})):
            resp = _post(client, w.item_a, action=action, **extra)
            assert resp.status_code == 422, action
            item = db.session.get(Item, w.item_a)
            assert (item.status, item.disputed_at) == ("reported", None)
    # Another department's user neither sees nor acts on it.
    other = sign_in(app.test_client(), w.power_b)
    assert other.get(f"/items/{w.item_a}").status_code == 403


def test_a_managers_dispute_and_staffs_decision_are_recorded(app, w):
    mgr = sign_in(app.test_client(), w.mgr_x)
    with app.app_context():
        assert _post(mgr, w.item_a, action="dispute").status_code == 422   # a note is needed
        assert _post(mgr, w.item_a, action="dispute",
                     note="这是自来水公司的管道").status_code == 302
        item = db.session.get(Item, w.item_a)
        assert item.disputed_at is not None and item.status == "reported"
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get(f"/items/{w.item_a}").get_data(as_text=True)
    assert 'id="dispute-banner"' in page and "这是自来水公司的管道" in page
    assert 'id="act-decide_dispute"' in page
    with app.app_context():
        assert _post(staff, w.item_a, action="decide_dispute",
                     reason="is_responsible", note="小区内管道属物业").status_code == 302
        db.session.expire_all()
        item = db.session.get(Item, w.item_a)
        assert item.disputed_at is None and item.department_id is None
        assert [(e.action, e.note, e.reason) for e in item.events[-2:]] == [
            ("dispute", "这是自来水公司的管道", None),
            ("decide_dispute", "小区内管道属物业", "is_responsible")]
        # Nothing left to decide.
        assert _post(staff, w.item_a, action="decide_dispute",
                     reason="is_responsible").status_code == 422
    assert 'id="dispute-banner"' not in staff.get(f"/items/{w.item_a}").get_data(as_text=True)


def test_a_departments_answer_approved_by_staff_closes_as_answered(app, w):
    with app.app_context():
        _act(w.item_a, Action.ROUTE, w.staff_a, department_id=w.dept_a, reason="department_duty")
        # No answer yet: nothing to approve.
        with pytest.raises(TransitionError) as refused:
            _act(w.item_a, Action.APPROVE_ANSWER, w.staff_a)
        assert refused.value.code == "missing_evidence"
        db.session.rollback()
    dept = sign_in(app.test_client(), w.water_a)
    with app.app_context():
        assert _post(dept, w.item_a, action="answer",
                     note="水压属正常范围，高峰时段偏低").status_code == 302
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get(f"/items/{w.item_a}").get_data(as_text=True)
    assert 'id="answer"' in page and 'id="act-approve_answer"' in page
    with app.app_context():
        assert _post(staff, w.item_a, action="approve_answer").status_code == 302
        db.session.expire_all()
        item = db.session.get(Item, w.item_a)
        assert item.status == "answered" and item.closed_at is not None
    page = staff.get(f"/items/{w.item_a}").get_data(as_text=True)
    assert "已解答" in page or "Answered" in page
    assert 'id="act-comment"' not in page       # closed items stay final


def test_replies_keep_the_status_and_notify_subscribed_parties(app, w):
    with app.app_context():
        _act(w.item_a, Action.ROUTE, w.staff_a, department_id=w.dept_a, reason="department_duty")
        ends = {
            "community": NotifyEndpoint(name="社区", kind="json", target="https://a.invalid/",
                                        community_id=w.ca, events=["comment"]),
            "company": NotifyEndpoint(name="物业", kind="json", target="https://b.invalid/",
                                      company_id=w.x, events=["comment", "new_item"]),
            "committee": NotifyEndpoint(name="业委会", kind="json", target="https://c.invalid/",
                                        compound_id=w.a1, events=["comment"]),
            "department": NotifyEndpoint(name="供水", kind="json", target="https://d.invalid/",
                                         department_id=w.dept_a, events=["comment"]),
            "deaf": NotifyEndpoint(name="不订阅", kind="json", target="https://e.invalid/",
                                   community_id=w.ca, events=["new_item"]),
            "elsewhere": NotifyEndpoint(name="别处", kind="json", target="https://f.invalid/",
                                        community_id=w.cb, events=["comment"]),
        }
        db.session.add_all(ends.values())
        db.session.commit()
        ids = {k: e.id for k, e in ends.items()}
        before = db.session.get(Item, w.item_a).status
    parties = (w.vol_a, w.staff_a, w.mgr_x, w.com_a1, w.water_a, w.admin)
    for n, user in enumerate(parties):
        client = sign_in(app.test_client(), user)
        page = client.get(f"/items/{w.item_a}").get_data(as_text=True)
        assert 'id="act-comment"' in page, user
        with app.app_context():
            resp = _post(client, w.item_a, action="comment", note=f"回复{n}<b>")
            assert resp.status_code == 302, user
    # Out of scope: refused, nothing recorded.
    for user in (w.staff_b, w.com_a2, w.mgr_y, w.power_b, w.vol_b):
        client = sign_in(app.test_client(), user)
        with app.app_context():
            assert _post(client, w.item_a, action="comment", note="x").status_code == 403
    with app.app_context():
        item = db.session.get(Item, w.item_a)
        comments = [e for e in item.events if e.action == "comment"]
        assert item.status == before and len(comments) == len(parties)
        assert all(e.from_status == e.to_status == before for e in comments)
        counts = {k: db.session.scalar(db.select(db.func.count()).select_from(Delivery).where(
            Delivery.endpoint_id == i, Delivery.event == "comment")) for k, i in ids.items()}
        assert counts == {"community": 6, "company": 6, "committee": 6, "department": 6,
                          "deaf": 0, "elsewhere": 0}
    page = sign_in(app.test_client(), w.staff_a).get(f"/items/{w.item_a}").get_data(as_text=True)
    assert "回复0&lt;b&gt;" in page and "回复0<b>" not in page     # escaped


def test_committee_flag_is_lifted_only_by_staff_or_closing(app, w):
    com = sign_in(app.test_client(), w.com_a1)
    page = com.get(f"/items/{w.item_a}").get_data(as_text=True)
    assert 'id="act-flag"' in page and 'id="act-comment"' in page
    assert 'id="act-acknowledge"' not in page and 'id="act-unflag"' not in page
    with app.app_context():
        assert _post(com, w.item_a, action="flag").status_code == 422     # a reason is needed
        assert _post(com, w.item_a, action="flag", reason="slow",
                     note="拖了两周").status_code == 302
        item = db.session.get(Item, w.item_a)
        assert item.flagged_at is not None and item.flag_reason == "slow"
        assert item.status == "reported"
        # Flagged already; the committee cannot lift it; nor can the company.
        assert _post(com, w.item_a, action="flag", reason="slow").status_code == 422
        assert _post(com, w.item_a, action="unflag").status_code == 403
        mgr = sign_in(app.test_client(), w.mgr_x)
        assert _post(mgr, w.item_a, action="unflag").status_code in (403, 409, 422)
        assert db.session.get(Item, w.item_a).flagged_at is not None
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get(f"/items/{w.item_a}").get_data(as_text=True)
    assert 'id="flag-banner"' in page and "拖了两周" in page and 'id="act-unflag"' in page
    with app.app_context():
        assert _post(staff, w.item_a, action="unflag").status_code == 302
        db.session.expire_all()
        assert db.session.get(Item, w.item_a).flagged_at is None
        # Flagged again, then closed: closing lifts it.
        _act(w.item_a, Action.FLAG, w.com_a1, reason="safety")
        assert db.session.get(Item, w.item_a).flagged_at is not None
        _act(w.item_a, Action.REJECT, w.staff_a, reason="not_a_hazard")
        item = db.session.get(Item, w.item_a)
        assert (item.status, item.flagged_at, item.flag_reason) == ("rejected", None, None)


# --- the departments pages ---------------------------------------------------------------

def test_staff_add_and_edit_their_communitys_departments_and_users(app, w):
    staff = sign_in(app.test_client(), w.staff_a)
    page = staff.get("/departments").get_data(as_text=True)
    assert "供水A" in page and "供电B" not in page
    # Staff's departments are their community's, whatever binding is sent.
    resp = staff.post("/departments", data={"name": "城管A", "kind": "chengguan",
                                            "phone": "12345", "bound_to": f"community:{w.cb}"})
    assert resp.status_code == 302
    with app.app_context():
        dept = db.session.execute(db.select(Department).where(
            Department.name == "城管A")).scalar_one()
        assert (dept.community_id, dept.street_id, dept.kind) == (w.ca, None, "chengguan")
        dept_id = dept.id
    assert staff.post("/departments", data={"name": "城管A", "kind": "chengguan"}).status_code == 422
    assert staff.post("/departments", data={"name": "x", "kind": "nonsense"}).status_code == 422
    assert staff.post(f"/departments/{dept_id}", data={
        "name": "城管中队A", "kind": "chengguan", "active": "1"}).status_code == 302
    resp = staff.post(f"/departments/{dept_id}/users", data={
        "display_name": "城管员", "username": "cg_a", "password": "long-enough-1"})
    assert resp.status_code == 302
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.username == "cg_a")).scalar_one()
        assert (user.role, user.department_id, user.community_id) == ("department", dept_id, None)
        user_id = user.id
    assert staff.get(f"/people/accounts/{user_id}").status_code == 200
    # Another community's staff: not theirs (404 alike), and volunteers have no such page.
    other = sign_in(app.test_client(), w.staff_b)
    assert "城管中队A" not in other.get("/departments").get_data(as_text=True)
    assert other.get(f"/departments/{dept_id}").status_code == 404
    assert other.post(f"/departments/{dept_id}/users", data={
        "display_name": "x", "username": "x_b", "password": "long-enough-1"}).status_code == 404
    assert other.get(f"/people/accounts/{user_id}").status_code == 404
    for user in (w.vol_a, w.mgr_x, w.com_a1, w.water_a):
        assert sign_in(app.test_client(), user).get("/departments").status_code == 403
    # Deactivated: no longer offered for routing.
    assert staff.post(f"/departments/{dept_id}", data={
        "name": "城管中队A", "kind": "chengguan"}).status_code == 302
    page = staff.get(f"/items/{w.item_a}").get_data(as_text=True)
    assert "城管中队A" not in page and "供水A" in page
