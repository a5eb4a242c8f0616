"""merge the issue-8 branches: reconciliation actions, farmers' PINs, licit crops and
collection points

Revision ID: 0009
Revises: 0008_money, 0008_farmer, 0008_lang_points
Create Date: 2026-12-02

"""

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = ('0008_money', '0008_farmer', '0008_lang_points')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
