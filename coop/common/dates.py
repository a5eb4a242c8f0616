"""Dates as people type them (a form's date field, a CSV's date column): YYYY-MM-DD in ASCII
digits, between 2000-01-01 and the last day of next year. Anything else is refused with a
message that says so: a typo such as 1026 or 20260 would otherwise be stored (or reach the
database, which refuses what Python's dates cannot even hold)."""
from __future__ import annotations

import re
from datetime import date, datetime

from flask_babel import gettext as _

from .models import utcnow

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EARLIEST = date(2000, 1, 1)


class DateInputError(ValueError):
    """Not a date Minga takes; `message` says what to write."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def latest(today: date | None = None) -> date:
    """The last day a typed date may be: 31 December of next year."""
    today = today or utcnow().date()
    return date(today.year + 1, 12, 31)


def check_range(day: date, today: date | None = None) -> date:
    """`day` if it lies between EARLIEST and `latest()`, else DateInputError."""
    last = latest(today)
    if not EARLIEST <= day <= last:
        raise DateInputError(_("Give a date between %(first)s and %(last)s.",
                               first=EARLIEST.isoformat(), last=last.isoformat()))
    return day


def parse_date(value, today: date | None = None, *, bounded: bool = True) -> date:
    """A typed date, YYYY-MM-DD (a date object is only range-checked). `bounded=False` for a
    caller that checks a narrower range itself and says it (a harvest: at most a year ago,
    not after today)."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return check_range(value, today) if bounded else value
    text = str(value if value is not None else "").strip()
    if not ISO_DATE.fullmatch(text):
        raise DateInputError(_("Give the date as YYYY-MM-DD, like 2026-03-31."))
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise DateInputError(_("Give the date as YYYY-MM-DD, like 2026-03-31."))
    return check_range(day, today) if bounded else day


def check_moment(moment: datetime, today: date | None = None) -> datetime:
    """A timestamp read from a file, its day in the same range."""
    check_range(moment.date(), today)
    return moment
