"""Rate limits that slow guessing without locking the right people out.

Sign-in: per address (every attempt) and per account (failed attempts, counted and
refused only for addresses that have themselves failed at that account lately), so
someone guessing at `admin` from elsewhere cannot keep its owner from signing in.
Invites: per address only failed redeems count, so forty volunteers behind a community
office's Wi-Fi all get in; per invite every try counts.

The limiter is off in test apps (tests/conftest.make_app); these turn it on. Windows are
an hour long, so a slow run does not cross into a fresh window half-way.
"""
from __future__ import annotations

import pytest

from patrol.extensions import db
from patrol.models import User
from patrol.services import accounts
from tests.conftest import make_app
from tests.factories import PASSWORD, build_world


@pytest.fixture
def limited(tmp_path):
    app = make_app(tmp_path, RATELIMIT_ENABLED=True, LOGIN_RATE_LIMIT="10 per hour")
    with app.app_context():
        world = build_world()
    yield app, world
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def from_address(app, address):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def sign_in_with(client, password, username="staff_a"):
    return client.post("/login", data={"username": username, "password": password}).status_code


def test_a_guesser_elsewhere_cannot_lock_the_owner_out(limited):
    app, _ = limited
    attacker = from_address(app, "203.0.113.7")
    codes = [sign_in_with(attacker, f"guess-{i}") for i in range(25)]
    assert codes[:10] == [401] * 10 and set(codes[10:]) == {429}   # per address
    # The owner, from their own address, while the guessing goes on.
    owner = from_address(app, "198.51.100.20")
    assert sign_in_with(owner, PASSWORD) == 302
    assert sign_in_with(attacker, "guess-25") == 429
    assert sign_in_with(from_address(app, "198.51.100.21"), PASSWORD) == 302
    # A mistyped password or two from the owner's address changes nothing.
    typist = from_address(app, "198.51.100.22")
    assert [sign_in_with(typist, "typo"), sign_in_with(typist, "typo2"),
            sign_in_with(typist, PASSWORD)] == [401, 401, 302]


def test_many_addresses_guessing_at_one_account_are_slowed_down(limited):
    """Each address stays under its own limit; past the first few failures an address's
    further failures count against the account, and once the account's limit is used up
    such addresses are refused, even with the right password. Clean addresses are not."""
    app, _ = limited
    codes = []
    for n in range(5):           # 3 clean failures each, then 2 that count: 10 in all
        guesser = from_address(app, f"192.0.2.{n + 1}")
        codes += [sign_in_with(guesser, f"guess-{n}-{i}") for i in range(5)]
    assert codes == [401] * 25
    sixth = from_address(app, "192.0.2.6")
    assert [sign_in_with(sixth, f"guess-6-{i}") for i in range(4)] == [401, 401, 401, 429]
    assert sign_in_with(sixth, PASSWORD) == 429          # slowed down, whatever it sends
    # Other accounts, and the owner from a clean address, are not affected.
    assert sign_in_with(from_address(app, "192.0.2.1"), PASSWORD, "staff_b") == 302
    assert sign_in_with(from_address(app, "198.51.100.20"), PASSWORD) == 302


def test_one_address_guessing_at_many_accounts_is_throttled(limited):
    app, _ = limited
    guesser = from_address(app, "203.0.113.9")
    codes = [sign_in_with(guesser, "guess", username) for username in
             ("staff_a", "staff_b", "mgr_x", "mgr_y", "com_a1", "com_a2", "admin", "nobody",
              "staff", "manager1", "committee")]
    assert codes == [401] * 10 + [429]
    assert sign_in_with(guesser, PASSWORD, "staff_b") == 429
    assert sign_in_with(from_address(app, "198.51.100.20"), PASSWORD, "staff_b") == 302


def _volunteers_with_invites(app, world, n):
    with app.app_context():
        users = [User(username=f"v{i}", display_name=f"志愿者{i}", role="volunteer",
                      community_id=world.ca) for i in range(n)]
        db.session.add_all(users)
        db.session.flush()
        tokens = [accounts.create_invite(u, None, app.config["INVITE_LIFETIME"]) for u in users]
        db.session.commit()
    return tokens


def test_volunteers_behind_one_address_all_redeem_their_invites(limited):
    """A community office's Wi-Fi: forty volunteers, one public address, one minute."""
    app, world = limited
    tokens = _volunteers_with_invites(app, world, 40)
    codes = [from_address(app, "198.51.100.50").post(f"/invite/{t}").status_code
             for t in tokens]
    assert codes == [302] * 40


def test_guessing_invite_tokens_is_still_throttled(limited):
    app, world = limited
    [token] = _volunteers_with_invites(app, world, 1)
    guesser = from_address(app, "203.0.113.66")
    codes = [guesser.post(f"/invite/guess-{i:03d}-{'x' * 28}").status_code for i in range(22)]
    assert codes == [410] * 20 + [429, 429]               # failed redeems, per address
    assert guesser.post(f"/invite/{token}").status_code == 429
    # Elsewhere the volunteer still gets in.
    assert from_address(app, "198.51.100.50").post(f"/invite/{token}").status_code == 302


def test_one_invite_tried_again_and_again_is_throttled(limited):
    """Per invite, every try counts, from whatever address."""
    app, world = limited
    [token] = _volunteers_with_invites(app, world, 1)
    codes = [from_address(app, f"192.0.2.{n + 1}").post(f"/invite/{token}").status_code
             for n in range(11)]
    assert codes == [302] + [410] * 9 + [429]
