"""intake, buyer refunds and the member share register

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 10:00:00

Written by hand (other domains add their tables beside 0003 at the same time).
"""
from alembic import op
import sqlalchemy as sa
import coop.common.models


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('intakes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('pool_id', sa.Integer(), nullable=False),
    sa.Column('allocation_id', sa.Integer(), nullable=False),
    sa.Column('farmer_user_id', sa.Integer(), nullable=False),
    sa.Column('grade_id', sa.Integer(), nullable=False),
    sa.Column('price_version_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('received_g', sa.BigInteger(), nullable=False),
    sa.Column('accepted_g', sa.BigInteger(), nullable=False),
    sa.Column('excess_g', sa.BigInteger(), nullable=False),
    sa.Column('shortfall_g', sa.BigInteger(), nullable=False),
    sa.Column('farmer_price_per_kg_minor', sa.BigInteger(), nullable=False),
    sa.Column('buyer_price_per_kg_minor', sa.BigInteger(), nullable=False),
    sa.Column('farmer_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('sale_minor', sa.BigInteger(), nullable=False),
    sa.Column('premium_minor', sa.BigInteger(), nullable=False),
    sa.Column('commission_minor', sa.BigInteger(), nullable=False),
    sa.Column('coop_cost_minor', sa.BigInteger(), nullable=False),
    sa.Column('refund_minor', sa.BigInteger(), nullable=False),
    sa.Column('advance_minor', sa.BigInteger(), nullable=False),
    sa.Column('share_withholding_minor', sa.BigInteger(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('recorded_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('received_g >= 0 AND accepted_g >= 0 AND excess_g >= 0 AND shortfall_g >= 0 AND accepted_g + excess_g = received_g', name=op.f('ck_intakes_grams')),
    sa.CheckConstraint('farmer_amount_minor >= 0 AND sale_minor >= 0 AND premium_minor >= 0 AND commission_minor >= 0 AND coop_cost_minor >= 0 AND refund_minor >= 0', name=op.f('ck_intakes_amounts_nonneg')),
    sa.CheckConstraint('advance_minor >= 0 AND share_withholding_minor >= 0 AND advance_minor + share_withholding_minor <= farmer_amount_minor', name=op.f('ck_intakes_deductions')),
    sa.ForeignKeyConstraint(['allocation_id'], ['allocations.id'], name=op.f('fk_intakes_allocation_id_allocations')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_intakes_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['farmer_user_id'], ['users.id'], name=op.f('fk_intakes_farmer_user_id_users')),
    sa.ForeignKeyConstraint(['grade_id'], ['grades.id'], name=op.f('fk_intakes_grade_id_grades')),
    sa.ForeignKeyConstraint(['pool_id'], ['pools.id'], name=op.f('fk_intakes_pool_id_pools')),
    sa.ForeignKeyConstraint(['price_version_id'], ['price_versions.id'], name=op.f('fk_intakes_price_version_id_price_versions')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_intakes_recorded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intakes')),
    sa.UniqueConstraint('allocation_id', name=op.f('uq_intakes_allocation_id')),
    sa.UniqueConstraint('coop_id', 'idempotency_key', name=op.f('uq_intakes_coop_id_idempotency_key'))
    )
    with op.batch_alter_table('intakes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_intakes_coop_id'), ['coop_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_intakes_pool_id'), ['pool_id'], unique=False)
        batch_op.create_index('ix_intakes_farmer', ['farmer_user_id', 'id'], unique=False)

    op.create_table('buyer_refunds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('intake_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('stripe_refund_id', sa.String(length=255), nullable=True),
    sa.Column('failure_message', sa.String(length=255), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('locked_until', coop.common.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_buyer_refunds_amount_positive')),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f('ck_buyer_refunds_status')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_buyer_refunds_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['intake_id'], ['intakes.id'], name=op.f('fk_buyer_refunds_intake_id_intakes')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_buyer_refunds_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_buyer_refunds')),
    sa.UniqueConstraint('order_id', 'intake_id', name=op.f('uq_buyer_refunds_order_id_intake_id'))
    )
    with op.batch_alter_table('buyer_refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_buyer_refunds_intake_id'), ['intake_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_buyer_refunds_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_buyer_refunds_status', ['status', 'id'], unique=False)

    op.create_table('share_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('subscribed_shares', sa.Integer(), nullable=False),
    sa.Column('paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('redeemed_minor', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('opened_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('redeemed_at', coop.common.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('subscribed_shares >= 0', name=op.f('ck_share_accounts_subscribed_nonneg')),
    sa.CheckConstraint('paid_minor >= 0 AND redeemed_minor >= 0 AND redeemed_minor <= paid_minor', name=op.f('ck_share_accounts_paid_redeemed')),
    sa.CheckConstraint("status IN ('active', 'redeemed')", name=op.f('ck_share_accounts_status')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_share_accounts_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_share_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_accounts')),
    sa.UniqueConstraint('coop_id', 'user_id', name=op.f('uq_share_accounts_coop_id_user_id'))
    )
    with op.batch_alter_table('share_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_accounts_coop_id'), ['coop_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_share_accounts_user_id'), ['user_id'], unique=False)

    op.create_table('share_movements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('ledger_entry_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_share_movements_amount_positive')),
    sa.CheckConstraint("kind IN ('cash', 'bank', 'withholding', 'redemption')", name=op.f('ck_share_movements_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['share_accounts.id'], name=op.f('fk_share_movements_account_id_share_accounts')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_share_movements_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_share_movements_created_by_id_users')),
    sa.ForeignKeyConstraint(['ledger_entry_id'], ['ledger_entries.id'], name=op.f('fk_share_movements_ledger_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_share_movements')),
    sa.UniqueConstraint('coop_id', 'idempotency_key', name=op.f('uq_share_movements_coop_id_idempotency_key'))
    )
    with op.batch_alter_table('share_movements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_movements_account_id'), ['account_id'], unique=False)


def downgrade():
    with op.batch_alter_table('share_movements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_movements_account_id'))
    op.drop_table('share_movements')
    with op.batch_alter_table('share_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_accounts_user_id'))
        batch_op.drop_index(batch_op.f('ix_share_accounts_coop_id'))
    op.drop_table('share_accounts')
    with op.batch_alter_table('buyer_refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_buyer_refunds_status')
        batch_op.drop_index(batch_op.f('ix_buyer_refunds_order_id'))
        batch_op.drop_index(batch_op.f('ix_buyer_refunds_intake_id'))
    op.drop_table('buyer_refunds')
    with op.batch_alter_table('intakes', schema=None) as batch_op:
        batch_op.drop_index('ix_intakes_farmer')
        batch_op.drop_index(batch_op.f('ix_intakes_pool_id'))
        batch_op.drop_index(batch_op.f('ix_intakes_coop_id'))
    op.drop_table('intakes')
