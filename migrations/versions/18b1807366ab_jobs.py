"""jobs: the record of work run by the queue (docs/jobs.md)

Revision ID: 18b1807366ab
Revises: c9e1f3a5b7d2

New table `job`: kind, state (queued / running / failed / done), progress, the result's
key in the store, error, attempts and back-off, who asked, times.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '18b1807366ab'
down_revision = 'c9e1f3a5b7d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('result_key', sa.String(length=200), nullable=True),
    sa.Column('result_name', sa.String(length=200), nullable=True),
    sa.Column('result_type', sa.String(length=100), nullable=True),
    sa.Column('result_note', sa.String(length=300), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_try_at', sa.DateTime(), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("state in ('queued','running','failed','done')", name='ck_job_state'),
    sa.CheckConstraint('progress_done >= 0 AND progress_total >= 0', name='ck_job_progress'),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name='fk_job_created_by_id_user', ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_owner_created', ['created_by_id', 'created_at'], unique=False)
        batch_op.create_index('ix_job_state', ['state', 'next_try_at'], unique=False)



def downgrade():
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index('ix_job_state')
        batch_op.drop_index('ix_job_owner_created')

    op.drop_table('job')
