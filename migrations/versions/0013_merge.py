"""merge the issue-11 branches: the job outbox and messages, and people (E.164 phones,
preferences, one-time codes)

Revision ID: 0013
Revises: 0012_messages, 0012_people
Create Date: 2026-12-02

"""

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = ('0012_messages', '0012_people')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
