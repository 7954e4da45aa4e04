"""street staff (街道工作人员): a role bound to a street

Revision ID: d8e4b6c1a9f2
Revises: c5d1f0a2b7e3

user.street_id binds the new role; the CHECK on user.role is rebuilt with its value
(written out as it is today, as a migration must). Downgrading refuses while street
staff accounts exist rather than deleting them.
"""
from alembic import op
import sqlalchemy as sa

revision = "d8e4b6c1a9f2"
down_revision = "c5d1f0a2b7e3"
branch_labels = None
depends_on = None

OLD_ROLES = "'volunteer','manager','staff','committee','admin'"
NEW_ROLES = "'volunteer','manager','staff','street_staff','committee','admin'"


def upgrade():
    with op.batch_alter_table("user") as batch:
        batch.drop_constraint("ck_user_role", type_="check")
        batch.create_check_constraint("ck_user_role", f"role in ({NEW_ROLES})")
        batch.add_column(sa.Column("street_id", sa.Integer(), nullable=True))
        batch.create_index("ix_user_street_id", ["street_id"])
        batch.create_foreign_key("fk_user_street_id_street", "street", ["street_id"], ["id"])


def downgrade():
    bind = op.get_bind()
    n = bind.execute(sa.text("SELECT count(*) FROM \"user\" WHERE role = 'street_staff'")).scalar()
    if n:
        raise RuntimeError(f"{n} street staff account(s) exist: change their role first")
    with op.batch_alter_table("user") as batch:
        batch.drop_constraint("fk_user_street_id_street", type_="foreignkey")
        batch.drop_index("ix_user_street_id")
        batch.drop_column("street_id")
        batch.drop_constraint("ck_user_role", type_="check")
        batch.create_check_constraint("ck_user_role", f"role in ({OLD_ROLES})")
