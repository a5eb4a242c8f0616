"""payouts: batches, lines and the farmers left out of a batch

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-22 10:00:00

Written by hand (other domains add their tables beside 0003 at the same time).
"""
from alembic import op
import sqlalchemy as sa
import coop.common.models


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payout_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('rail', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('exported_at', coop.common.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', coop.common.models.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'closed')", name=op.f('ck_payout_batches_status')),
    sa.CheckConstraint('total_minor >= 0', name=op.f('ck_payout_batches_total_nonneg')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_payout_batches_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_payout_batches_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_batches')),
    sa.UniqueConstraint('coop_id', 'idempotency_key', name=op.f('uq_payout_batches_coop_id_idempotency_key'))
    )
    with op.batch_alter_table('payout_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_batches_coop_id'), ['coop_id'], unique=False)

    op.create_table('payout_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('farmer_user_id', sa.Integer(), nullable=False),
    sa.Column('rail', sa.String(length=16), nullable=False),
    sa.Column('payee_name', sa.String(length=160), nullable=False),
    sa.Column('national_id', sa.String(length=32), nullable=False),
    sa.Column('account', sa.String(length=64), nullable=False),
    sa.Column('bank_name', sa.String(length=80), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('flag', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=True),
    sa.Column('confirmed_at', coop.common.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payout_lines_amount_positive')),
    sa.CheckConstraint("status IN ('pending', 'paid', 'failed')", name=op.f('ck_payout_lines_status')),
    sa.CheckConstraint("rail IN ('bank', 'breb', 'nequi', 'daviplata', 'yape', 'plin', 'spei', 'cash')", name=op.f('ck_payout_lines_rail')),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payout_lines_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_payout_lines_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['farmer_user_id'], ['users.id'], name=op.f('fk_payout_lines_farmer_user_id_users')),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_payout_lines_confirmed_by_id_users')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_payout_lines_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_lines'))
    )
    with op.batch_alter_table('payout_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_lines_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index('ix_payout_lines_coop_farmer_status', ['coop_id', 'farmer_user_id', 'status'], unique=False)

    op.create_table('payout_exclusions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('farmer_user_id', sa.Integer(), nullable=False),
    sa.Column('payee_name', sa.String(length=160), nullable=False),
    sa.Column('rail', sa.String(length=16), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['payout_batches.id'], name=op.f('fk_payout_exclusions_batch_id_payout_batches')),
    sa.ForeignKeyConstraint(['farmer_user_id'], ['users.id'], name=op.f('fk_payout_exclusions_farmer_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_exclusions'))
    )
    with op.batch_alter_table('payout_exclusions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_exclusions_batch_id'), ['batch_id'], unique=False)


def downgrade():
    with op.batch_alter_table('payout_exclusions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_exclusions_batch_id'))
    op.drop_table('payout_exclusions')
    with op.batch_alter_table('payout_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_payout_lines_coop_farmer_status')
        batch_op.drop_index(batch_op.f('ix_payout_lines_batch_id'))
    op.drop_table('payout_lines')
    with op.batch_alter_table('payout_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_batches_coop_id'))
    op.drop_table('payout_batches')
