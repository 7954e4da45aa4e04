"""idempotency key for item changes

Revision ID: 3d6e68a7361f
Revises: bef13c986981
Create Date: 2026-11-27 22:23:42.813395

A unique index rather than a unique constraint: on SQLite a constraint would
rebuild item_event, which photo rows reference.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3d6e68a7361f'
down_revision = 'bef13c986981'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('item_event', sa.Column('client_uuid', sa.String(length=36), nullable=True))
    op.create_index('uq_item_event_client_uuid', 'item_event', ['client_uuid'], unique=True)


def downgrade():
    op.drop_index('uq_item_event_client_uuid', table_name='item_event')
    with op.batch_alter_table('item_event', schema=None) as batch_op:
        batch_op.drop_column('client_uuid')
