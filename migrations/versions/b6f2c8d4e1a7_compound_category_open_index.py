"""the overview filtered by compound and category: open items in list order

Revision ID: b6f2c8d4e1a7
Revises: a3d9e6f1c284

ix_item_compound_category_open_created (compound, category, created, id; open items):
the overview with compound, category and an open status (the bench's "all filters"
page) reads its newest items in list order; before, PostgreSQL ANDed the compound's
open index with the company's status index and sorted every match of the range
(20 ms at 1M items, history profile; 0.3 ms with it). Issue 15 §4, docs/benchmarks.md.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b6f2c8d4e1a7'
down_revision = 'a3d9e6f1c284'
branch_labels = None
depends_on = None

OPEN = "status IN ('acknowledged', 'fixed', 'reopened', 'reported')"


def upgrade():
    op.create_index('ix_item_compound_category_open_created', 'item',
                    ['compound_id', 'category', 'created_at', 'id'], unique=False,
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade():
    op.drop_index('ix_item_compound_category_open_created', table_name='item')
