"""Simple paging for long lists: one query for the page's rows, one for the count, whatever
the number of rows (no row is loaded to be counted)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from ..extensions import db

PER_PAGE = 50


@dataclass
class Page:
    items: list
    total: int
    number: int
    per_page: int = PER_PAGE
    extra: dict = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_number(value) -> int:
    """The page asked for in a query string: a positive integer, 1 for anything else."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if 1 <= number <= 100_000 else 1


def paginate(stmt, number: int, per_page: int = PER_PAGE, *, scalars: bool = True) -> Page:
    """The page `number` of a SELECT (already ordered), with the count of all its rows."""
    total = db.session.scalar(select(func.count()).select_from(
        stmt.order_by(None).subquery())) or 0
    pages = max(1, -(-total // per_page))
    number = min(max(1, number), pages)
    query = stmt.limit(per_page).offset((number - 1) * per_page)
    result = db.session.scalars(query) if scalars else db.session.execute(query)
    return Page(items=list(result.unique() if scalars else result), total=total,
                number=number, per_page=per_page)


# --- Keyset pagination ---------------------------------------------------------------------
# A page is the `limit` rows after a key (the ordered columns' values of the last row shown),
# fetched with limit+1 rows (the extra one tells there is more): the database walks an index
# from the key, so page 1,000 costs what page 1 costs, and nothing counts every row. The key
# travels as an opaque, URL-safe cursor (base64 of a JSON list), checked on the way back in.

import base64
import binascii
import json
from datetime import date as _date, datetime as _datetime
from typing import Any, Callable, Sequence

from sqlalchemy import Date, DateTime, Integer, String, and_, literal, or_, tuple_

MAX_CURSOR = 512


class BadCursor(ValueError):
    """A cursor that no page of this list could have made."""


@dataclass
class KeysetPage:
    items: list
    next_cursor: str | None
    has_more: bool
    cursor: str | None = None          # the cursor this page was asked with (None: page 1)
    prev_cursor: str | None = None     # the previous page's cursor (None: it is page 1)
    limit: int = PER_PAGE
    total: int | None = None           # set by a caller that shows how many rows match

    @property
    def has_prev(self) -> bool:
        return self.cursor is not None

    @property
    def has_next(self) -> bool:
        return self.has_more


def _kind(column) -> str:
    kind = getattr(column, "type", None)
    kind = getattr(kind, "impl", kind)
    if isinstance(kind, DateTime):
        return "datetime"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Integer):
        return "int"
    if isinstance(kind, String):
        return "str"
    raise TypeError(f"keyset: cannot page on a column of type {kind!r}")


def _order(spec) -> tuple[Any, bool]:
    """(column, descending) from a column (ascending), `col.desc()`-like tuples
    ("desc", col) / (col, "desc")."""
    if isinstance(spec, tuple):
        a, b = spec
        if isinstance(a, str):
            a, b = b, a
        return a, b.lower() == "desc"
    return spec, False


def encode_key(values: Sequence) -> str:
    out = []
    for v in values:
        if isinstance(v, _datetime):
            out.append(v.isoformat())
        elif isinstance(v, _date):
            out.append(v.isoformat())
        else:
            out.append(v)
    raw = json.dumps(out, separators=(",", ":"), ensure_ascii=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(cursor: str, kinds: Sequence[str]) -> tuple:
    """The key in a cursor, typed as the ordered columns are; BadCursor for anything else."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR \
            or not cursor.isascii():
        raise BadCursor(cursor)
    try:
        raw = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4))
        values = json.loads(raw.decode("ascii"))
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise BadCursor(cursor) from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise BadCursor(cursor)
    typed = []
    for value, kind in zip(values, kinds):
        try:
            if kind == "int":
                if type(value) is not int or not -2**63 <= value < 2**63:
                    raise ValueError
                typed.append(value)
            elif kind == "str":
                if not isinstance(value, str) or len(value) > 300:
                    raise ValueError
                typed.append(value)
            elif kind == "date":
                typed.append(_date.fromisoformat(value))
            else:
                parsed = _datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise ValueError
                typed.append(parsed)
        except (TypeError, ValueError):
            raise BadCursor(cursor) from None
    return tuple(typed)


def _after(columns: list, descending: list[bool], key: tuple, forward: bool):
    """The rows strictly after `key` in the order (before it when not forward)."""
    def beyond(col, desc, value):
        return (col < value) if desc == forward else (col > value)
    if len(set(descending)) == 1 and len(columns) > 1:
        cols = tuple_(*columns)
        vals = tuple_(*[literal(v, type_=c.type) for c, v in zip(columns, key)])
        return (cols < vals) if descending[0] == forward else (cols > vals)
    clauses = []
    for i, (col, desc, value) in enumerate(zip(columns, descending, key)):
        equal = [c == v for c, v in zip(columns[:i], key[:i])]
        clauses.append(and_(*equal, beyond(col, desc, value)))
    return or_(*clauses)


def count(stmt) -> int:
    """How many rows a SELECT gives, in one query (for a page that shows a total: keep
    the statement on an index, e.g. one coop's rows)."""
    return db.session.scalar(select(func.count()).select_from(
        stmt.order_by(None).subquery())) or 0


def keyset(stmt, order: Sequence, cursor: str | None, limit: int = PER_PAGE, *,
           strict: bool = False, scalars: bool = True,
           key: Callable[[Any], Sequence] | None = None) -> KeysetPage:
    """The page of `stmt` (not yet ordered) after `cursor`, in `order` — columns, or
    (column, "desc") pairs, whose last one is unique (an id), so that rows with equal
    timestamps are neither repeated nor skipped between pages. One query for page 1, two for
    a later one (the second finds the previous page's cursor); never a count.

    A cursor this list could not have made raises BadCursor when `strict` (the API answers
    it), and is read as page 1 otherwise (a page never fails on a stale or edited link).
    `key(item)` gives a row's key values (default: the attributes named as the columns)."""
    specs = [_order(s) for s in order]
    columns = [c for c, _ in specs]
    descending = [d for _, d in specs]
    kinds = [_kind(c) for c in columns]
    limit = max(1, int(limit))
    if key is None:
        names = [c.key for c in columns]
        key = lambda item: tuple(getattr(item, n) for n in names)  # noqa: E731
    after = None
    if cursor:
        try:
            after = decode_key(cursor, kinds)
        except BadCursor:
            if strict:
                raise
            cursor = None

    def run(query):
        result = db.session.scalars(query) if scalars else db.session.execute(query)
        return list(result.unique() if scalars else result)

    forward_order = [c.desc() if d else c.asc() for c, d in specs]
    query = stmt.order_by(None).order_by(*forward_order)
    if after is not None:
        query = query.where(_after(columns, descending, after, True))
    rows = run(query.limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_key(key(rows[-1])) if more and rows else None
    prev_cursor = None
    if after is not None:
        backward_order = [c.asc() if d else c.desc() for c, d in specs]
        back = stmt.order_by(None).order_by(*backward_order).where(
            _after(columns, descending, after, False))
        # The key only: the rows themselves are not needed to link to the previous page.
        before = list(db.session.execute(
            back.with_only_columns(*columns, maintain_column_froms=True)
            .limit(limit)))
        # The previous page is the cursor's own row and the limit-1 before it; its cursor is
        # the row before those (none: the previous page is page 1).
        if len(before) == limit:
            prev_cursor = encode_key(tuple(before[limit - 1]))
    return KeysetPage(items=rows, next_cursor=next_cursor, has_more=more, cursor=cursor,
                      prev_cursor=prev_cursor, limit=limit)
