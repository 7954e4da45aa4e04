"""list indexes: 待回头看 per compound, the overview's open filter, covering deadlines

Revision ID: 7c2e9a4b6d13
Revises: 5f3a8c2d1b94

Indexes on item for the list pages at 1M items (issue 15 §4, docs/benchmarks.md):
- ix_item_compound_fixed_at (compound, fix time, id; fixed items): the compounds page's
  look-back list reads a short range per compound instead of sorting every fix;
- ix_item_community_open_created (community, created, id; open items): the overview
  filtered to open items, in list order;
- ix_item_community_owed_created gains id (the list's tie-break) before the deadline;
- ix_item_community_created gains id: a page by number skips its offset in the index;
- ix_item_company_owed_deadline and ix_item_community_owed_deadline INCLUDE status and
  category (the community's also compound, company and created_at) on PostgreSQL:
  today's passing deadlines are counted from the index alone.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7c2e9a4b6d13'
down_revision = '5f3a8c2d1b94'
branch_labels = None
depends_on = None

OWED = "status IN ('acknowledged', 'reopened', 'reported')"
OPEN = "status IN ('acknowledged', 'fixed', 'reopened', 'reported')"
FIXED = "status = 'fixed'"


def _index(name, columns, where=None, include=None):
    kw = {'postgresql_where': sa.text(where), 'sqlite_where': sa.text(where)} if where else {}
    if include:
        kw['postgresql_include'] = include
    op.create_index(name, 'item', columns, unique=False, **kw)


def _replace(name, columns, where=None, include=None):
    op.drop_index(name, table_name='item')
    _index(name, columns, where, include)


def upgrade():
    _index('ix_item_compound_fixed_at', ['compound_id', 'fixed_at', 'id'], FIXED)
    _index('ix_item_community_open_created', ['community_id', 'created_at', 'id'], OPEN)
    _replace('ix_item_community_owed_created', ['community_id', 'created_at', 'id', 'deadline'],
             OWED)
    _replace('ix_item_community_created', ['community_id', 'created_at', 'id'])
    _replace('ix_item_company_owed_deadline', ['company_id', 'deadline'], OWED,
             ['status', 'category'])
    _replace('ix_item_community_owed_deadline', ['community_id', 'deadline'], OWED,
             ['status', 'category', 'compound_id', 'company_id', 'created_at'])


def downgrade():
    _replace('ix_item_community_owed_deadline', ['community_id', 'deadline'], OWED)
    _replace('ix_item_company_owed_deadline', ['company_id', 'deadline'], OWED)
    _replace('ix_item_community_created', ['community_id', 'created_at'])
    _replace('ix_item_community_owed_created', ['community_id', 'created_at', 'deadline'], OWED)
    op.drop_index('ix_item_community_open_created', table_name='item')
    op.drop_index('ix_item_compound_fixed_at', table_name='item')
