"""INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike: the one row of a unique
key, however many transactions write it at once, with no savepoint (pysqlite's SAVEPOINT
outside a begun transaction would commit on release)."""
from __future__ import annotations

from ..extensions import db


def insert_ignore(table, row: dict, index: list[str]) -> int | None:
    """Insert `row` unless a row with the same `index` values exists: the new id, or None."""
    db.session.flush()  # what the row refers to (a new user, say) is written first
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**row).on_conflict_do_nothing(index_elements=index) \
        .returning(table.c.id)
    return db.session.execute(stmt).scalar()
