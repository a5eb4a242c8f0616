"""orders: the status "unknown" (Stripe did not answer; the resolver settles the hold)

Revision ID: 0010_holds
Revises: 0009
Create Date: 2026-12-02 14:00:00

Written by hand.
"""
from alembic import op


revision = '0010_holds'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD = "status IN ('pending', 'authorized', 'captured', 'released', 'cancelled', 'failed')"
NEW = ("status IN ('pending', 'authorized', 'captured', 'released', 'cancelled', 'failed', "
       "'unknown')")


def upgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status'), NEW)


def downgrade():
    op.execute("UPDATE orders SET status = 'failed' WHERE status = 'unknown'")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status'), OLD)
