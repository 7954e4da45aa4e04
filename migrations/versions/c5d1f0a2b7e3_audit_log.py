"""audit log (操作记录): an append-only row per administrative act

Revision ID: c5d1f0a2b7e3
Revises: a7c3e2d9b410
"""
from alembic import op
import sqlalchemy as sa

revision = "c5d1f0a2b7e3"
down_revision = "a7c3e2d9b410"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["street_id"], ["street.id"]),
        sa.ForeignKeyConstraint(["community_id"], ["community.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entry_at", "audit_entry", ["at"])
    op.create_index("ix_audit_entry_street_id", "audit_entry", ["street_id"])
    op.create_index("ix_audit_entry_community_id", "audit_entry", ["community_id"])


def downgrade():
    op.drop_index("ix_audit_entry_community_id", table_name="audit_entry")
    op.drop_index("ix_audit_entry_street_id", table_name="audit_entry")
    op.drop_index("ix_audit_entry_at", table_name="audit_entry")
    op.drop_table("audit_entry")
