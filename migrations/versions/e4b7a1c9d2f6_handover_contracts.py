"""handover (物业更换): contract periods, and an item closed as handed over

Revision ID: e4b7a1c9d2f6
Revises: d8e4b6c1a9f2

`contract`: a company's period for a compound, from starts_on (None: since before the
records) up to ends_on (None: current). Item statuses gain 'handed_over' and the history
gains the action 'hand_over' (patrol/lifecycle.py); the CHECKs are rebuilt with them, the
value lists written out as they are today (tests/test_enum_constraints.py compares).
On SQLite the tables are rebuilt (batch mode). Downgrading refuses while an item has
been handed over, rather than deleting or rewriting its history.
"""
from alembic import op
import sqlalchemy as sa

revision = "e4b7a1c9d2f6"
down_revision = "d8e4b6c1a9f2"
branch_labels = None
depends_on = None

OLD_STATUSES = "'reported','acknowledged','fixed','verified','reopened','rejected','merged'"
NEW_STATUSES = OLD_STATUSES + ",'handed_over'"
OLD_ACTIONS = ("'report','acknowledge','fix','verify','reopen','reject','merge','fix_on_spot',"
               "'extend_deadline'")
NEW_ACTIONS = OLD_ACTIONS + ",'hand_over'"


def _checks(statuses, actions):
    return {
        "item": {"ck_item_status": f"status in ({statuses})"},
        "item_event": {
            "ck_item_event_action": f"action in ({actions})",
            "ck_item_event_from_status": f"from_status in ({statuses})",
            "ck_item_event_to_status": f"to_status in ({statuses})",
        },
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
        "contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("compound_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.CheckConstraint("starts_on IS NULL OR ends_on IS NULL OR starts_on < ends_on",
                           name="ck_contract_period"),
        sa.ForeignKeyConstraint(["compound_id"], ["compound.id"]),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.ForeignKeyConstraint(["created_by_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contract_compound_ends", "contract", ["compound_id", "ends_on"])
    op.create_index("ix_contract_company_id", "contract", ["company_id"])
    _replace_checks(_checks(NEW_STATUSES, NEW_ACTIONS))


def downgrade():
    # The older schema has no word for a handed-over item: refuse rather than rewrite history.
    n = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM item_event WHERE action = 'hand_over'")).scalar()
    if n:
        raise RuntimeError(f"{n} item(s) were handed over to another company: their history "
                           "cannot be kept by the older schema")
    _replace_checks(_checks(OLD_STATUSES, OLD_ACTIONS))
    op.drop_index("ix_contract_company_id", table_name="contract")
    op.drop_index("ix_contract_compound_ends", table_name="contract")
    op.drop_table("contract")
