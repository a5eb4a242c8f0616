"""ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 19:44:07.867508

"""
from alembic import op
import sqlalchemy as sa
import coop.common.models


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# The ledger's database-side guarantees as this revision created them: a frozen copy of what
# coop/ledger/ddl.py said then, so that editing that file never changes an old migration.
# A later change to the triggers is a new revision.
SQLITE = [
    """CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
    BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END""",
    """CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
    BEGIN SELECT RAISE(ABORT, 'ledger postings are immutable'); END""",
    """CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END""",
    """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    WHEN NOT (OLD.status = 'pending' AND NEW.status IN ('posted', 'voided')
              AND NEW.id = OLD.id AND NEW.coop_id = OLD.coop_id
              AND NEW.idempotency_key = OLD.idempotency_key AND NEW.kind = OLD.kind
              AND NEW.currency = OLD.currency AND NEW.fingerprint = OLD.fingerprint)
    BEGIN SELECT RAISE(ABORT, 'posted ledger entries are immutable'); END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS ledger_postings_no_update",
               "DROP TRIGGER IF EXISTS ledger_postings_no_delete",
               "DROP TRIGGER IF EXISTS ledger_entries_no_delete",
               "DROP TRIGGER IF EXISTS ledger_entries_no_update"]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
    BEGIN
      IF TG_TABLE_NAME = 'ledger_entries' AND TG_OP = 'UPDATE'
         AND OLD.status = 'pending' AND NEW.status IN ('posted', 'voided')
         AND NEW.id = OLD.id AND NEW.coop_id = OLD.coop_id
         AND NEW.idempotency_key = OLD.idempotency_key AND NEW.kind = OLD.kind
         AND NEW.currency = OLD.currency AND NEW.fingerprint = OLD.fingerprint THEN
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'ledger % are immutable (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_entries_immutable BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE OR DELETE ON ledger_postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    # One check per entry at commit (not per posting: a 10,000-line year-end entry stays fast).
    """CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger AS $$
    DECLARE total bigint; lines integer;
    BEGIN
      SELECT COALESCE(SUM(amount_minor), 0), COUNT(*) INTO total, lines FROM ledger_postings
        WHERE entry_id = NEW.id;
      IF total <> 0 OR lines < 2 THEN
        RAISE EXCEPTION 'ledger entry % does not balance (% lines, off by %)',
          NEW.id, lines, total USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()""",
    # Postings join an entry only in the transaction that created it, so the check above
    # sees every line an entry will ever have. Checked once per INSERT statement.
    """CREATE OR REPLACE FUNCTION ledger_posting_same_transaction() RETURNS trigger AS $$
    BEGIN
      -- A visible row whose inserting transaction is still in progress is our own (or one
      -- of our savepoints'): other transactions' uncommitted rows are invisible.
      IF EXISTS (
        SELECT 1 FROM (SELECT DISTINCT entry_id FROM new_postings) p
        JOIN ledger_entries e ON e.id = p.entry_id
        WHERE txid_status((txid_current() >> 32 << 32) + e.xmin::text::bigint)
              IS DISTINCT FROM 'in progress') THEN
        RAISE EXCEPTION 'postings can only be added with their entry'
          USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER ledger_postings_with_entry AFTER INSERT ON ledger_postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_posting_same_transaction()""",
]
POSTGRES_DROP = ["DROP TRIGGER IF EXISTS ledger_entries_balanced ON ledger_entries",
                 "DROP TRIGGER IF EXISTS ledger_postings_with_entry ON ledger_postings",
                 "DROP FUNCTION IF EXISTS ledger_posting_same_transaction()",
                 "DROP TRIGGER IF EXISTS ledger_postings_immutable ON ledger_postings",
                 "DROP TRIGGER IF EXISTS ledger_entries_immutable ON ledger_entries",
                 "DROP FUNCTION IF EXISTS ledger_check_balanced()",
                 "DROP FUNCTION IF EXISTS ledger_refuse_change()"]



def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('finance_settings',
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('advance_bps', sa.Integer(), nullable=False),
    sa.Column('share_par_minor', sa.BigInteger(), nullable=False),
    sa.Column('share_min_shares', sa.Integer(), nullable=False),
    sa.Column('share_withholding_bps', sa.Integer(), nullable=False),
    sa.Column('reserve_bps', sa.Integer(), nullable=False),
    sa.Column('education_bps', sa.Integer(), nullable=False),
    sa.Column('solidarity_bps', sa.Integer(), nullable=False),
    sa.Column('patronage_cash_bps', sa.Integer(), nullable=False),
    sa.Column('updated_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('advance_bps BETWEEN 0 AND 10000', name=op.f('ck_finance_settings_advance_range')),
    sa.CheckConstraint('patronage_cash_bps BETWEEN 0 AND 10000', name=op.f('ck_finance_settings_cash_range')),
    sa.CheckConstraint('reserve_bps >= 2000 AND education_bps >= 2000 AND solidarity_bps >= 1000 AND reserve_bps + education_bps + solidarity_bps <= 10000', name=op.f('ck_finance_settings_ley79_minimums')),
    sa.CheckConstraint('share_par_minor >= 0 AND share_min_shares >= 0', name=op.f('ck_finance_settings_shares_nonneg')),
    sa.CheckConstraint('share_withholding_bps BETWEEN 0 AND 10000', name=op.f('ck_finance_settings_withholding_range')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_finance_settings_coop_id_cooperatives')),
    sa.PrimaryKeyConstraint('coop_id', name=op.f('pk_finance_settings'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('before_json', sa.String(length=4000), nullable=False),
    sa.Column('after_json', sa.String(length=4000), nullable=False),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_audit_events_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_coop_time', ['coop_id', 'created_at'], unique=False)

    op.create_table('ledger_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('may_go_negative', sa.Boolean(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('asset', 'liability', 'equity', 'income', 'expense')", name=op.f('ck_ledger_accounts_kind')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_ledger_accounts_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ledger_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_accounts')),
    sa.UniqueConstraint('coop_id', 'code', name=op.f('uq_ledger_accounts_coop_id_code'))
    )
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_accounts_coop_id'), ['coop_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_accounts_user_id'), ['user_id'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('coop_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('memo', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('pending_id', sa.Integer(), nullable=True),
    sa.Column('source_type', sa.String(length=32), nullable=True),
    sa.Column('source_id', sa.BigInteger(), nullable=True),
    sa.Column('external_ref', sa.String(length=255), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('effective_on', coop.common.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'posted', 'voided')", name=op.f('ck_ledger_entries_status')),
    sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'], name=op.f('fk_ledger_entries_coop_id_cooperatives')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_ledger_entries_created_by_id_users')),
    sa.ForeignKeyConstraint(['pending_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_pending_id_ledger_entries')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_reverses_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('coop_id', 'idempotency_key', name=op.f('uq_ledger_entries_coop_id_idempotency_key')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_ledger_entries_reverses_id'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_coop_id'), ['coop_id'], unique=False)
        batch_op.create_index('ix_ledger_entries_external', ['coop_id', 'external_ref'], unique=False)
        batch_op.create_index('ix_ledger_entries_source', ['source_type', 'source_id'], unique=False)

    op.create_table('ledger_postings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_minor <> 0', name=op.f('ck_ledger_postings_nonzero')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name=op.f('fk_ledger_postings_account_id_ledger_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name=op.f('fk_ledger_postings_entry_id_ledger_entries')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_postings'))
    )
    with op.batch_alter_table('ledger_postings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_postings_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_postings_entry_id'), ['entry_id'], unique=False)

    # ### end Alembic commands ###
    bind = op.get_bind()
    for statement in (POSTGRES if bind.dialect.name == "postgresql" else SQLITE):
        op.execute(statement)


def downgrade():
    bind = op.get_bind()
    for statement in (POSTGRES_DROP if bind.dialect.name == "postgresql" else SQLITE_DROP):
        op.execute(statement)
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('ledger_postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_postings_entry_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_postings_account_id'))

    op.drop_table('ledger_postings')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_source')
        batch_op.drop_index('ix_ledger_entries_external')
        batch_op.drop_index(batch_op.f('ix_ledger_entries_coop_id'))

    op.drop_table('ledger_entries')
    with op.batch_alter_table('ledger_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_user_id'))
        batch_op.drop_index(batch_op.f('ix_ledger_accounts_coop_id'))

    op.drop_table('ledger_accounts')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_coop_time')

    op.drop_table('audit_events')
    op.drop_table('finance_settings')
    # ### end Alembic commands ###
