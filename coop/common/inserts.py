"""INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL alike: the one row of a unique
key, however many transactions write it at once, with no savepoint (pysqlite's SAVEPOINT
outside a begun transaction would commit on release)."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import bindparam, text

from ..extensions import db
from .transactions import driver_cursor


def insert_ignore(table, row: dict, index: list[str]) -> int | None:
    """Insert `row` unless a row with the same `index` values exists: the new id, or None."""
    db.session.flush()  # what the row refers to (a new user, say) is written first
    row = with_defaults(table, row)
    stmt = _ignoring(table, tuple(row), tuple(index), ("id",), 1)
    return db.session.execute(stmt, {f"{name}_0": value for name, value in row.items()}) \
        .scalar()


def with_defaults(table, row: dict) -> dict:
    """`row` with the Python-side defaults of the columns it leaves out (what an INSERT
    construct would add; a textual one does not)."""
    out = dict(row)
    for column in table.columns:
        default = column.default
        if column.name in out or default is None or not (default.is_scalar
                                                          or default.is_callable):
            continue
        out[column.name] = default.arg if default.is_scalar else default.arg(None)
    return out


@lru_cache(maxsize=128)
def _ignoring(table, columns: tuple, index: tuple, returning: tuple, count: int):
    """INSERT of `count` rows of `columns` ... ON CONFLICT (`index`) DO NOTHING RETURNING,
    as SQL text with typed parameters `<column>_<row>` (the same on SQLite and PostgreSQL).
    Text, made once a shape: SQLAlchemy does not cache the compiled form of its ON CONFLICT
    constructs, and compiling one costs more than the rest of a small INSERT."""
    values = ", ".join("(" + ", ".join(f":{name}_{n}" for name in columns) + ")"
                       for n in range(count))
    def names(items):
        return ", ".join(f'"{name}"' for name in items)
    sql = (f'INSERT INTO "{table.name}" ({names(columns)}) VALUES {values} '
           f"ON CONFLICT ({names(index)}) DO NOTHING")
    if returning:
        sql += f" RETURNING {names(returning)}"
    stmt = text(sql).bindparams(*[bindparam(f"{name}_{n}", type_=table.c[name].type)
                                  for n in range(count) for name in columns])
    return stmt.columns(*[table.c[name] for name in returning]) if returning else stmt


FEW = 20  # rows insert_many writes in one plain INSERT on PostgreSQL


def insert_many(table, rows: list[dict], *, ignore: list[str] | None = None,
                returning: tuple[str, ...] = ()) -> list[tuple]:
    """Insert many rows (all with the same keys) in a few statements, skipping those whose
    `ignore` unique key exists (ON CONFLICT DO NOTHING) when it is given. PostgreSQL: COPY
    (the driver's C path; a multi-row VALUES of 20 columns makes it parse 20,000
    placeholders a thousand rows), into the table, or, to skip what exists or return ids,
    into a temporary table and one INSERT ... SELECT from it; SQLite: its executemany (in
    C), or multi-row INSERTs when rows come back. Returns the `returning` columns of the
    rows written (not of those skipped)."""
    if not rows:
        return []
    db.session.flush()  # what the rows refer to is written first
    dialect = db.session.get_bind().dialect
    columns = list(rows[0])
    out: list[tuple] = []
    if dialect.name == "postgresql" and len(rows) <= FEW:
        # A few rows (one order's message): one multi-row INSERT beats staging them through
        # a temporary table (four round trips).
        full = [with_defaults(table, row) for row in rows]
        if not ignore:
            from sqlalchemy import insert
            stmt = insert(table)
            if not returning:
                db.session.execute(stmt, full)
                return out
            stmt = stmt.returning(*[table.c[name] for name in returning])
            return [tuple(row) for row in db.session.execute(stmt, full)]
        stmt = _ignoring(table, tuple(full[0]), tuple(ignore), tuple(returning), len(full))
        params = {f"{name}_{n}": value for n, row in enumerate(full)
                  for name, value in row.items()}
        result = db.session.execute(stmt, params)
        return [tuple(row) for row in result] if returning else out
    if dialect.name == "postgresql":
        from sqlalchemy import text

        from .bulk import stage
        types = [(name, table.c[name].type.compile(dialect=dialect)) for name in columns]
        values = [tuple(row[name] for name in columns) for row in rows]
        if not ignore and not returning:
            with driver_cursor(db.session.connection()) as cursor:
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in values:
                        copy.write_row(row)
            return out
        source = stage(f"minga_new_{table.name}", types, values)
        sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
               f"SELECT {', '.join(columns)} FROM {source}")
        if ignore:
            sql += f" ON CONFLICT ({', '.join(ignore)}) DO NOTHING"
        if returning:
            sql += f" RETURNING {', '.join(returning)}"
        result = db.session.execute(text(sql))
        return [tuple(row) for row in result] if returning else out
    from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table)
    if ignore:
        stmt = stmt.on_conflict_do_nothing(index_elements=ignore)
    if not returning:
        db.session.execute(stmt, rows)
        return out
    stmt = stmt.returning(*[table.c[name] for name in returning])
    for start in range(0, len(rows), 1000):
        out.extend(tuple(row) for row in db.session.execute(stmt, rows[start:start + 1000]))
    return out
