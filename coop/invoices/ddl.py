"""Database-side guarantee of the documents, as migration 0020_invoices created it (the
migration holds a frozen copy) and as the test suite re-creates it after emptying tables:
an issued invoice, credit note or purchase document is never updated or deleted."""

SQLITE = [
    """CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices
    BEGIN SELECT RAISE(ABORT, 'issued documents are immutable'); END""",
    """CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
    BEGIN SELECT RAISE(ABORT, 'issued documents are immutable'); END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS invoices_no_update",
               "DROP TRIGGER IF EXISTS invoices_no_delete"]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION invoices_refuse_change() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION 'issued documents are immutable (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change()""",
]
POSTGRES_DROP = ["DROP TRIGGER IF EXISTS invoices_immutable ON invoices",
                 "DROP FUNCTION IF EXISTS invoices_refuse_change()"]


def statements(dialect: str) -> list[str]:
    return POSTGRES if dialect == "postgresql" else SQLITE


def drop_statements(dialect: str) -> list[str]:
    return POSTGRES_DROP if dialect == "postgresql" else SQLITE_DROP
