"""merge the issue-12 branches: keyset indexes of the lists, the reference-data versions of
the lighter request, and the settlement on the queue (claims, Stripe slots and throttles)

Revision ID: 0015
Revises: 0014_lists, 0014_request, 0014_settle
Create Date: 2026-12-03

"""

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = ('0014_lists', '0014_request', '0014_settle')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
