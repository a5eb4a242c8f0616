"""reconciliation actions: a balance transaction's charge (for the part of a hold Stripe
releases at a partial capture), a note, and the statuses "explained" and "released"

Revision ID: 0008_money
Revises: 0007
Create Date: 2026-12-01 23:55:00

Written by hand.
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_money'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD_TXN = "status IN ('unmatched', 'matched', 'mismatch', 'missing_ledger')"
NEW_TXN = "status IN ('unmatched', 'matched', 'mismatch', 'missing_ledger', 'explained', 'released')"
OLD_BANK = "status IN ('unmatched', 'matched', 'mismatch')"
NEW_BANK = "status IN ('unmatched', 'matched', 'mismatch', 'explained')"


def upgrade():
    with op.batch_alter_table('stripe_balance_txns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('charge_ref', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=255), nullable=False,
                                      server_default=''))
        batch_op.drop_constraint(op.f('ck_stripe_balance_txns_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_stripe_balance_txns_status'), NEW_TXN)
        batch_op.create_index('ix_stripe_balance_txns_charge', ['coop_id', 'charge_ref'],
                              unique=False)
    with op.batch_alter_table('bank_statement_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_bank_statement_lines_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_bank_statement_lines_status'), NEW_BANK)


def downgrade():
    with op.batch_alter_table('bank_statement_lines', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_bank_statement_lines_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_bank_statement_lines_status'), OLD_BANK)
    with op.batch_alter_table('stripe_balance_txns', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_stripe_balance_txns_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_stripe_balance_txns_status'), OLD_TXN)
        batch_op.drop_index('ix_stripe_balance_txns_charge')
        batch_op.drop_column('note')
        batch_op.drop_column('charge_ref')
