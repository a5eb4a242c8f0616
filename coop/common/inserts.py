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


def insert_ignore_many(table, rows: list[dict], index: list[str],
                       returning: tuple[str, ...] = ("id",), size: int = 1000) -> list[tuple]:
    """`insert_ignore` for many rows: multi-row INSERT ... ON CONFLICT DO NOTHING statements
    of `size` rows (SQLAlchemy's insertmanyvalues), on both databases. Returns the
    `returning` columns of the rows written now; those whose key existed are skipped."""
    if not rows:
        return []
    db.session.flush()
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=index) \
        .returning(*[table.c[name] for name in returning])
    out: list[tuple] = []
    for start in range(0, len(rows), size):
        out.extend(tuple(row) for row in db.session.execute(stmt, rows[start:start + size]))
    return out
