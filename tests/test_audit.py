"""The audit log: one append-only row per act, in the caller's transaction."""
from datetime import datetime

import pytest

from patrol.extensions import db
from patrol.models import AuditEntry, Community, Compound, Street, User
from patrol.services import audit

NOW = datetime(2026, 11, 18, 2, 0)


def test_record_adds_a_row_in_the_callers_transaction(db_app):
    with db_app.app_context():
        street = Street(name="和平街道")
        community = Community(name="和平社区", street=street)
        compound = Compound(name="金桂园", community=community)
        admin = User(username="root", display_name="root", role="admin")
        db.session.add_all([street, community, compound, admin])
        db.session.flush()
        entry = audit.record(admin, "compound.archive", compound,
                             {"archived_at": None}, {"archived_at": NOW}, NOW)
        db.session.commit()
        entry = db.session.get(AuditEntry, entry.id)
        assert (entry.actor_id, entry.action, entry.object_type, entry.object_id) == \
            (admin.id, "compound.archive", "compound", compound.id)
        assert (entry.street_id, entry.community_id) == (street.id, community.id)
        assert entry.before == {"archived_at": None}
        assert entry.after == {"archived_at": NOW.isoformat()}

        # rolled back with the act
        audit.record(admin, "compound.rename", compound, {"name": "金桂园"}, {"name": "x"}, NOW)
        db.session.rollback()
        assert db.session.query(AuditEntry).count() == 1


def test_new_objects_get_their_id_and_the_log_is_append_only(app):
    with app.app_context():
        street = Street(name="和平街道")
        db.session.add(street)
        entry = audit.record(None, "street.create", street, None, {"name": "和平街道"}, NOW)
        db.session.commit()
        assert entry.object_id == street.id and entry.street_id == street.id
        entry.action = "changed"
        with pytest.raises(RuntimeError):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.get(AuditEntry, entry.id))
        with pytest.raises(RuntimeError):
            db.session.commit()
        db.session.rollback()


def test_changes_applies_and_reports_only_what_changed(app):
    with app.app_context():
        community = Community(name="A")
        compound = Compound(name="旧名", address="路1号", community=community)
        before, after = audit.changes(compound, ("name", "address"),
                                      {"name": "新名", "address": "路1号"})
        assert (before, after) == ({"name": "旧名"}, {"name": "新名"})
        assert compound.name == "新名"


def _actions(**where):
    return [(e.action, e.object_type, e.object_id, e.actor_id) for e in db.session.scalars(
        db.select(AuditEntry).filter_by(**where).order_by(AuditEntry.id))]


def test_invites_phones_receivers_passwords_and_qr_codes_are_recorded(app, world):
    from datetime import timedelta
    from patrol.models import Device
    from patrol.services import accounts, receivers
    from tests.conftest import sign_in
    with app.app_context():
        staff = db.session.get(User, world.staff_a)
        vol = db.session.get(User, world.vol_a)
        accounts.create_invite(vol, staff, timedelta(hours=72))
        device = Device(user=vol, secret_hash="x")
        db.session.add(device)
        db.session.flush()
        accounts.revoke_device(device, actor=staff)
        accounts.revoke_device(device, actor=staff)          # already revoked: no second row
        endpoint = receivers.add_receiver(
            actor=staff, name="群", kind="json", target="https://hooks.example.invalid/k=SECRET",
            events=["new_item"], owner=db.session.get(Community, world.ca), email_enabled=False)
        endpoint_id = endpoint.id
        receivers.remove_receiver(endpoint, actor=staff)
        db.session.commit()
        rows = _actions()
        assert [r[0] for r in rows] == ["invite.create", "device.revoke", "receiver.create",
                                         "receiver.delete"]
        assert all(r[3] == staff.id for r in rows)
        assert rows[2][1:3] == ("notify_endpoint", endpoint_id)
        assert "SECRET" not in str([(e.before, e.after) for e in db.session.scalars(
            db.select(AuditEntry))])
        assert {e.community_id for e in db.session.scalars(db.select(AuditEntry))} == {world.ca}

    result = app.test_cli_runner().invoke(args=["set-password", "staff_a"],
                                          input="a-new-password\na-new-password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        entry = db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert (entry.action, entry.object_id, entry.actor_id) == \
            ("user.set_password", world.staff_a, None)
        assert entry.before is None and entry.after is None
        token = db.session.get(Compound, world.a1).qr_token

    app.config["WTF_CSRF_ENABLED"] = False
    client = sign_in(app.test_client(), world.admin)   # staff_a was just signed out
    assert client.post(f"/admin/compounds/{world.a1}/rotate").status_code == 302
    with app.app_context():
        entry = db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert (entry.action, entry.object_id, entry.actor_id) == \
            ("compound.rotate_qr", world.a1, world.admin)
        assert token not in str(entry.after) and entry.after is None
