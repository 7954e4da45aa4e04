"""CHECK constraints on coded columns are generated from the enums (patrol/models/), the
migrations build the same ones (Alembic's `db check` does not compare CHECKs), and the
database refuses a value outside the enum, on SQLite and PostgreSQL."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import CheckConstraint, inspect, text
from sqlalchemy.exc import IntegrityError

from patrol import notify
from patrol.extensions import db
from patrol.lifecycle import Action, Role, Status
from patrol.models import Delivery, Item, ItemEvent, NotifyEndpoint, Photo, User
from patrol.models.items import ITEM_SOURCES, PHOTO_KINDS
from patrol.models.workflow import (DECLINE_REASONS, DEPARTMENT_KINDS, RESIDENT_STATUSES,
                                    Department, ResidentReport)
from tests.test_migrations import ENGINES, empty_app  # noqa: F401  (fixture)

# (model, constraint, the values it must allow: exactly the enum's)
ENUM_CHECKS = [
    (User, "ck_user_role", {r.value for r in Role}),
    (Item, "ck_item_status", {s.value for s in Status}),
    (ItemEvent, "ck_item_event_action", {"report"} | {a.value for a in Action}),
    (ItemEvent, "ck_item_event_from_status", {s.value for s in Status}),
    (ItemEvent, "ck_item_event_to_status", {s.value for s in Status}),
    (Photo, "ck_photo_kind", set(PHOTO_KINDS)),
    (NotifyEndpoint, "ck_notify_endpoint_kind", set(notify.KINDS)),
    (Delivery, "ck_delivery_status", {"pending", "sent", "failed"}),
    (Item, "ck_item_source", set(ITEM_SOURCES)),
    (Department, "ck_department_kind", set(DEPARTMENT_KINDS)),
    (ResidentReport, "ck_resident_report_status", set(RESIDENT_STATUSES)),
    (ResidentReport, "ck_resident_report_decline_reason", set(DECLINE_REASONS)),
]


def _quoted(sql: str) -> set[str]:
    """The string literals in a CHECK's text, as written or as PostgreSQL prints it back
    (`role::text = ANY (ARRAY['volunteer'::character varying, …])`)."""
    return set(re.findall(r"'([^']*)'", sql))


def _model_checks():
    out = {}
    for table in db.metadata.sorted_tables:
        for c in table.constraints:
            if isinstance(c, CheckConstraint):
                out[(table.name, c.name)] = str(c.sqltext)
    return out


@pytest.mark.parametrize("model,name,values", ENUM_CHECKS, ids=[c[1] for c in ENUM_CHECKS])
def test_constraints_are_generated_from_the_enums(app, model, name, values):
    with app.app_context():
        check = _model_checks()[(model.__tablename__, name)]
    assert _quoted(check) == values


@pytest.mark.parametrize("empty_app", ENGINES, indirect=True)
def test_migrations_build_the_models_check_constraints(empty_app):
    app, engine = empty_app
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    inspector = inspect(db.engine)
    built = {(table, c["name"]): c["sqltext"]
             for table in inspector.get_table_names()
             for c in inspector.get_check_constraints(table)}
    models = _model_checks()
    assert set(built) == set(models)
    for key, sql in models.items():
        assert _quoted(built[key]) == _quoted(sql), key
        if engine == "sqlite":   # SQLite keeps the text as it was written
            assert " ".join(built[key].split()) == " ".join(sql.split()), key


def test_the_database_refuses_values_outside_the_enums(db_app):
    from patrol.models import Compound, utcnow
    from patrol.services import items as svc
    from patrol.services.photo_store import save_upload
    from patrol.web.helpers import hazard_form
    from tests.factories import build_world, jpeg_bytes

    with db_app.app_context():
        w = build_world()
        reporter = db.session.get(User, w.vol_a)
        photo = save_upload(jpeg_bytes(), uploader=reporter, kind="before")
        svc.report(form=hazard_form(), compound=db.session.get(Compound, w.a1), reporter=reporter,
                   clean={"category": "flyers", "extra": {}}, photos=[photo], now=utcnow())
        db.session.commit()
        # Core updates: the ORM refuses to touch history at all.
        for sql in ('UPDATE "user" SET role = \'boss\'',
                    "UPDATE item SET status = 'lost'",
                    "UPDATE item_event SET action = 'erase'",
                    "UPDATE item_event SET from_status = 'lost'",
                    "UPDATE item_event SET to_status = 'lost'",
                    "UPDATE photo SET kind = 'selfie'"):
            with pytest.raises(IntegrityError):
                with db.engine.begin() as conn:
                    conn.execute(text(sql))
        # Every value of the enums is accepted.
        with db.engine.begin() as conn:
            for role in Role:
                conn.execute(text('UPDATE "user" SET role = :r WHERE id = :id'),
                             {"r": role.value, "id": w.admin})
            for action in Action:
                conn.execute(text("UPDATE item_event SET action = :a"), {"a": action.value})
            conn.execute(text("UPDATE item_event SET from_status = NULL"))
