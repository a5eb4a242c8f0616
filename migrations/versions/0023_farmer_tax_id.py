"""the farmer's identity document for the weekly purchase documents (documento soporte,
liquidación de compra): its type (CC in Colombia; DNI or RUC in Peru) and number, optional
(members recorded before it have none)

Revision ID: 0023_farmer_tax_id
Revises: 0022_merge
Create Date: 2026-12-08

"""
import sqlalchemy as sa
from alembic import op

revision = "0023_farmer_tax_id"
down_revision = "0022_merge"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("farmer_profiles") as batch:
        batch.add_column(sa.Column("tax_id_type", sa.String(8)))
        batch.add_column(sa.Column("tax_id", sa.String(20)))


def downgrade():
    with op.batch_alter_table("farmer_profiles") as batch:
        batch.drop_column("tax_id")
        batch.drop_column("tax_id_type")
