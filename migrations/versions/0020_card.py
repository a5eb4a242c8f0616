"""card entry (issue 14 part 1): the order status "authorizing" (the buyer confirms the card
with Stripe.js, 3-D Secure), the order's SetupIntent, the buyers' Stripe Customers and their
saved cards

Revision ID: 0020_card
Revises: 0019_merge
Create Date: 2026-12-07

Written by hand.
"""
import sqlalchemy as sa
from alembic import op

revision = "0020_card"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
OLD = ("status IN ('pending', 'authorized', 'captured', 'released', 'cancelled', 'failed', "
       "'unknown')")
NEW = ("status IN ('pending', 'authorized', 'captured', 'released', 'cancelled', 'failed', "
       "'unknown', 'authorizing')")


def upgrade():
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_status"), NEW)
        batch_op.add_column(sa.Column("setup_intent_id", sa.String(255)))
    op.create_table(
        "stripe_customers",
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("customer_id", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "saved_cards",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id"), nullable=False),
        sa.Column("payment_method_id", sa.String(255), nullable=False),
        sa.Column("brand", sa.String(20), nullable=False),
        sa.Column("last4", sa.String(4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=False),
        sa.Column("exp_year", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("payment_method_id"),
    )
    op.create_index(op.f("ix_saved_cards_buyer_id"), "saved_cards", ["buyer_id"])


def downgrade():
    op.drop_index(op.f("ix_saved_cards_buyer_id"), table_name="saved_cards")
    op.drop_table("saved_cards")
    op.drop_table("stripe_customers")
    op.execute("UPDATE orders SET status = 'failed' WHERE status = 'authorizing'")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("setup_intent_id")
        batch_op.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_status"), OLD)
