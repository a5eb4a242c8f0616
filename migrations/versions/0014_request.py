"""reference_versions: the version of each per-process cache of reference data (the crop
catalog, a coop's current prices), bumped by the service that writes it (coop/common/refcache.py)

Revision ID: 0014_request
Revises: 0013
Create Date: 2026-12-03

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014_request'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "reference_versions",
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reference_versions")),
    )


def downgrade():
    op.drop_table("reference_versions")
