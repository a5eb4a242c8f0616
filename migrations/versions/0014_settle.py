"""settlement on the queue (issue 12 part 2): an order's settlement claim, a pool's number of
holds to settle, and the per-Stripe-account concurrency slots and 429 back-off

Revision ID: 0014_settle
Revises: 0013
Create Date: 2026-12-03

"""
import sqlalchemy as sa
from alembic import op

revision = "0014_settle"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("settle_claim", sa.String(32)))
        batch.add_column(sa.Column("settle_claim_until", TS))
    with op.batch_alter_table("pools") as batch:
        batch.add_column(sa.Column("settle_total", sa.Integer(), nullable=False,
                                   server_default="0"))
    op.create_table(
        "stripe_slots",
        sa.Column("account", sa.String(40), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("holder", sa.String(32)),
        sa.Column("lease_until", TS),
    )
    op.create_table(
        "stripe_throttles",
        sa.Column("account", sa.String(40), primary_key=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("until", TS),
    )


def downgrade():
    op.drop_table("stripe_throttles")
    op.drop_table("stripe_slots")
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("settle_total")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("settle_claim_until")
        batch.drop_column("settle_claim")
