"""idempotency key for item changes

Revision ID: 3d6e68a7361f
Revises: bef13c986981
Create Date: 2026-11-27 22:23:42.813395

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3d6e68a7361f'
down_revision = 'bef13c986981'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('item_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_uuid', sa.String(length=36), nullable=True))
        batch_op.create_unique_constraint('uq_item_event_client_uuid', ['client_uuid'])



def downgrade():
    with op.batch_alter_table('item_event', schema=None) as batch_op:
        batch_op.drop_constraint('uq_item_event_client_uuid', type_='unique')
        batch_op.drop_column('client_uuid')

