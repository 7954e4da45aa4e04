"""day tally without the due day; the owed items' due days in item_tally_day_due

Revision ID: a3d9e6f1c284
Revises: 7c2e9a4b6d13

item_tally_day was keyed by day of report × compound × company × status × category ×
due day: the open backlog's deadlines spread each day's open items over tens of due
days (52,000 rows summed for the overview's last 90 days at 1M items). Now it is keyed
without the due day, and a new table item_tally_day_due keeps the owed items
(reported, acknowledged, reopened) per due day first, then day of report and the rest:
the date filter's overdue figure is the owed items less the rows of the due days not yet
passed (models/counts.py, services/counts.py; issue 15 §4, docs/benchmarks.md). Both
filled from the items, as 5f3a8c2d1b94 did; the downgrade puts the old shape back the
same way.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3d9e6f1c284'
down_revision = '7c2e9a4b6d13'
branch_labels = None
depends_on = None

OWED = "status IN ('acknowledged', 'reopened', 'reported')"
NOT_DUE = "'9999-12-31'"


def _sql():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    as_date = (lambda c: f"date({c})") if sqlite else (lambda c: f"CAST({c} AS DATE)")
    # The due day: the deadline's for an item owing work, the fix's for a fix waiting
    # for its look-back, else a day that never comes (services/counts.due_day).
    due = f"CASE WHEN {OWED} AND deadline IS NOT NULL THEN {as_date('deadline')} " \
          f"WHEN status = 'fixed' AND fixed_at IS NOT NULL THEN {as_date('fixed_at')} " \
          f"ELSE {NOT_DUE if sqlite else 'DATE ' + NOT_DUE} END"
    return as_date('created_at'), due


def _columns(*keys):
    types = {'day': sa.Date(), 'due_day': sa.Date(), 'status': sa.String(length=20),
             'category': sa.String(length=40)}
    return [sa.Column(k, types.get(k, sa.Integer()), nullable=False) for k in keys] + \
        [sa.Column('n', sa.Integer(), nullable=False), sa.PrimaryKeyConstraint(*keys)]


DAY_KEYS = ('community_id', 'day', 'compound_id', 'company_id', 'status', 'category')
DUE_KEYS = ('community_id', 'due_day', 'day', 'compound_id', 'company_id', 'status',
            'category')
OLD_DAY_KEYS = DAY_KEYS + ('due_day',)


def _replace_day_table(keys):
    with op.batch_alter_table('item_tally_day', schema=None) as batch_op:
        batch_op.drop_index('ix_item_tally_day_day')
    op.drop_table('item_tally_day')
    op.create_table('item_tally_day', *_columns(*keys))
    with op.batch_alter_table('item_tally_day', schema=None) as batch_op:
        batch_op.create_index('ix_item_tally_day_day', ['day'], unique=False)


def _fill(table, keys, values, where=""):
    group = ", ".join(values)
    op.execute(f"INSERT INTO {table} ({', '.join(keys)}, n) SELECT {group}, COUNT(*) "
               f"FROM item {where} GROUP BY {group}")


def upgrade():
    day, due = _sql()
    _replace_day_table(DAY_KEYS)
    _fill('item_tally_day', DAY_KEYS, ['community_id', day, 'compound_id',
                                       'COALESCE(company_id, 0)', 'status', 'category'])
    op.create_table('item_tally_day_due', *_columns(*DUE_KEYS))
    with op.batch_alter_table('item_tally_day_due', schema=None) as batch_op:
        batch_op.create_index('ix_item_tally_day_due_due_day', ['due_day'], unique=False)
    _fill('item_tally_day_due', DUE_KEYS,
          ['community_id', due, day, 'compound_id', 'COALESCE(company_id, 0)', 'status',
           'category'], where=f"WHERE {OWED}")


def downgrade():
    day, due = _sql()
    with op.batch_alter_table('item_tally_day_due', schema=None) as batch_op:
        batch_op.drop_index('ix_item_tally_day_due_due_day')
    op.drop_table('item_tally_day_due')
    _replace_day_table(OLD_DAY_KEYS)
    _fill('item_tally_day', OLD_DAY_KEYS, ['community_id', day, 'compound_id',
                                           'COALESCE(company_id, 0)', 'status', 'category',
                                           due])
