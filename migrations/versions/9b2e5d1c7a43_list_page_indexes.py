"""list page indexes: covering indexes for the overview and the inbox

Revision ID: 9b2e5d1c7a43
Revises: 4c46d473ee75
Create Date: 2026-11-27 21:40:00.000000

ix_item_community_status now holds every column the community overview filters
on or counts, ix_item_company_status adds the deadline the inbox tabs compare,
and ix_item_community_created gives the overview its newest-first order.
Measured with bench/lists.py; see docs/benchmarks.md.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9b2e5d1c7a43'
down_revision = '4c46d473ee75'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index('ix_item_community_status')
        batch_op.drop_index('ix_item_company_status')
        batch_op.create_index('ix_item_community_status',
                              ['community_id', 'status', 'category', 'deadline', 'company_id',
                               'compound_id', 'created_at'], unique=False)
        batch_op.create_index('ix_item_community_created', ['community_id', 'created_at'],
                              unique=False)
        batch_op.create_index('ix_item_company_status', ['company_id', 'status', 'deadline'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.drop_index('ix_item_company_status')
        batch_op.drop_index('ix_item_community_created')
        batch_op.drop_index('ix_item_community_status')
        batch_op.create_index('ix_item_company_status', ['company_id', 'status'], unique=False)
        batch_op.create_index('ix_item_community_status', ['community_id', 'status'],
                              unique=False)
