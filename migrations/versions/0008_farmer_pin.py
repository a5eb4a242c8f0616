"""farmers without e-mail: users.email optional; users.must_set_pin (PIN chosen at first login)

Revision ID: 0008_farmer
Revises: 0007
Create Date: 2026-12-01

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008_farmer"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)
        batch_op.add_column(sa.Column("must_set_pin", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("must_set_pin")
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
