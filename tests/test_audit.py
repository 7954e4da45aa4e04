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
