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
