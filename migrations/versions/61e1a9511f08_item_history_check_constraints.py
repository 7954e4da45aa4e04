"""item history check constraints: its action and statuses are codes of the lifecycle

Revision ID: 61e1a9511f08
Revises: 3d6e68a7361f
Create Date: 2026-11-28 10:00:00.000000

The models build every CHECK on a coded column from its enum (patrol/models/). The user
role, item status, photo kind, receiver kind and delivery status already had theirs;
item_event's action, from_status and to_status get theirs here. The value lists are
written out as they are today, as a migration must be: a later change to an enum comes
with its own migration (tests/test_enum_constraints.py compares the two).

On SQLite, adding a CHECK rebuilds item_event (batch mode); env.py turns foreign keys
off for the migration, so the photos that reference it are unaffected.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '61e1a9511f08'
down_revision = '3d6e68a7361f'
branch_labels = None
depends_on = None

STATUSES = "'reported','acknowledged','fixed','verified','reopened','rejected','merged'"
ACTIONS = ("'report','acknowledge','fix','verify','reopen','reject','merge','fix_on_spot',"
           "'extend_deadline'")
CHECKS = {
    'ck_item_event_action': f"action in ({ACTIONS})",
    'ck_item_event_from_status': f"from_status in ({STATUSES})",
    'ck_item_event_to_status': f"to_status in ({STATUSES})",
}


def upgrade():
    with op.batch_alter_table('item_event', schema=None) as batch_op:
        for name, condition in CHECKS.items():
            batch_op.create_check_constraint(name, condition)


def downgrade():
    with op.batch_alter_table('item_event', schema=None) as batch_op:
        for name in reversed(CHECKS):
            batch_op.drop_constraint(name, type_='check')
