"""Database-side guarantees of the ledger, as migration 0003 created them (the migration holds a
frozen copy: a change here needs a new migration) and as the test suite re-creates them after
it empties the tables.

- Posted entries and every posting are immutable: UPDATE and DELETE are refused (SQLite and
  PostgreSQL). An entry may only move once from 'pending' to 'posted' or 'voided'.
- PostgreSQL also checks, at commit (a deferred constraint trigger), that every entry's
  postings sum to zero."""

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


def statements(dialect: str) -> list[str]:
    return POSTGRES if dialect == "postgresql" else SQLITE


def drop_statements(dialect: str) -> list[str]:
    return POSTGRES_DROP if dialect == "postgresql" else SQLITE_DROP
