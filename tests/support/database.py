"""Emptying the test database after each test (see `empty_tables`)."""
from __future__ import annotations

from sqlalchemy import text

from coop.extensions import db
from tests.support import KEEP


def _tables_to_empty() -> list:
    """Every table but KEEP's, children before their parents (the order deletes need)."""
    return [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP]


def empty_tables() -> None:
    """Empties what the test wrote, in one short transaction, without TRUNCATE.

    PostgreSQL: TRUNCATE ... RESTART IDENTITY CASCADE of ~30 tables took about 0.6 s a test
    (each truncated table and index gets a new file). Instead one query names the tables
    that hold rows and the sequences that moved; only those are emptied (DELETE, children
    first; the ledger's own triggers, which refuse deletes, are lifted meanwhile) and reset
    (setval, so ids start at 1 again as they did after RESTART IDENTITY). Rows committed by
    any connection are found, so tests may commit, use threads, other apps, live servers.
    SQLite: every table is emptied with the ledger's triggers dropped and re-created."""
    tables = _tables_to_empty()
    db.session.remove()
    from coop.common import refcache
    refcache.clear()  # this process's cached catalog and prices
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            _empty_postgres(conn, tables)
        else:
            from coop.invoices import ddl as invoice_ddl
            from coop.ledger import ddl
            for statement in ddl.drop_statements("sqlite") + invoice_ddl.drop_statements("sqlite"):
                conn.execute(text(statement))
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for t in tables:
                conn.execute(t.delete())
            for statement in ddl.statements("sqlite") + invoice_ddl.statements("sqlite"):
                conn.execute(text(statement))


_SEQUENCES: dict[str, str] = {}  # table -> its id sequence (PostgreSQL), read once


def _empty_postgres(conn, tables) -> None:
    if not _SEQUENCES:
        _SEQUENCES.update(conn.execute(text(
            "SELECT t.relname, s.relname FROM pg_class s"
            " JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')"
            " JOIN pg_class t ON t.oid = d.refobjid"
            " WHERE s.relkind = 'S' AND t.relname = ANY(:names)"),
            {"names": [t.name for t in tables]}).all())
    filled = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables)
    full = {row[0] for row in conn.execute(text(filled))}
    moved = [row[0] for row in conn.execute(text(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        " AND last_value IS NOT NULL AND sequencename = ANY(:seqs)"),
        {"seqs": list(_SEQUENCES.values())})]
    guarded = [name for name in ("ledger_entries", "ledger_postings", "invoices")
               if name in full]
    for name in guarded:
        conn.execute(text(f'ALTER TABLE "{name}" DISABLE TRIGGER USER'))
    for t in tables:  # a foreign key of a cycle (use_alter: plots -> their current version)
        cyclic = [fk.parent for fk in t.foreign_keys if fk.use_alter]
        if t.name in full and cyclic:
            conn.execute(t.update().values({column.name: None for column in cyclic}))
    for t in tables:
        if t.name in full:
            conn.execute(t.delete())
    for name in guarded:
        conn.execute(text(f'ALTER TABLE "{name}" ENABLE TRIGGER USER'))
    if moved:
        conn.execute(text("SELECT " + ", ".join(
            f"setval('\"{seq}\"', 1, false)" for seq in moved)))
