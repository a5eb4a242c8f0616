"""merge the issue-14 branches: invoices and credit notes, and the buyer's currency with
buyers as organisations

Revision ID: 0021_merge
Revises: 0020_invoices, 0020_fx
Create Date: 2026-12-07

"""

# revision identifiers, used by Alembic.
revision = "0021_merge"
down_revision = ("0020_invoices", "0020_fx")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
