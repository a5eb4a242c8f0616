"""merge the issue-10 branches: unknown card holds, session versions, coop verification and
invitations

Revision ID: 0011
Revises: 0010_holds, 0010_sessions, 0010_verify
Create Date: 2026-12-02

"""

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = ('0010_holds', '0010_sessions', '0010_verify')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
