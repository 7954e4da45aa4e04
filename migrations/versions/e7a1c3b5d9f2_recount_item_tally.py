"""recount item_tally from the items

Revision ID: e7a1c3b5d9f2
Revises: b6f2c8d4e1a7
Create Date: 2026-12-02 01:05:00

Until 88b51c1 the tally listener could miss an item's old key when the key was set on an
item whose old value the session had not loaded (a new item routed to a department at
once, say): item_tally kept a +1/-1 pair at the wrong keys. The listener is fixed; this
counts the table afresh from the items, as the migration that made it did. The day
tables were recounted by a3d9e6f1c284. Nothing to undo.
"""
from alembic import op

revision = 'e7a1c3b5d9f2'
down_revision = 'b6f2c8d4e1a7'
branch_labels = None
depends_on = None

OWED = "status IN ('acknowledged', 'reopened', 'reported')"
NOT_DUE = "'9999-12-31'"


def upgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    as_date = (lambda c: f"date({c})") if sqlite else (lambda c: f"CAST({c} AS DATE)")
    due = f"CASE WHEN {OWED} AND deadline IS NOT NULL THEN {as_date('deadline')} " \
          f"WHEN status = 'fixed' AND fixed_at IS NOT NULL THEN {as_date('fixed_at')} " \
          f"ELSE {NOT_DUE if sqlite else 'DATE ' + NOT_DUE} END"
    op.execute("DELETE FROM item_tally")
    op.execute(
        "INSERT INTO item_tally (community_id, compound_id, company_id, department_id, "
        "status, category, due_day, n) "
        f"SELECT community_id, compound_id, COALESCE(company_id, 0), "
        f"COALESCE(department_id, 0), status, category, {due}, COUNT(*) FROM item "
        f"GROUP BY community_id, compound_id, COALESCE(company_id, 0), "
        f"COALESCE(department_id, 0), status, category, {due}")


def downgrade():
    pass
