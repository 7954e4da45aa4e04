"""The user loader runs on every signed-in request (issue 15 §3): one query, nothing
cached between requests, so a revoked phone or a deactivated user is out on the next one."""
from sqlalchemy import event

from patrol.extensions import db
from patrol.models import User
from patrol.services import accounts


def _login(app, user_id):
    with app.app_context():
        login_id = accounts.start_session(db.session.get(User, user_id), "test phone")
        db.session.commit()
    return login_id


def _load(app, login_id, statements=None):
    """One request's worth: a fresh session, as each request gets."""
    with app.test_request_context("/"):
        if statements is not None:
            listen = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listen)
        try:
            user = accounts.load_login(login_id)
            return user.id if user is not None else None
        finally:
            if statements is not None:
                event.remove(db.engine, "before_cursor_execute", listen)
            db.session.remove()


def test_a_phone_is_loaded_with_one_query(app, world):
    login_id = _login(app, world.vol_a)
    _load(app, login_id)          # the hourly last-seen write, if due, happens here
    statements: list = []
    assert _load(app, login_id, statements) == world.vol_a
    assert len(statements) == 1, statements


def test_revoking_or_deactivating_takes_effect_on_the_next_request(app, world):
    login_id = _login(app, world.vol_a)
    assert _load(app, login_id) == world.vol_a
    kind, device_id, secret = login_id.split(":", 2)
    assert _load(app, f"d:{device_id}:{secret}x") is None           # wrong secret
    assert _load(app, f"d:{int(device_id) + 99}:{secret}") is None  # no such row
    with app.app_context():
        accounts.sign_out(login_id)
        db.session.commit()
    assert _load(app, login_id) is None
    other = _login(app, world.vol_a)
    assert _load(app, other) == world.vol_a
    with app.app_context():
        db.session.get(User, world.vol_a).active = False
        db.session.commit()
    assert _load(app, other) is None
