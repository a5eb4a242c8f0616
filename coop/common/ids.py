"""Ids in URLs and query strings: only what the database can hold.

Every table's id is an INTEGER (PostgreSQL: 1 .. 2,147,483,647). A path such as
`/pools/2147483648` would reach the database and fail there ("integer out of range"), so the
app's `int` URL converter (registered in create_app for every `<int:...>` route) matches only
1 to 10 ASCII digits within that range: anything else is no route, a 404, before any view
runs. Query-string ids (`?before=`, `?line=`) go through `query_id`, which reads the same
range and makes anything else None (werkzeug's `type=` turns its ValueError into the
default)."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2_147_483_647  # PostgreSQL INTEGER, the type of every id column


class DatabaseIdConverter(IntegerConverter):
    """`<int:x>`: 1 .. MAX_ID in ASCII digits, no leading zero. The range is in the regex
    itself, not only in `max`: a path that does not match any rule is a 404 whatever the
    method, while one refused by `to_python` after another method's rule matched would be a
    405. (werkzeug's own `\\d+` also takes other scripts' digits, and any length.)"""

    regex = ("(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}"
             "|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}"
             "|21474836[0-3][0-9]|214748364[0-7])")

    def __init__(self, map, fixed_digits=0, min=1, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=False)


def query_id(text) -> int:
    """An id from a query string: ASCII digits, 1 .. MAX_ID; ValueError otherwise."""
    text = str(text if text is not None else "").strip()
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        raise ValueError("not an id")
    value = int(text)
    if not 1 <= value <= MAX_ID:
        raise ValueError("not an id")
    return value


def is_id(value) -> bool:
    """An int the database can hold as an id (for ids that arrive as data, not in a path)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID
