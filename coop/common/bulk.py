"""Set-based helpers for statements over thousands of rows (a bank's file of 10,000 lines):
filters over many ids, and UPDATEs of many rows with a value each, in a statement per chunk
rather than a statement per row. They run in the caller's transaction; nothing commits."""
from __future__ import annotations

import zlib

from sqlalchemy import ARRAY, BigInteger, any_, bindparam, text

from ..extensions import db
from .transactions import driver_cursor

CHUNK = 1000


def chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def in_sets(column, values, type_=BigInteger, size: int = CHUNK) -> list:
    """WHERE clauses that together cover `values`: on PostgreSQL one `column = ANY(:array)`
    (one statement, one parameter however many values), on SQLite `column IN (...)` of at
    most `size` values each (its limit on parameters)."""
    values = list(values)
    if not values:
        return []
    if _postgresql():
        return [column == any_(bindparam(None, values, type_=ARRAY(type_)))]
    return [column.in_(part) for part in chunks(values, size)]


def id_sets(column, ids, size: int = CHUNK) -> list:
    """`in_sets` of integer ids."""
    return in_sets(column, ids, BigInteger, size)


def stage(name: str, columns: list[tuple[str, str]], rows: list[tuple]) -> str:
    """PostgreSQL: the rows in a temporary table (named from `name` and the columns) of these
    (column, SQL type) columns,
    written with COPY (the driver's C path: no placeholders to parse, no arrays to quote);
    the table is made once per connection and emptied at commit. Returns its name."""
    connection = db.session.connection()
    spec = ", ".join(f"{column} {kind}" for column, kind in columns)
    name = f"{name[:48]}_{zlib.crc32(spec.encode()):08x}"  # another shape, another table
    connection.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({spec}) "
                            "ON COMMIT DELETE ROWS"))
    connection.execute(text(f"DELETE FROM {name}"))
    with driver_cursor(connection) as cursor:
        names = ", ".join(column for column, _kind in columns)
        with cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return name


def update_rows(table: str, columns: list[tuple[str, str]], rows: list[tuple], *,
                set_sql: str, where_sql: str = "", params: dict | None = None,
                returning: str | None = None, size: int = CHUNK) -> list:
    """UPDATE `table` from a set of rows: `columns` names the set's columns with their SQL
    types (the first is matched to the table's `id`), `set_sql` and `where_sql` use them as
    `v.<name>` (the table by its name), `params` are the statement's other values.
    PostgreSQL: the rows COPYed into a temporary table, then one UPDATE ... FROM it; SQLite:
    an UPDATE ... FROM (VALUES ...) of `size` rows a statement. Returns the rows of
    `returning` ("table.id")."""
    out: list = []
    if not rows:
        return out
    names = [name for name, _kind in columns]
    tail = f" AND {where_sql}" if where_sql else ""
    back = f" RETURNING {returning}" if returning else ""
    if _postgresql():
        source = stage(f"minga_set_{table}", columns, rows)
        result = db.session.execute(text(
            f"UPDATE {table} SET {set_sql} FROM {source} AS v WHERE {table}.id = v.{names[0]}"
            f"{tail}{back}"), dict(params or {}))
        return result.all() if returning else out
    for part in chunks(rows, size):
        values = dict(params or {})
        tuples = ", ".join("(" + ", ".join(f":r{i}_{n}" for n in range(len(columns))) + ")"
                           for i in range(len(part)))
        aliases = ", ".join(f"column{n + 1} AS {name}" for n, name in enumerate(names))
        for i, row in enumerate(part):
            for n, value in enumerate(row):
                values[f"r{i}_{n}"] = value
        result = db.session.execute(text(
            f"UPDATE {table} SET {set_sql} FROM (SELECT {aliases} FROM (VALUES {tuples})) AS v "
            f"WHERE {table}.id = v.{names[0]}{tail}{back}"), values)
        if returning:
            out.extend(result.all())
    return out
