"""Reading an uploaded CSV file: every import goes through `dict_rows`, which numbers the rows
as a spreadsheet does (the header is line 1) and turns what the csv module refuses (a field
over its limit of 128 KB, a broken quote) into a refusal of the file that names the line;
`check_row` refuses a row holding NUL or another control character, naming the column."""
from __future__ import annotations

import csv

from flask_babel import gettext as _

from .errors import ValidationFailed
from .forms import has_control

FIELD_LIMIT = csv.field_size_limit()  # 131,072 characters: no column of ours is near it


def read(text_stream, **kwargs):
    """(the header's names, an iterator of (line number, row dict)) of a CSV text stream;
    what the csv module refuses is a ValidationFailed naming the line, the header's or a
    row's. Rows are read one at a time, never the whole file at once."""
    reader = csv.DictReader(text_stream, **kwargs)
    try:
        fieldnames = list(reader.fieldnames or [])
    except csv.Error as exc:
        raise _refused(1, exc)
    if has_control(fieldnames):
        raise ValidationFailed(
            _("The file has errors; nothing was imported."), code="bad_file",
            fields={"file": [_("Line %(n)d: %(problem)s", n=1, problem=_(
                "a control character (such as NUL) in the header."))]})
    return fieldnames, _rows(reader)


def _rows(reader):
    number = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _refused(number + 1, exc)
        number = reader.line_num
        yield number, row


def _refused(number: int, exc: csv.Error) -> ValidationFailed:
    if "field larger than field limit" in str(exc):
        problem = _("a field is longer than %(n)d characters.", n=FIELD_LIMIT)
    else:
        problem = _("the line is not valid CSV (%(why)s).", why=str(exc)[:80])
    return ValidationFailed(_("The file has errors; nothing was imported."), code="bad_file",
                            fields={"file": [_("Line %(n)d: %(problem)s", n=number,
                                               problem=problem)]})


def check_row(row: dict) -> dict:
    """The row, or ValueError naming the first column that holds a control character."""
    for name, value in row.items():
        values = value if isinstance(value, list) else [value]
        if has_control([v for v in values if isinstance(v, str)]):
            raise ValueError(_("a control character (such as NUL) in column %(col)s.",
                               col=str(name or "?")[:40]))
    return row
