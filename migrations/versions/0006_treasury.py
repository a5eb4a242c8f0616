"""treasury: Stripe balance transactions, bank statement lines, year-end closes

Revision ID: 0006
Revises: 0003
Create Date: 2026-11-22 10:00:00

Written by hand (other domains add tables at the same time).
"""
from alembic import op
import sqlalchemy as sa
import coop.common.models


revision = '0006'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stripe_balance_txns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('txn_id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=255), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('net_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('available_on', coop.common.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('origin', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ledger_amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('matched_entry_id', sa.Integer(), nullable=True),
    sa.Column('suggested_entry_id', sa.Integer(), nullable=True),
    sa.Column('fee_entry_id', sa.Integer(), nullable=True),
    sa.Column('imported_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('unmatched', 'matched', 'mismatch', 'missing_ledger')", name=op.f('ck_stripe_balance_txns_status')),
    sa.CheckConstraint("origin IN ('api', 'csv')", name=op.f('ck_stripe_balance_txns_origin')),
    sa.CheckConstraint('fee_minor >= 0', name=op.f('ck_stripe_balance_txns_fee_nonneg')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_stripe_balance_txns_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['matched_entry_id'], ['ledger_entries.id'], name=op.f('fk_stripe_balance_txns_matched_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['suggested_entry_id'], ['ledger_entries.id'], name=op.f('fk_stripe_balance_txns_suggested_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['fee_entry_id'], ['ledger_entries.id'], name=op.f('fk_stripe_balance_txns_fee_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_balance_txns')),
    sa.UniqueConstraint('coop_id', 'txn_id', name=op.f('uq_stripe_balance_txns_coop_id_txn_id')),
    sa.UniqueConstraint('matched_entry_id', name=op.f('uq_stripe_balance_txns_matched_entry_id'))
    )
    with op.batch_alter_table('stripe_balance_txns', schema=None) as batch_op:
        batch_op.create_index('ix_stripe_balance_txns_source', ['coop_id', 'source'], unique=False)
        batch_op.create_index('ix_stripe_balance_txns_created', ['coop_id', 'created'], unique=False)

    op.create_table('bank_statement_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('line_key', sa.String(length=64), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('matched_entry_id', sa.Integer(), nullable=True),
    sa.Column('stripe_txn_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=255), nullable=False),
    sa.Column('imported_by_id', sa.Integer(), nullable=True),
    sa.Column('imported_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('unmatched', 'matched', 'mismatch')", name=op.f('ck_bank_statement_lines_status')),
    sa.CheckConstraint('amount_minor <> 0', name=op.f('ck_bank_statement_lines_nonzero')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_bank_statement_lines_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['matched_entry_id'], ['ledger_entries.id'], name=op.f('fk_bank_statement_lines_matched_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['stripe_txn_id'], ['stripe_balance_txns.id'], name=op.f('fk_bank_statement_lines_stripe_txn_id_stripe_balance_txns')),
    sa.ForeignKeyConstraint(['imported_by_id'], ['users.id'], name=op.f('fk_bank_statement_lines_imported_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bank_statement_lines')),
    sa.UniqueConstraint('coop_id', 'line_key', name=op.f('uq_bank_statement_lines_coop_id_line_key')),
    sa.UniqueConstraint('matched_entry_id', name=op.f('uq_bank_statement_lines_matched_entry_id')),
    sa.UniqueConstraint('stripe_txn_id', name=op.f('uq_bank_statement_lines_stripe_txn_id'))
    )
    with op.batch_alter_table('bank_statement_lines', schema=None) as batch_op:
        batch_op.create_index('ix_bank_statement_lines_coop_date', ['coop_id', 'booked_on'], unique=False)
        batch_op.create_index('ix_bank_statement_lines_reference', ['coop_id', 'reference'], unique=False)

    op.create_table('year_end_closes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('surplus_minor', sa.BigInteger(), nullable=False),
    sa.Column('close_entry_id', sa.Integer(), nullable=True),
    sa.Column('distribution_entry_id', sa.Integer(), nullable=True),
    sa.Column('summary_json', sa.Text(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('year BETWEEN 2000 AND 2200', name=op.f('ck_year_end_closes_year_range')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_year_end_closes_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['close_entry_id'], ['ledger_entries.id'], name=op.f('fk_year_end_closes_close_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['distribution_entry_id'], ['ledger_entries.id'], name=op.f('fk_year_end_closes_distribution_entry_id_ledger_entries')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_year_end_closes_approved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_year_end_closes')),
    sa.UniqueConstraint('coop_id', 'year', name=op.f('uq_year_end_closes_coop_id_year'))
    )


def downgrade():
    op.drop_table('year_end_closes')
    with op.batch_alter_table('bank_statement_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_bank_statement_lines_reference')
        batch_op.drop_index('ix_bank_statement_lines_coop_date')
    op.drop_table('bank_statement_lines')
    with op.batch_alter_table('stripe_balance_txns', schema=None) as batch_op:
        batch_op.drop_index('ix_stripe_balance_txns_created')
        batch_op.drop_index('ix_stripe_balance_txns_source')
    op.drop_table('stripe_balance_txns')
