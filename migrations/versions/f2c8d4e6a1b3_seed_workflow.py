"""the seed's whole chain: departments, residents' reports (triage), supporting reports,
督办, disputes, answers, replies, committee ratings, team receivers

Revision ID: f2c8d4e6a1b3
Revises: e4b7a1c9d2f6

New tables `department`, `resident_report`, `committee_rating`. Items gain a department
(the responsible party once routed), a source (patrol / resident), a supporting-report
count, the committee's flag and a dispute mark. Users gain a department (the role
'department'); a photo may belong to a resident's report (no uploader). A receiver may
belong to a team, a department or a compound (exactly one owner). The CHECKs on statuses,
actions and roles are rebuilt with the new values ('answered'; route, dispute, …), written
out as they are today (tests/test_enum_constraints.py compares). Downgrading refuses while
any of the new kinds of records exist, rather than deleting them.
"""
from alembic import op
import sqlalchemy as sa

revision = "f2c8d4e6a1b3"
down_revision = "e4b7a1c9d2f6"
branch_labels = None
depends_on = None

OLD_STATUSES = ("'reported','acknowledged','fixed','verified','reopened','rejected','merged',"
                "'handed_over'")
NEW_STATUSES = OLD_STATUSES + ",'answered'"
OLD_ACTIONS = ("'report','acknowledge','fix','verify','reopen','reject','merge','fix_on_spot',"
               "'extend_deadline','hand_over'")
NEW_ACTIONS = OLD_ACTIONS + (",'route','dispute','decide_dispute','answer','approve_answer',"
                             "'support','flag','unflag','comment'")
OLD_ROLES = "'volunteer','manager','staff','street_staff','committee','admin'"
NEW_ROLES = OLD_ROLES + ",'department'"
OLD_OWNER = "(community_id IS NULL) <> (company_id IS NULL)"
NEW_OWNER = " + ".join(f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in (
    "community_id", "company_id", "team_id", "department_id", "compound_id")) + " = 1"


def _checks(statuses, actions, roles, owner):
    return {
        "item": {"ck_item_status": f"status in ({statuses})"},
        "item_event": {
            "ck_item_event_action": f"action in ({actions})",
            "ck_item_event_from_status": f"from_status in ({statuses})",
            "ck_item_event_to_status": f"to_status in ({statuses})",
        },
        "user": {"ck_user_role": f"role in ({roles})"},
        "notify_endpoint": {"ck_notify_endpoint_owner": owner},
    }


def _replace_checks(checks):
    for table, conditions in checks.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in conditions:
                batch_op.drop_constraint(name, type_="check")
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, condition in conditions.items():
                batch_op.create_check_constraint(name, condition)


def upgrade():
    op.create_table(
        "department",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind in ('water','power','lift','chengguan','community','other')",
                           name="ck_department_kind"),
        sa.ForeignKeyConstraint(["street_id"], ["street.id"]),
        sa.ForeignKeyConstraint(["community_id"], ["community.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_department_street_id", "department", ["street_id"])
    op.create_index("ix_department_community_id", "department", ["community_id"])

    with op.batch_alter_table("user") as batch:
        batch.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch.create_index("ix_user_department_id", ["department_id"])
        batch.create_foreign_key("fk_user_department_id_department", "department",
                                 ["department_id"], ["id"])

    with op.batch_alter_table("item") as batch:
        batch.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source", sa.String(length=12), nullable=False,
                                   server_default="patrol"))
        batch.add_column(sa.Column("support_count", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("flagged_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("flag_reason", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("disputed_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_item_department_id", ["department_id"])
        batch.create_foreign_key("fk_item_department_id_department", "department",
                                 ["department_id"], ["id"])
        batch.create_check_constraint("ck_item_source", "source in ('patrol','resident')")
    # The defaults filled the existing rows; the models give the values from now on.
    with op.batch_alter_table("item") as batch:
        batch.alter_column("source", server_default=None)
        batch.alter_column("support_count", server_default=None)

    op.create_table(
        "resident_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("compound_id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decline_reason", sa.String(length=40), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("device_hash", sa.String(length=64), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("receipt_hash", sa.String(length=64), nullable=False),
        sa.Column("client_uuid", sa.String(length=36), nullable=True),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rated_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("status in ('pending','accepted','supported','declined')",
                           name="ck_resident_report_status"),
        sa.CheckConstraint("decline_reason in ('not_a_hazard','not_this_compound',"
                           "'private_matter','no_detail','abusive','other')",
                           name="ck_resident_report_decline_reason"),
        sa.CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)",
                           name="ck_resident_report_rating"),
        sa.ForeignKeyConstraint(["compound_id"], ["compound.id"]),
        sa.ForeignKeyConstraint(["community_id"], ["community.id"]),
        sa.ForeignKeyConstraint(["building_id"], ["building.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["item.id"]),
        sa.ForeignKeyConstraint(["handled_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("receipt_hash"),
        sa.UniqueConstraint("client_uuid"),
    )
    op.create_index("ix_resident_report_queue", "resident_report",
                    ["community_id", "status", "created_at"])
    op.create_index("ix_resident_report_device", "resident_report",
                    ["compound_id", "device_hash", "created_at"])
    op.create_index("ix_resident_report_item_id", "resident_report", ["item_id"])

    with op.batch_alter_table("photo") as batch:
        batch.alter_column("uploader_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("resident_report_id", sa.Integer(), nullable=True))
        batch.create_index("ix_photo_resident_report_id", ["resident_report_id"])
        batch.create_foreign_key("fk_photo_resident_report_id_resident_report",
                                 "resident_report", ["resident_report_id"], ["id"])

    op.create_table(
        "committee_rating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("compound_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("stars >= 1 AND stars <= 5", name="ck_committee_rating_stars"),
        sa.ForeignKeyConstraint(["compound_id"], ["compound.id"]),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "compound_id", "month", name="uq_committee_rating_month"),
    )
    op.create_index("ix_committee_rating_compound_id", "committee_rating", ["compound_id"])
    op.create_index("ix_committee_rating_company_id", "committee_rating", ["company_id"])

    with op.batch_alter_table("notify_endpoint") as batch:
        for col, table in (("team_id", "team"), ("department_id", "department"),
                           ("compound_id", "compound")):
            batch.add_column(sa.Column(col, sa.Integer(), nullable=True))
            batch.create_index(f"ix_notify_endpoint_{col}", [col])
            batch.create_foreign_key(f"fk_notify_endpoint_{col}_{table}", table, [col], ["id"])

    _replace_checks(_checks(NEW_STATUSES, NEW_ACTIONS, NEW_ROLES, NEW_OWNER))


def downgrade():
    bind = op.get_bind()
    for what, sql in (
            ("resident report(s)", "SELECT count(*) FROM resident_report"),
            ("department(s)", "SELECT count(*) FROM department"),
            ("committee rating(s)", "SELECT count(*) FROM committee_rating"),
            ("history entries of the new actions",
             "SELECT count(*) FROM item_event WHERE action IN ('route','dispute',"
             "'decide_dispute','answer','approve_answer','support','flag','unflag','comment')"),
            ("receiver(s) of a team, department or compound",
             "SELECT count(*) FROM notify_endpoint WHERE team_id IS NOT NULL OR "
             "department_id IS NOT NULL OR compound_id IS NOT NULL")):
        n = bind.execute(sa.text(sql)).scalar()
        if n:
            raise RuntimeError(f"{n} {what} exist: the older schema cannot keep them")
    _replace_checks(_checks(OLD_STATUSES, OLD_ACTIONS, OLD_ROLES, OLD_OWNER))
    with op.batch_alter_table("notify_endpoint") as batch:
        for col, table in (("team_id", "team"), ("department_id", "department"),
                           ("compound_id", "compound")):
            batch.drop_constraint(f"fk_notify_endpoint_{col}_{table}", type_="foreignkey")
            batch.drop_index(f"ix_notify_endpoint_{col}")
            batch.drop_column(col)
    op.drop_index("ix_committee_rating_company_id", table_name="committee_rating")
    op.drop_index("ix_committee_rating_compound_id", table_name="committee_rating")
    op.drop_table("committee_rating")
    with op.batch_alter_table("photo") as batch:
        batch.drop_constraint("fk_photo_resident_report_id_resident_report", type_="foreignkey")
        batch.drop_index("ix_photo_resident_report_id")
        batch.drop_column("resident_report_id")
        batch.alter_column("uploader_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index("ix_resident_report_item_id", table_name="resident_report")
    op.drop_index("ix_resident_report_device", table_name="resident_report")
    op.drop_index("ix_resident_report_queue", table_name="resident_report")
    op.drop_table("resident_report")
    with op.batch_alter_table("item") as batch:
        batch.drop_constraint("ck_item_source", type_="check")
        batch.drop_constraint("fk_item_department_id_department", type_="foreignkey")
        batch.drop_index("ix_item_department_id")
        for col in ("disputed_at", "flag_reason", "flagged_at", "support_count", "source",
                    "department_id"):
            batch.drop_column(col)
    with op.batch_alter_table("user") as batch:
        batch.drop_constraint("fk_user_department_id_department", type_="foreignkey")
        batch.drop_index("ix_user_department_id")
        batch.drop_column("department_id")
    op.drop_index("ix_department_community_id", table_name="department")
    op.drop_index("ix_department_street_id", table_name="department")
    op.drop_table("department")
