"""Permission matrix: every role against items of its own and of another compound,
company and community. Pages, photos, lists and actions: no leaks."""
import io

import pytest

from patrol.extensions import db
from patrol.models import Compound, Item, ItemEvent
from patrol.services import items as svc
from patrol.services.photo_store import save_upload
from patrol.web.helpers import hazard_form
from patrol.models import User, utcnow
from tests.conftest import sign_in
from tests.factories import build_world, jpeg_bytes

# Which compounds each user may see (a1: community A/company X, a2: A/Y, b1: B/X).
VISIBLE = {
    "vol_a": {"a1", "a2"}, "staff_a": {"a1", "a2"},
    "vol_b": {"b1"}, "staff_b": {"b1"},
    "mgr_x": {"a1", "b1"}, "mgr_y": {"a2"},
    "com_a1": {"a1"}, "com_a2": {"a2"},
    "admin": {"a1", "a2", "b1"},
}
COMPOUNDS = ("a1", "a2", "b1")


@pytest.fixture
def setup(app):
    with app.app_context():
        w = build_world()
        items, photos = {}, {}
        for name in COMPOUNDS:
            compound = db.session.get(Compound, getattr(w, name))
            reporter = db.session.get(User, w.vol_b if name == "b1" else w.vol_a)
            photo = save_upload(jpeg_bytes(color=(len(name) * 30, 90, 10)), uploader=reporter,
                                kind="before")
            item = svc.report(form=hazard_form(), compound=compound, reporter=reporter,
                              clean={"category": "flyers", "extra": {}}, photos=[photo],
                              now=utcnow())
            db.session.commit()
            items[name], photos[name] = item.id, photo.id
        return w, items, photos


@pytest.mark.parametrize("username", sorted(VISIBLE))
@pytest.mark.parametrize("compound", COMPOUNDS)
def test_item_page_and_photos(app, setup, username, compound):
    w, items, photos = setup
    client = sign_in(app.test_client(), getattr(w, username))
    allowed = compound in VISIBLE[username]
    page = client.get(f"/items/{items[compound]}")
    assert page.status_code == (200 if allowed else 403)
    for size in ("thumb", "full"):
        resp = client.get(f"/photos/{photos[compound]}/{size}.jpg")
        assert resp.status_code == (200 if allowed else 404)
        if allowed:
            assert resp.mimetype == "image/jpeg"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(f"/compounds/{getattr(w, compound)}").status_code == (200 if allowed else 403)


@pytest.mark.parametrize("username", sorted(VISIBLE))
def test_lists_show_only_visible_items(app, setup, username):
    w, items, _ = setup
    client = sign_in(app.test_client(), getattr(w, username))
    visible = {items[c] for c in VISIBLE[username]}
    hidden = set(items.values()) - visible
    pages = ["/compounds"]
    with app.app_context():
        role = db.session.get(User, getattr(w, username)).role
    if role in ("staff", "admin"):
        pages.append("/overview?status=open")
    if role in ("manager", "admin"):
        pages.append("/inbox?tab=new")
    seen = set()
    for url in pages:
        html = client.get(url).get_data(as_text=True)
        for item_id in items.values():
            if f'href="/items/{item_id}"' in html:
                seen.add(item_id)
        for compound in set(COMPOUNDS) - VISIBLE[username]:
            with app.app_context():
                name = db.session.get(Compound, getattr(w, compound)).name
            assert name not in html, f"{username} sees {name} on {url}"
    assert not (seen & hidden)
    if role in ("staff", "admin", "manager"):
        assert seen == visible


@pytest.mark.parametrize("username", sorted(VISIBLE))
@pytest.mark.parametrize("compound", COMPOUNDS)
def test_actions_refused_outside_scope(app, setup, username, compound):
    w, items, _ = setup
    client = sign_in(app.test_client(), getattr(w, username))
    resp = client.post(f"/items/{items[compound]}/act",
                       data={"action": "acknowledge", "version": "1"})
    with app.app_context():
        item = db.session.get(Item, items[compound])
        events = db.session.scalar(db.select(db.func.count()).select_from(ItemEvent)
                                   .where(ItemEvent.item_id == item.id))
        user = db.session.get(User, getattr(w, username))
        if compound not in VISIBLE[username] or user.role == "committee":
            assert resp.status_code == 403
        if resp.status_code != 302:
            assert item.status == "reported" and events == 1
        else:  # only the company's own manager may acknowledge
            assert user.role == "manager" and compound in VISIBLE[username]
            assert item.status == "acknowledged"


@pytest.mark.parametrize("username", sorted(VISIBLE))
@pytest.mark.parametrize("compound", COMPOUNDS)
def test_reporting_and_scanning(app, setup, username, compound):
    w, _, _ = setup
    client = sign_in(app.test_client(), getattr(w, username))
    with app.app_context():
        c = db.session.get(Compound, getattr(w, compound))
        token, role = c.qr_token, db.session.get(User, getattr(w, username)).role
    may_see = compound in VISIBLE[username]
    may_report = may_see and role in ("volunteer", "staff")
    assert client.get(f"/compounds/{getattr(w, compound)}/report").status_code == \
        (200 if may_report else 403)
    resp = client.post(f"/compounds/{getattr(w, compound)}/report",
                       content_type="multipart/form-data",
                       data={"category": "other", "photos": (io.BytesIO(jpeg_bytes()), "x.jpg")})
    assert resp.status_code == (302 if may_report else 403)
    assert client.get(f"/c/{token}").status_code == (302 if may_see else 403)


def test_pending_photo_is_private_to_its_uploader(app, setup):
    w, _, _ = setup
    with app.app_context():
        photo = save_upload(jpeg_bytes(), uploader=db.session.get(User, w.vol_a), kind="before")
        db.session.commit()
        pid = photo.id
    assert sign_in(app.test_client(), w.vol_a).get(f"/photos/{pid}/thumb.jpg").status_code == 200
    for other in (w.staff_a, w.admin, w.mgr_x):
        assert sign_in(app.test_client(), other).get(f"/photos/{pid}/thumb.jpg").status_code == 404


def test_anonymous_sees_nothing(app, setup):
    w, items, photos = setup
    client = app.test_client()
    for url in (f"/items/{items['a1']}", f"/photos/{photos['a1']}/full.jpg", "/overview",
                "/inbox", f"/compounds/{w.a1}", "/admin/volunteers"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_staff_without_a_community_manage_nothing(app, world):
    """Defence in depth: such an account (the CLI refuses to make one) sees no volunteers,
    teams or QR codes, and cannot make a volunteer anywhere; admins still see all."""
    with app.app_context():
        lost = User(username="staff_none", display_name="无社区", role="staff")
        db.session.add(lost)
        db.session.commit()
        lost_id = lost.id
    client = sign_in(app.test_client(), lost_id)
    page = client.get("/admin/volunteers").get_data(as_text=True)
    assert "vol_a" not in page and "A队" not in page
    assert "小区A1" not in client.get("/admin/compounds").get_data(as_text=True)
    resp = client.post("/admin/volunteers", data={"display_name": "planted", "team_id": world.team})
    assert resp.status_code != 302 and "/invite/" not in resp.get_data(as_text=True)
    with app.app_context():
        assert not db.session.execute(db.select(User).where(User.display_name == "planted")).first()
    admin_page = sign_in(app.test_client(), world.admin).get("/admin/volunteers").get_data(as_text=True)
    assert "vol_a" in admin_page


@pytest.mark.parametrize("username", sorted(VISIBLE))
@pytest.mark.parametrize("compound", COMPOUNDS)
def test_only_volunteers_and_staff_record_scans_online_or_from_the_outbox(app, world, username,
                                                                         compound):
    """One rule (permissions.can_record_presence) for the gate QR opened online and for a
    scan queued offline and sent by the phone's outbox. Managers, committee members and
    admins may open the QR's page, but no scan is recorded for them on either path."""
    from datetime import timedelta
    from patrol.models import Presence

    client = sign_in(app.test_client(), getattr(world, username))
    with app.app_context():
        c = db.session.get(Compound, getattr(world, compound))
        token, role = c.qr_token, db.session.get(User, getattr(world, username)).role

    def scans():
        with app.app_context():
            return db.session.scalar(db.select(db.func.count()).select_from(Presence))

    may_see = compound in VISIBLE[username]
    records = may_see and role in ("volunteer", "staff")

    online = client.get(f"/c/{token}")
    assert online.status_code == (302 if may_see else 403)
    assert scans() == (1 if records else 0)

    device_at = (utcnow() - timedelta(minutes=5)).isoformat(timespec="milliseconds") + "Z"
    queued = client.post("/sync/presence", headers={"X-Patrol-Sync": "1"},
                         data={"token": token, "device_at": device_at})
    if records:
        assert queued.status_code == 201 and scans() == 2
    else:
        assert queued.status_code == 403 and scans() == 0
        # The outbox keeps the record and shows `error`, in the user's language.
        assert queued.get_json() == {"error": "只有志愿者和社区工作人员可以记录扫码。"
                                     if may_see else "您没有权限访问此页面。",
                                     "code": "scan_not_allowed" if may_see else "forbidden",
                                     "fields": {}}


# --- one rule, one place (patrol/permissions.py) ----------------------------------------

def test_role_values_are_never_literals():
    """Roles are `Role` members everywhere in patrol/: no 'staff', "admin", … outside the
    enum. Docstrings, dictionary look-ups by key (the demo seed's user names), blueprint
    names and the demo accounts' user names are not role values."""
    import ast
    import pathlib

    from patrol import labels
    from patrol.lifecycle import Role

    values = {r.value for r in Role}
    root = pathlib.Path(__file__).resolve().parent.parent / "patrol"
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "lifecycle.py":       # the enum itself
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                skip.add(id(node.value))                                  # docstrings
            elif isinstance(node, ast.Subscript):
                skip.add(id(node.slice))                                  # users["staff"]
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint"
                  and node.args):
                skip.add(id(node.args[0]))                                # Blueprint("admin")
            elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Dict)):
                names = {getattr(t, "id", None) for t in node.targets}
                if "DEMO_USERS" in names:                                 # demo user names
                    skip.update(id(e.elts[0]) for e in node.value.elts)
        found += [f"patrol/{rel}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in values and id(n) not in skip]
    assert not found, "use patrol.lifecycle.Role:\n" + "\n".join(found)
    assert set(labels.ROLE) == values


def test_refusals_follow_one_rule(app, setup):
    """Missing: 404. Exists but outside the user's scope: 403 for items, compounds and
    scorecards (their numbers are printed anyway), 404 for everything else, as if it did
    not exist (docs/security.md). A role that may never do the thing: 403."""
    from patrol import permissions
    from patrol.models import Device, NotifyEndpoint

    w, items, photos = setup
    with app.app_context():
        device = Device(user_id=w.vol_a, secret_hash="0" * 64)
        endpoint = NotifyEndpoint(name="A群", kind="json", target="https://a.invalid/",
                                  community_id=w.ca)
        db.session.add_all([device, endpoint])
        db.session.commit()
        device_id, endpoint_id = device.id, endpoint.id
    staff_b = sign_in(app.test_client(), w.staff_b)
    outside = {  # community A's things, asked for by community B's staff
        f"/items/{items['a1']}": 403,
        f"/compounds/{w.a1}": 403,
        f"/compounds/{w.a1}/report": 403,
        f"/ratings/companies/{w.y}": 403,
        f"/photos/{photos['a1']}/full.jpg": 404,
        f"/admin/volunteers/{w.vol_a}": 404,
        f"/admin/compounds/{w.a1}/poster.pdf": 404,
        f"/reports/weekly.pdf?scope=compound&id={w.a1}": 404,
    }
    for url, status in outside.items():
        assert staff_b.get(url).status_code == status, url
    for url in (f"/admin/devices/{device_id}/revoke", f"/notifications/{endpoint_id}/test"):
        assert staff_b.post(url).status_code == 404, url
    missing = ["/items/999999", "/compounds/999999", "/compounds/999999/report",
               "/ratings/companies/999999", "/photos/999999/full.jpg",
               "/admin/volunteers/999999", "/admin/compounds/999999/poster.pdf",
               "/reports/weekly.pdf?scope=compound&id=999999"]
    for url in missing:
        assert staff_b.get(url).status_code == 404, url
    # The rule's table: the browsable map says 403, everything else 404.
    assert {c.__name__ for c in permissions.FORBIDDEN_WHEN_REFUSED} == {
        "can_see_item", "can_act_on_item", "can_see_compound", "can_report",
        "can_record_presence", "can_see_scorecard",
        # item checks of the seed's chain (issue 12): on items, so the same map
        "can_comment", "can_supervise", "can_route"}
    for check in (permissions.can_see_photo, permissions.can_manage_volunteer,
                  permissions.can_manage_compound, permissions.can_manage_device,
                  permissions.can_manage_endpoint, permissions.can_print_weekly):
        assert permissions.refusal_status(check) == 404
    # A volunteer may never print or manage: the role gate answers 403 before any lookup.
    vol = sign_in(app.test_client(), w.vol_a)
    for url in (f"/reports/weekly.pdf?scope=compound&id={w.a1}", f"/admin/volunteers/{w.vol_a}",
                "/admin/volunteers/999999"):
        assert vol.get(url).status_code == 403, url


def test_staff_without_a_community_see_nothing(app, setup):
    """An account the CLI refuses to make, but the database allows: a staff member with no
    community sees no compound, item, photo, list, rating or receiver, in any form."""
    w, items, photos = setup
    with app.app_context():
        lost = User(username="staff_none", display_name="无社区", role="staff")
        db.session.add(lost)
        db.session.commit()
        lost_id = lost.id
        names = [c.name for c in db.session.execute(db.select(Compound)).scalars()]
    client = sign_in(app.test_client(), lost_id)
    for item_id in items.values():
        assert client.get(f"/items/{item_id}").status_code == 403
    for photo_id in photos.values():
        assert client.get(f"/photos/{photo_id}/thumb.jpg").status_code == 404
    for url in ("/compounds", "/overview?status=open", "/escalations", "/reports/weekly"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        html = resp.get_data(as_text=True)
        assert not any(f'href="/items/{i}"' in html for i in items.values()), url
        assert not any(name in html for name in names), url
    assert client.get("/ratings").status_code == 403       # not the whole district's list
    assert client.get("/notifications").status_code == 403


# --- street staff (街道工作人员): every community of their street, nothing of another ----

STREET_VISIBLE = {"a1", "a2"}    # community A is in street one; B (and b1) in street two


def _street_staff(app, w):
    from patrol.lifecycle import Role
    from patrol.models import Community, Street
    with app.app_context():
        one, two = Street(name="街道一"), Street(name="街道二")
        db.session.add_all([one, two])
        db.session.flush()
        db.session.get(Community, w.ca).street_id = one.id
        db.session.get(Community, w.cb).street_id = two.id
        user = User(username="street_1", display_name="street_1",
                    role=Role.STREET_STAFF.value, street_id=one.id)
        db.session.add(user)
        db.session.commit()
        return user.id


@pytest.mark.parametrize("compound", COMPOUNDS)
def test_street_staff_see_report_and_scan_in_their_street_only(app, setup, compound):
    w, items, photos = setup
    client = sign_in(app.test_client(), _street_staff(app, w))
    allowed = compound in STREET_VISIBLE
    assert client.get(f"/items/{items[compound]}").status_code == (200 if allowed else 403)
    for size in ("thumb", "full"):
        assert client.get(f"/photos/{photos[compound]}/{size}.jpg").status_code == \
            (200 if allowed else 404)
    compound_id = getattr(w, compound)
    assert client.get(f"/compounds/{compound_id}").status_code == (200 if allowed else 403)
    assert client.get(f"/compounds/{compound_id}/report").status_code == (200 if allowed else 403)
    with app.app_context():
        c = db.session.get(Compound, compound_id)
        token, name = c.qr_token, c.name
    assert client.get(f"/c/{token}").status_code == (302 if allowed else 403)
    assert (name in client.get("/compounds").get_data(as_text=True)) == allowed
    # management: their street's compounds, another street's answer 404 like missing ones
    assert client.get(f"/places/compounds/{compound_id}").status_code == (200 if allowed else 404)
