"""item tallies: counts per place, party, status, category and day, and list indexes

Revision ID: 5f3a8c2d1b94
Revises: 18b1807366ab

New tables item_tally and item_tally_day (models/counts.py), filled here from the
items and kept in step by services/counts.py in the same transaction as every change
of an item; partial indexes on item for the list pages' top-N rows and small counts
(issue 15 §4, docs/benchmarks.md).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5f3a8c2d1b94'
down_revision = '18b1807366ab'
branch_labels = None
depends_on = None

OWED = "status IN ('acknowledged', 'reopened', 'reported')"
OPEN = "status IN ('acknowledged', 'fixed', 'reopened', 'reported')"
NOT_DUE = "'9999-12-31'"


def _tally_columns(day: bool):
    cols = [sa.Column('community_id', sa.Integer(), nullable=False)]
    if day:
        cols.append(sa.Column('day', sa.Date(), nullable=False))
    cols += [sa.Column('compound_id', sa.Integer(), nullable=False),
             sa.Column('company_id', sa.Integer(), nullable=False)]
    if not day:
        cols.append(sa.Column('department_id', sa.Integer(), nullable=False))
    cols += [sa.Column('status', sa.String(length=20), nullable=False),
             sa.Column('category', sa.String(length=40), nullable=False),
             sa.Column('due_day', sa.Date(), nullable=False),
             sa.Column('n', sa.Integer(), nullable=False)]
    return cols


def upgrade():
    op.create_table('item_tally', *_tally_columns(day=False),
                    sa.PrimaryKeyConstraint('community_id', 'compound_id', 'company_id',
                                            'department_id', 'status', 'category',
                                            'due_day'))
    with op.batch_alter_table('item_tally', schema=None) as batch_op:
        batch_op.create_index('ix_item_tally_company', ['company_id', 'status'], unique=False)
        batch_op.create_index('ix_item_tally_compound', ['compound_id', 'status'],
                              unique=False)
        batch_op.create_index('ix_item_tally_department', ['department_id', 'status'],
                              unique=False)
    op.create_table('item_tally_day', *_tally_columns(day=True),
                    sa.PrimaryKeyConstraint('community_id', 'day', 'compound_id',
                                            'company_id', 'status', 'category', 'due_day'))
    with op.batch_alter_table('item_tally_day', schema=None) as batch_op:
        batch_op.create_index('ix_item_tally_day_day', ['day'], unique=False)

    def partial(name, columns, where=None):
        kw = {'postgresql_where': sa.text(where), 'sqlite_where': sa.text(where)} if where \
            else {}
        op.create_index(name, 'item', columns, unique=False, **kw)

    partial('ix_item_company_status_updated', ['company_id', 'status', 'updated_at'])
    partial('ix_item_department_status_updated', ['department_id', 'status', 'updated_at'])
    partial('ix_item_company_owed_deadline', ['company_id', 'deadline'], OWED)
    partial('ix_item_community_owed_deadline', ['community_id', 'deadline'], OWED)
    partial('ix_item_community_owed_created', ['community_id', 'created_at', 'deadline'], OWED)
    op.create_index('ix_item_community_created_cover', 'item', ['community_id', 'created_at'],
                    unique=False, postgresql_include=['status', 'category', 'deadline',
                                                      'compound_id', 'company_id'])
    partial('ix_item_compound_open_created', ['compound_id', 'created_at', 'id', 'status'],
            OPEN)
    partial('ix_item_community_flagged', ['community_id', 'status'], 'flagged_at IS NOT NULL')
    partial('ix_item_community_disputed', ['community_id', 'status'],
            'disputed_at IS NOT NULL')
    partial('ix_item_community_fixed_at', ['community_id', 'fixed_at'], "status = 'fixed'")

    # The counts of the items already there (one GROUP BY per table).
    sqlite = op.get_bind().dialect.name == 'sqlite'
    as_date = (lambda c: f"date({c})") if sqlite else (lambda c: f"CAST({c} AS DATE)")
    # The due day: the deadline's for an item owing work, the fix's for a fix waiting
    # for its look-back, else a day that never comes.
    due = f"CASE WHEN {OWED} AND deadline IS NOT NULL THEN {as_date('deadline')} " \
          f"WHEN status = 'fixed' AND fixed_at IS NOT NULL THEN {as_date('fixed_at')} " \
          f"ELSE {NOT_DUE if sqlite else 'DATE ' + NOT_DUE} END"
    op.execute(
        "INSERT INTO item_tally (community_id, compound_id, company_id, department_id, "
        "status, category, due_day, n) "
        f"SELECT community_id, compound_id, COALESCE(company_id, 0), "
        f"COALESCE(department_id, 0), status, category, {due}, COUNT(*) FROM item "
        f"GROUP BY community_id, compound_id, COALESCE(company_id, 0), "
        f"COALESCE(department_id, 0), status, category, {due}")
    op.execute(
        "INSERT INTO item_tally_day (community_id, day, compound_id, company_id, status, "
        "category, due_day, n) "
        f"SELECT community_id, {as_date('created_at')}, compound_id, COALESCE(company_id, 0), "
        f"status, category, {due}, COUNT(*) FROM item "
        f"GROUP BY community_id, {as_date('created_at')}, compound_id, "
        f"COALESCE(company_id, 0), status, category, {due}")


def downgrade():
    for name in ('ix_item_community_fixed_at', 'ix_item_community_disputed',
                 'ix_item_community_flagged', 'ix_item_compound_open_created',
                 'ix_item_community_created_cover',
                 'ix_item_community_owed_created', 'ix_item_community_owed_deadline',
                 'ix_item_company_owed_deadline',
                 'ix_item_department_status_updated', 'ix_item_company_status_updated'):
        op.drop_index(name, table_name='item')
    with op.batch_alter_table('item_tally_day', schema=None) as batch_op:
        batch_op.drop_index('ix_item_tally_day_day')
    op.drop_table('item_tally_day')
    with op.batch_alter_table('item_tally', schema=None) as batch_op:
        batch_op.drop_index('ix_item_tally_department')
        batch_op.drop_index('ix_item_tally_compound')
        batch_op.drop_index('ix_item_tally_company')
    op.drop_table('item_tally')
