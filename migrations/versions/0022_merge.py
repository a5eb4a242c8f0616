"""merge issue 14's card entry (orders waiting for their card, saved cards) with the
invoices, currencies and organisations

Revision ID: 0022_merge
Revises: 0021_merge, 0020_card
Create Date: 2026-12-07

"""

# revision identifiers, used by Alembic.
revision = "0022_merge"
down_revision = ("0021_merge", "0020_card")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
