"""Streets above communities; names unique within their parent; compound radius and
archiving; company contact and credit code.

Revision ID: a7c3e2d9b410
Revises: 61e1a9511f08
"""
from alembic import op
import sqlalchemy as sa

revision = "a7c3e2d9b410"
down_revision = "61e1a9511f08"
branch_labels = None
depends_on = None

# The initial schema left community.name's unique constraint unnamed: SQLite's batch
# mode finds it through this convention; on PostgreSQL it is looked up by its column.
UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_community_name_unique():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for uq in sa.inspect(bind).get_unique_constraints("community"):
            if uq["column_names"] == ["name"]:
                op.drop_constraint(uq["name"], "community", type_="unique")
        return
    with op.batch_alter_table("community", naming_convention=UNNAMED) as batch:
        batch.drop_constraint("uq_community_name", type_="unique")


def upgrade():
    op.create_table(
        "street",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    _drop_community_name_unique()
    with op.batch_alter_table("community") as batch:
        batch.add_column(sa.Column("street_id", sa.Integer(), nullable=True))
        batch.create_index("ix_community_street_id", ["street_id"])
        batch.create_foreign_key("fk_community_street_id_street", "street", ["street_id"], ["id"])
        batch.create_unique_constraint("uq_community_street_name", ["street_id", "name"])
    with op.batch_alter_table("company") as batch:
        batch.add_column(sa.Column("contact", sa.String(length=60), nullable=True))
        batch.add_column(sa.Column("credit_code", sa.String(length=18), nullable=True))
    with op.batch_alter_table("compound") as batch:
        batch.add_column(sa.Column("radius_m", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(), nullable=True))
        batch.create_unique_constraint("uq_compound_community_name", ["community_id", "name"])


def downgrade():
    with op.batch_alter_table("compound") as batch:
        batch.drop_constraint("uq_compound_community_name", type_="unique")
        batch.drop_column("archived_at")
        batch.drop_column("radius_m")
    with op.batch_alter_table("company") as batch:
        batch.drop_column("credit_code")
        batch.drop_column("contact")
    with op.batch_alter_table("community") as batch:
        batch.drop_constraint("uq_community_street_name", type_="unique")
        batch.drop_constraint("fk_community_street_id_street", type_="foreignkey")
        batch.drop_index("ix_community_street_id")
        batch.drop_column("street_id")
        batch.create_unique_constraint("uq_community_name", ["name"])
    op.drop_table("street")
