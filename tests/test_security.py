"""Sign-in, invites and devices, CSRF, headers and cookies."""
import re
from datetime import timedelta


from patrol.extensions import db
from patrol.models import Device, Invite, User
from patrol.services import accounts
from tests.conftest import make_app, sign_in
from tests.factories import PASSWORD, build_world


def _invite(app, user_id, lifetime=timedelta(hours=1)):
    with app.app_context():
        token = accounts.create_invite(db.session.get(User, user_id), None, lifetime)
        db.session.commit()
        return token


def test_invite_is_single_use_and_signs_the_phone_in(app, world):
    token = _invite(app, world.vol_a)
    phone = app.test_client()
    # Opening the link (or a chat app's link preview) does not use it up.
    assert phone.get(f"/invite/{token}").status_code == 200
    assert phone.get(f"/invite/{token}").status_code == 200
    resp = phone.post(f"/invite/{token}",
                      headers={"User-Agent": "Mozilla/5.0 (Linux; Android 13) MicroMessenger"})
    assert resp.status_code == 302
    assert phone.get(f"/compounds/{world.a1}").status_code == 200
    remember = phone.get_cookie("remember_token")
    assert remember is not None and remember.expires is not None
    assert remember.http_only
    # A second phone cannot reuse it.
    other = app.test_client()
    assert other.post(f"/invite/{token}").status_code == 410
    assert other.get(f"/compounds/{world.a1}").status_code == 302
    with app.app_context():
        device = db.session.execute(db.select(Device)).scalar_one()
        assert "MicroMessenger" in device.user_agent
        assert db.session.execute(db.select(Invite)).scalar_one().used_at is not None


def test_expired_and_unknown_invites(app, world):
    token = _invite(app, world.vol_a, lifetime=timedelta(seconds=-1))
    client = app.test_client()
    assert client.get(f"/invite/{token}").status_code == 410
    assert client.post(f"/invite/{token}").status_code == 410
    assert client.post("/invite/not-a-token").status_code == 410


def test_revoking_a_device_signs_that_phone_out_even_with_remember_cookie(app, world):
    token = _invite(app, world.vol_a)
    phone = app.test_client()
    phone.post(f"/invite/{token}")
    assert phone.get(f"/compounds/{world.a1}").status_code == 200
    with app.app_context():
        device_id = db.session.execute(db.select(Device)).scalar_one().id
    staff = sign_in(app.test_client(), world.staff_a)
    page = staff.get(f"/admin/volunteers/{world.vol_a}").get_data(as_text=True)
    assert f"/admin/devices/{device_id}/revoke" in page
    # Staff of another community cannot touch it.
    assert sign_in(app.test_client(), world.staff_b).post(
        f"/admin/devices/{device_id}/revoke").status_code == 404
    assert staff.post(f"/admin/devices/{device_id}/revoke").status_code == 302
    assert phone.get(f"/compounds/{world.a1}").status_code == 302
    # Even a fresh session that only has the remember cookie stays out.
    remember = phone.get_cookie("remember_token")
    fresh = app.test_client()
    fresh.set_cookie("remember_token", remember.value)
    assert fresh.get(f"/compounds/{world.a1}").status_code == 302


def test_signing_out_a_phone_cannot_be_undone_by_a_late_response(app, world):
    """A request still on its way at sign-out answers with the old session cookie; the
    phone's device is revoked at sign-out, so that cookie signs nobody in."""
    token = _invite(app, world.vol_a)
    phone = app.test_client()
    phone.post(f"/invite/{token}")
    assert phone.get(f"/compounds/{world.a1}").status_code == 200
    old_session, old_remember = phone.get_cookie("session").value, phone.get_cookie("remember_token").value
    assert phone.post("/logout").status_code == 302
    assert phone.get(f"/compounds/{world.a1}").status_code == 302
    phone.set_cookie("session", old_session)          # the late response's Set-Cookie
    phone.set_cookie("remember_token", old_remember)
    assert phone.get(f"/compounds/{world.a1}").status_code == 302
    with app.app_context():
        assert db.session.execute(db.select(Device)).scalar_one().revoked_at is not None


def test_signing_out_one_browser_leaves_the_users_other_browsers_signed_in(app, world):
    desk, pocket = app.test_client(), app.test_client()
    for browser in (desk, pocket):
        assert browser.post("/login", data={"username": "mgr_x", "password": PASSWORD}
                            ).status_code == 302
    old_session = desk.get_cookie("session").value
    assert desk.post("/logout").status_code == 302
    assert desk.get(f"/compounds/{world.a1}").status_code == 302
    assert pocket.get(f"/compounds/{world.a1}").status_code == 200
    # A late answer's old cookie does not bring the desk's sign-in back either.
    desk.set_cookie("session", old_session)
    assert desk.get(f"/compounds/{world.a1}").status_code == 302
    assert pocket.get(f"/compounds/{world.a1}").status_code == 200


def test_staff_create_volunteer_and_get_invite(app, world):
    staff = sign_in(app.test_client(), world.staff_a)
    bad = staff.post("/admin/volunteers", data={"display_name": "", "phone": "abc"})
    assert bad.status_code == 422
    assert staff.post("/admin/volunteers", data={"display_name": "王", "phone": "１３８００"}
                      ).status_code == 302               # typed with a Chinese input method
    with app.app_context():
        assert db.session.execute(db.select(User.phone).where(User.display_name == "王")
                                  ).scalar_one() == "13800"
    assert staff.post("/admin/volunteers", data={"display_name": "赵大爷",
                                                 "phone": "+86 138-0000-0000"}).status_code == 302
    resp = staff.post("/admin/volunteers", data={"display_name": "刘阿姨", "phone": "13800000000",
                                                 "title": "邻长"})
    assert resp.status_code == 302          # post/redirect/get: a reload creates nothing
    shown = staff.get(resp.headers["Location"])
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    link = re.search(r'value="(http://patrol.test/invite/[^"]+)"', shown.get_data(as_text=True))
    assert link
    assert link.group(0) in staff.get(resp.headers["Location"]).get_data(as_text=True)  # reload
    # Another browser (here an admin's, who may see this volunteer) does not get this link.
    other = sign_in(app.test_client(), world.admin).get(resp.headers["Location"])
    assert other.status_code == 302 and link.group(1) not in other.get_data(as_text=True)
    with app.app_context():
        user = db.session.execute(db.select(User).where(User.display_name == "刘阿姨")).scalar_one()
        assert (user.role, user.title, user.community_id, user.password_hash) == \
            ("volunteer", "邻长", world.ca, None)
    phone = app.test_client()
    assert phone.post(link.group(1).replace("http://patrol.test", "")).status_code == 302
    assert phone.get(f"/compounds/{world.a1}").status_code == 200
    assert phone.get(f"/compounds/{world.b1}").status_code == 403
    used = staff.get(resp.headers["Location"])       # a used link is no longer shown
    assert used.status_code == 302 and link.group(1) not in used.get_data(as_text=True)
    # A new link for a lost phone: made by POST, shown by GET, different from the first.
    again = staff.post(f"/admin/volunteers/{user.id}/invite")
    assert again.status_code == 302 and again.headers["Location"] == resp.headers["Location"]
    second = re.search(r'value="(http://patrol.test/invite/[^"]+)"',
                       staff.get(again.headers["Location"]).get_data(as_text=True))
    assert second and second.group(1) != link.group(1)


def test_password_login_and_rate_limit(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="5 per minute")
    with app.app_context():
        w = build_world()
        stored = db.session.get(User, w.staff_a).password_hash
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    client = app.test_client()
    assert client.post("/login", data={"username": "staff_a", "password": "wrong"}).status_code == 401
    ok = client.post("/login?next=//evil.example/x", data={"username": "staff_a", "password": PASSWORD})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    other = app.test_client()
    codes = [other.post("/login", data={"username": "staff_a", "password": "x"}).status_code
             for _ in range(6)]
    assert codes[-1] == 429, codes


def test_volunteers_cannot_use_password_login(app, world):
    client = app.test_client()
    resp = client.post("/login", data={"username": "vol_a", "password": ""})
    assert resp.status_code == 401


def test_csrf_is_required_for_state_changes(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
    client = sign_in(app.test_client(), w.staff_a)
    resp = client.post(f"/admin/compounds/{w.a1}/rotate")
    assert resp.status_code == 400
    assert "expired" in resp.get_data(as_text=True) or "过期" in resp.get_data(as_text=True)
    page = client.get("/admin/compounds").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post(f"/admin/compounds/{w.a1}/rotate", data={"csrf_token": token}).status_code == 302


def test_the_phone_outbox_gets_errors_it_can_show_and_retry(tmp_path):
    """Requests from the outbox (X-Patrol-Sync) get JSON in the user's language; an
    expired form is marked for a retry with a new token rather than refused for good."""
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        w = build_world()
    phone = sign_in(app.test_client(), w.vol_a)
    sync = {"X-Patrol-Sync": "1", "X-CSRFToken": "stale"}
    resp = phone.post(f"/compounds/{w.a1}/report", headers=sync, data={"category": "flyers"})
    assert resp.status_code == 400
    assert resp.get_json() == {"error": "表单已过期，将自动重新发送。", "retry": True,
                               "code": "csrf", "fields": {}}
    assert phone.get("/nothing-here", headers=sync).get_json() == {
        "error": "页面不存在，或链接已失效。", "code": "not_found", "fields": {}}
    # Pages still get pages.
    page = phone.post(f"/compounds/{w.a1}/report", data={"category": "flyers"})
    assert page.status_code == 400 and page.mimetype == "text/html"


def test_no_state_change_by_get(app):
    state_changing = {"auth.logout", "auth.redeem", "auth.set_lang", "items.act",
                      "admin.new_invite", "admin.revoke_device", "admin.rotate",
                      "compounds.presence_location"}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in state_changing:
            assert "GET" not in rule.methods, rule


def test_security_headers_and_cookie_flags(tmp_path):
    app = make_app(tmp_path, SESSION_COOKIE_SECURE=True)
    with app.app_context():
        build_world()
    client = app.test_client()
    resp = client.post("/login", data={"username": "staff_a", "password": PASSWORD})
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_defaults_are_secure():
    from patrol.config import Config
    assert Config.SESSION_COOKIE_SECURE and Config.REMEMBER_COOKIE_SECURE
    assert Config.SESSION_COOKIE_HTTPONLY and Config.SESSION_COOKIE_SAMESITE == "Lax"
    assert Config.MAX_CONTENT_LENGTH and Config.MAX_CONTENT_LENGTH <= 64 * 1024 * 1024


def test_upload_size_limit(tmp_path):
    app = make_app(tmp_path, MAX_CONTENT_LENGTH=1024 * 1024)
    with app.app_context():
        w = build_world()
    import io
    client = sign_in(app.test_client(), w.vol_a)
    resp = client.post(f"/compounds/{w.a1}/report", content_type="multipart/form-data",
                       data={"category": "other",
                             "photos": (io.BytesIO(b"\xff" * (2 * 1024 * 1024)), "big.jpg")})
    assert resp.status_code == 413


def test_user_text_is_escaped(app, world):
    import io
    from tests.factories import jpeg_bytes
    client = sign_in(app.test_client(), world.vol_a)
    client.post(f"/compounds/{world.a1}/report", content_type="multipart/form-data",
                data={"category": "other", "note": "<script>alert(1)</script>",
                      "photos": (io.BytesIO(jpeg_bytes()), "x.jpg")})
    html = client.get("/items/1").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_qr_tokens_are_long_and_rotatable(app, world):
    with app.app_context():
        from patrol.models import Compound
        c = db.session.get(Compound, world.a1)
        old = c.qr_token
        assert len(old) >= 22  # >= 128 bits of URL-safe base64
        c.rotate_token()
        assert c.qr_token != old


def test_changing_a_password_signs_the_user_out_everywhere(app, world):
    client = app.test_client()
    client.post("/login", data={"username": "staff_a", "password": PASSWORD})
    assert client.get("/overview").status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["set-password", "staff_a", "--password", "new-password-2"])
    assert result.exit_code == 0, result.output
    assert client.get("/overview").status_code == 302          # the old session is gone
    fresh = app.test_client()
    assert fresh.post("/login", data={"username": "staff_a", "password": PASSWORD}).status_code == 401
    assert fresh.post("/login", data={"username": "staff_a",
                                      "password": "new-password-2"}).status_code == 302
    assert runner.invoke(args=["set-password", "vol_a", "--password", "whatever1"]).exit_code != 0


def test_only_a_volunteers_sign_out_asks_first(app, world):
    """A volunteer needs a new link after signing out; staff just sign in again."""
    import html as html_lib
    signout = re.compile(r'<form[^>]*class="signout[^>]*>')
    vol = sign_in(app.test_client(), world.vol_a).get("/compounds").get_data(as_text=True)
    staff = sign_in(app.test_client(), world.staff_a).get("/compounds").get_data(as_text=True)
    assert "data-confirm" in signout.search(vol).group(0)
    assert "需要社区重新发给您新的登录链接" in html_lib.unescape(signout.search(vol).group(0))
    assert "data-confirm" not in signout.search(staff).group(0)


def _presences(app):
    from patrol.models import Presence
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Presence))


def test_a_link_from_another_site_cannot_record_a_gate_scan_by_itself(app, world):
    """SameSite=Lax cookies go with top-level navigations from other sites, so such a
    navigation asks for one tap (POST + CSRF); a scanner app's ("none") records at once."""
    from patrol.models import Compound
    with app.app_context():
        token = db.session.get(Compound, world.a1).qr_token
    client = sign_in(app.test_client(), world.vol_a)
    lured = client.get(f"/c/{token}", headers={"Sec-Fetch-Site": "cross-site"})
    assert lured.status_code == 200 and _presences(app) == 0
    page = lured.get_data(as_text=True)
    assert 'id="confirm-scan"' in page and "小区A1" in page
    tapped = client.post(f"/c/{token}")   # the test app has CSRF off; see the next test
    assert tapped.status_code == 302 and _presences(app) == 1
    assert client.get(f"/c/{token}", headers={"Sec-Fetch-Site": "none"}).status_code == 302
    assert _presences(app) == 2
    # The offline redirect's parameter on a page the server answers (so: signal) goes the
    # usual way, through the same check, instead of queuing a scan in the page.
    resp = client.get(f"/compounds/{world.a1}?offline_scan={token}",
                      headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status_code == 302 and resp.headers["Location"] == f"/c/{token}"
    resp = client.get(f"/compounds/{world.a1}?offline_scan=not-the-token")
    assert resp.headers["Location"] == f"/compounds/{world.a1}"
    assert _presences(app) == 2


def test_the_scan_confirmation_needs_a_csrf_token(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    from patrol.models import Compound
    with app.app_context():
        w = build_world()
        token = db.session.get(Compound, w.a1).qr_token
    client = sign_in(app.test_client(), w.vol_a)
    assert client.post(f"/c/{token}").status_code == 400
    assert _presences(app) == 0


def test_a_gate_scan_on_a_signed_out_phone_says_what_to_do(app, world):
    from patrol.models import Compound
    with app.app_context():
        token = db.session.get(Compound, world.a1).qr_token
    client = app.test_client()
    # A signed-out phone gets the residents' page (issue 12), with the volunteers' sign-in link.
    resp = client.get(f"/c/{token}")
    assert resp.status_code == 200
    sign_in_link = f"/login?next=/c/{token}"
    assert sign_in_link in resp.get_data(as_text=True)
    page = client.get(sign_in_link).get_data(as_text=True)
    assert 'id="scan-signed-out"' in page and "登录链接或二维码" in page
    assert 'id="scan-signed-out"' not in client.get("/login").get_data(as_text=True)


def test_a_new_volunteer_is_a_plain_volunteer_unless_staff_choose_a_title(app, world):
    page = sign_in(app.test_client(), world.staff_a).get("/admin/volunteers").get_data(as_text=True)
    assert re.search(r"<option selected>志愿者</option>", page)
    assert len(re.findall(r"<option selected>", page)) == 1
