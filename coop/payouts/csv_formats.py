"""The files exchanged with the bank: bulk-payment exports per rail and the confirmation
file it sends back (`line_id,status,reference`)."""
from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

from flask_babel import gettext as _
from flask_babel import ngettext

from ..common.ids import is_id
from ..common.errors import ValidationFailed
from ..common.money import to_decimal
from ..common.statuses import PayoutLineStatus

if TYPE_CHECKING:
    from .models import PayoutLine

MAX_CONFIRMATION_BYTES = 5 * 1024 * 1024
MAX_CONFIRMATION_ROWS = 100_000
MAX_REPORTED_ERRORS = 50
CONFIRMATION_HEADER = ["line_id", "status", "reference"]


def _major(minor: int, currency: str) -> str:
    return format(to_decimal(minor, currency), "f")


def _safe_text(value: str) -> str:
    """Free text that a spreadsheet would run as a formula is quoted with an apostrophe."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def reference(line: PayoutLine) -> str:
    return f"MINGA-{line.batch_id}-{line.id}"


def _spei_kind(account: str) -> str:
    return {18: "clabe", 16: "debit_card", 10: "phone"}.get(len(account), "")


EXPORT_COLUMNS = {
    "bank": ["line_id", "name", "national_id", "bank", "account_number", "amount", "currency",
             "reference"],
    "breb": ["line_id", "name", "national_id", "breb_key", "amount", "currency", "reference"],
    "nequi": ["line_id", "name", "national_id", "phone", "amount", "currency", "reference"],
    "daviplata": ["line_id", "name", "national_id", "phone", "amount", "currency",
                  "reference"],
    "yape": ["line_id", "name", "national_id", "phone", "amount", "currency", "reference"],
    "plin": ["line_id", "name", "national_id", "phone", "amount", "currency", "reference"],
    "spei": ["line_id", "name", "national_id", "account_type", "account", "bank", "amount",
             "currency", "reference"],
    "cash": ["line_id", "name", "national_id", "amount", "currency", "reference"],
    None: ["line_id", "rail", "name", "national_id", "account", "bank", "amount", "currency",
           "reference"],
}


def export_row(line: PayoutLine) -> dict:
    return {"line_id": line.id, "rail": line.rail, "name": _safe_text(line.payee_name),
            "national_id": line.national_id, "bank": _safe_text(line.bank_name),
            "account_number": line.account, "breb_key": line.account, "phone": line.account,
            "account_type": _spei_kind(line.account), "account": line.account,
            "amount": _major(line.amount_minor, line.currency), "currency": line.currency,
            "reference": reference(line)}


def refuse(errors: list[str]):
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    if more:
        shown.append(ngettext("... and %(num)d more problem.", "... and %(num)d more problems.",
                              more))
    raise ValidationFailed(_("The confirmation file was refused; nothing was recorded. "
                             "Fix these rows and import it again."),
                           code="invalid_confirmation_file", fields={"file": shown})


_LINE_ID = re.compile(r"[0-9]{1,10}")
_STATUSES = frozenset({PayoutLineStatus.PAID.value, PayoutLineStatus.FAILED.value})


def parse_confirmations(data: bytes | str) -> list[tuple[int, int, str, str]]:
    """Rows of a bank confirmation file `line_id,status,reference` as (row number, line id,
    status, reference). Refuses the whole file (ValidationFailed listing every bad row) for a
    wrong header, a line id that is not a whole number, a status other than paid/failed, a
    paid line without a reference, a line twice, a file over 5 MB or 100,000 rows, or text
    that is not UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_CONFIRMATION_BYTES:
        refuse([_("The file is larger than %(mb)d MB; split it.",
                   mb=MAX_CONFIRMATION_BYTES // (1024 * 1024))])
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        refuse([_("The file is not UTF-8 text; export it from the bank as CSV (UTF-8).")])
    if "\x00" in content:
        refuse([_("Row %(r)d: a NUL character; the file is not a text CSV file.",
                   r=content[:content.index("\x00")].count("\n") + 1)])
    reader = csv.reader(io.StringIO(content, newline=""))
    errors: list[str] = []
    try:
        header = next(reader, None)
    except csv.Error:
        header = None
    if header is None or [h.strip().lower() for h in header] != CONFIRMATION_HEADER:
        refuse([_("Row 1: the header must be exactly: line_id,status,reference.")])
    rows = []
    seen: dict[int, int] = {}
    try:
        for cells in reader:
            number = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(rows) >= MAX_CONFIRMATION_ROWS:
                refuse([_("The file has more than %(n)d rows; split it.",
                           n=MAX_CONFIRMATION_ROWS)])
            if len(cells) != 3:
                errors.append(_("Row %(r)d: expected 3 columns (line_id,status,reference), "
                                "found %(n)d.", r=number, n=len(cells)))
                continue
            raw_id, status, ref = cells[0].strip(), cells[1].strip().lower(), cells[2].strip()
            if not _LINE_ID.fullmatch(raw_id) or not is_id(int(raw_id)):
                errors.append(_("Row %(r)d: line_id %(v)s is not a line number.", r=number,
                                v=repr(raw_id[:40])))
                continue
            line_id = int(raw_id)
            if status not in _STATUSES:
                errors.append(_("Row %(r)d: status must be paid or failed, not %(v)s.",
                                r=number, v=repr(status[:40])))
                continue
            if len(ref) > 255 or not ref.isprintable():
                errors.append(_("Row %(r)d: the reference must be at most 255 printable "
                                "characters.", r=number))
                continue
            if status == "paid" and not ref:
                errors.append(_("Row %(r)d: a paid line needs the bank's reference.",
                                r=number))
                continue
            if line_id in seen:
                errors.append(_("Row %(r)d: line %(id)d is already on row %(first)d.",
                                r=number, id=line_id, first=seen[line_id]))
                continue
            seen[line_id] = number
            rows.append((number, line_id, status, ref))
    except csv.Error as exc:
        errors.append(_("Row %(r)d: the CSV cannot be read (%(e)s).", r=reader.line_num,
                        e=str(exc)))
    if errors:
        refuse(errors)
    if not rows:
        refuse([_("The file has no lines to confirm.")])
    return rows




def write_export(lines, rail: str | None) -> tuple[str, int]:
    """The CSV text of `lines` on `rail` (all of them with a rail column when None), and how
    many rows it holds."""
    columns = EXPORT_COLUMNS[rail]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore",
                            lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for line in lines:
        if rail is None or line.rail == rail:
            writer.writerow(export_row(line))
            count += 1
    return out.getvalue(), count
