"""merge the issue-13 branches: the EUDR packs and DDS references, and the lots' dispatch
(the pools' delivery terms and the lots' events)

Revision ID: 0019_merge
Revises: 0018_eudr, 0018_dispatch
Create Date: 2026-12-06

"""

# revision identifiers, used by Alembic.
revision = "0019_merge"
down_revision = ("0018_eudr", "0018_dispatch")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
