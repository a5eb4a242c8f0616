"""The bank statement: lines (date, description, amount, reference) matched to Stripe payouts
(the payout id in the reference or description; the transfer Dr bank Cr stripe_clearing
is posted then) and to ledger entries that moved the bank account with the same external
reference (farmer payout lines, operating costs). Anything else is shown unmatched.

Services flush, never commit."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from flask_babel import gettext as _
from sqlalchemy import bindparam, exists, func, or_, select, text, update

from ..audit import services as audit
from ..common import csvfiles
from ..common.dates import parse_date
from ..common.labels import label
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.money import parse_major
from ..common.models import utcnow
from ..common.quantities import MACHINE_NUMBER
from ..common.transactions import driver_cursor
from ..extensions import db
from ..ledger import bulk
from ..ledger import queries as ledger_queries
from ..ledger import services as ledger
from .models import BankStatementLine, StripeBalanceTxn
from .stripe_reconciliation import (CHUNK, CSV_LOCALE, MAX_ERRORS, SUGGEST_WINDOW, _header_map,
                                    _insert_ignore, _note, _text_stream, reconcile,
                                    tell_differences)

PAYOUT_ID = re.compile(r"\b(?:po|txn)_[A-Za-z0-9]+")


# ---------------------------------------------------------------- bank statement

BANK_COLUMNS = {
    "date": ("date", "fecha", "booking date", "booked_on"),
    "description": ("description", "descripcion", "descripción", "concepto"),
    "amount": ("amount", "monto", "valor", "importe"),
    "reference": ("reference", "referencia", "ref"),
}


def _bank_rows(coop, stream, errors: list, user_id):
    with _text_stream(stream) as text:
        yield from _bank_reader(coop, *csvfiles.read(text), errors, user_id)


def _bank_reader(coop, fieldnames, reader, errors: list, user_id):
    cols = _header_map(fieldnames, BANK_COLUMNS, ("date", "amount"))
    seen: dict[tuple, int] = {}
    now = utcnow()
    for number, raw in reader:
        try:
            csvfiles.check_row(raw)
            booked = parse_date(raw.get(cols["date"]))
            typed = (raw.get(cols["amount"]) or "").strip()
            # Most banks write "-1234.50": machine format, read without Babel (4x faster over
            # 20,000 lines); anything else ("1,234.50") strictly in the CSV's locale.
            amount = parse_major(typed, coop.currency) if MACHINE_NUMBER.fullmatch(typed) \
                else parse_major(typed, coop.currency, locale=CSV_LOCALE)
            if amount == 0:
                raise ValueError("amount is zero")
            description = (raw.get(cols["description"]) or "").strip()[:255] \
                if "description" in cols else ""
            reference = (raw.get(cols["reference"]) or "").strip()[:255] \
                if "reference" in cols else ""
        except (ValueError, TypeError) as exc:
            if len(errors) < MAX_ERRORS:
                errors.append(_("Line %(n)d: %(problem)s", n=number, problem=str(exc)))
                continue
            break
        ident = (booked.isoformat(), amount, reference, description)
        seen[ident] = seen.get(ident, 0) + 1  # the same line twice in one statement is two
        key = hashlib.sha256(json.dumps([*ident, seen[ident]]).encode()).hexdigest()
        yield {"coop_id": coop.id, "line_key": key, "booked_on": booked,
               "description": description, "amount_minor": amount, "reference": reference,
               "status": "unmatched", "note": "", "imported_by_id": user_id,
               "imported_at": now}


def import_bank_statement(coop, user, stream) -> dict:
    """Store the statement's lines (all or nothing; a line imported before is kept once),
    then match the unmatched lines of the file's period (its first to its last day: the
    file's own lines and any left unmatched there by an earlier, overlapping statement).
    Stored a thousand lines a statement; matched in a fixed number of statements."""
    errors: list[str] = []
    count = lambda: db.session.scalar(select(func.count()).select_from(BankStatementLine)  # noqa: E731
                                      .where(BankStatementLine.coop_id == coop.id))
    before = count()
    chunk = []
    first = last = None
    for row in _bank_rows(coop, stream, errors, getattr(user, "id", None)):
        booked = row["booked_on"]
        first = booked if first is None or booked < first else first
        last = booked if last is None or booked > last else last
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _insert_ignore(BankStatementLine, chunk, ["coop_id", "line_key"])
            chunk = []
    if errors:
        raise ValidationFailed(_("The file has errors; nothing was imported."),
                               code="bad_file", fields={"file": errors})
    if chunk:
        _insert_ignore(BankStatementLine, chunk, ["coop_id", "line_key"])
    added = count() - before
    if first is None:
        summary = {"matched": 0, "mismatch": 0, "unmatched": _unmatched_count(coop)}
    else:
        summary = match_bank(coop, user, first, last)
    summary["added"] = added
    audit.record(coop.id, user, "treasury.bank_import", "coop", coop.id, {}, summary)
    return summary


def _payout_entry(txn: StripeBalanceTxn, line_id: int, booked_on: date):
    """The payout reached the bank: Dr bank Cr stripe_clearing, once per payout id."""
    ref = txn.source or txn.txn_id
    amount = -txn.amount_minor
    return bulk.NewEntry(key=f"stripe_payout:{ref}", kind="stripe_payout", external_ref=ref,
                         source=("bank_line", line_id),
                         memo=f"Stripe payout {ref} to the bank",
                         effective_on=datetime.combine(booked_on, time(12), tzinfo=timezone.utc),
                         lines=[ledger.debit("bank", amount),
                                ledger.credit("stripe_clearing", amount)])


def _post_stripe_payout(coop, user, txn: StripeBalanceTxn, line: BankStatementLine):
    """One payout posted for one line (the treasurer confirming a suggestion)."""
    new = _payout_entry(txn, line.id, line.booked_on)
    entry = ledger.post(coop, key=new.key, kind=new.kind, external_ref=new.external_ref,
                        user=user, source=new.source, memo=new.memo,
                        effective_on=new.effective_on, lines=new.lines)
    audit.record(coop.id, user, *_payout_event(txn.txn_id, line.id, line.status, entry.id,
                                               -txn.amount_minor))
    return entry


def _payout_event(txn_id: str, line_id: int, status: str, entry_id: int, amount: int):
    return ("treasury.stripe_payout_posted", "stripe_txn", txn_id,
            {"bank_line": line_id, "status": status},
            {"entry": entry_id, "amount_minor": amount, "status": "matched"})


def _matched_line_for_entry(entry_id):
    return select(BankStatementLine.id).where(BankStatementLine.matched_entry_id == entry_id)


def _not_on_a_line(entry_id, _external_ref):
    """For the ledger's queries: leave out entries a statement line is matched to."""
    return ~exists(_matched_line_for_entry(entry_id))


def _unmatched_count(coop) -> int:
    return db.session.scalar(select(func.count()).select_from(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id, BankStatementLine.status == "unmatched"))


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _payouts_named(coop, refs: set) -> tuple[dict, dict[str, set]]:
    """The coop's Stripe payouts whose payout id or balance transaction id is one of `refs`:
    (txn pk -> txn, ref -> {txn pks}). One query per thousand references."""
    txns: dict[int, StripeBalanceTxn] = {}
    by_ref: dict[str, set] = {}
    for part in _chunks(sorted(refs)):
        for txn in db.session.scalars(select(StripeBalanceTxn).where(
                StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.type == "payout",
                or_(StripeBalanceTxn.source.in_(part), StripeBalanceTxn.txn_id.in_(part)))):
            txns[txn.id] = txn
            for ref in (txn.source, txn.txn_id):
                if ref in refs:
                    by_ref.setdefault(ref, set()).add(txn.id)
    return txns, by_ref


def _payouts_on_a_line(txn_pks) -> set:
    taken: set = set()
    for part in _chunks(sorted(txn_pks)):
        taken.update(db.session.scalars(select(BankStatementLine.stripe_txn_id).where(
            BankStatementLine.stripe_txn_id.in_(part))))
    return taken


def match_bank(coop, user=None, start: date | None = None, end: date | None = None) -> dict:
    """Match the unmatched statement lines booked in [start, end] (every one without dates)
    on ids: a Stripe payout id in the reference or the description (money in), or a ledger
    entry through the bank with that external reference (farmer payout lines, costs).
    Amounts must agree, or the line is marked mismatch. Set-based: the lines, the payouts
    they name and the ledger entries they name are each read in one query per thousand,
    paired here in the lines' order, and written back in bulk; the payouts reaching the bank
    are posted in bulk too. No line outside the period is read or changed."""
    where = [BankStatementLine.coop_id == coop.id, BankStatementLine.status == "unmatched"]
    if start is not None:
        where.append(BankStatementLine.booked_on >= start)
    if end is not None:
        where.append(BankStatementLine.booked_on <= end)
    lines = db.session.execute(
        select(BankStatementLine.id, BankStatementLine.booked_on,
               BankStatementLine.amount_minor, BankStatementLine.reference,
               BankStatementLine.description, BankStatementLine.note).where(*where)
        .order_by(BankStatementLine.id)).all()
    refs_of: dict[int, set] = {}
    for line in lines:
        if line.amount_minor > 0:
            refs = {line.reference} | set(PAYOUT_ID.findall(line.description))
            refs.discard("")
            if refs:
                refs_of[line.id] = refs
    txns, by_ref = _payouts_named(coop, set().union(*refs_of.values())) if refs_of \
        else ({}, {})
    taken = _payouts_on_a_line(txns)
    updates: dict[int, dict] = {}  # line id -> new values
    payouts: list[tuple] = []      # (line, txn) to post
    for line in lines:
        pks = set().union(*(by_ref.get(r, ()) for r in refs_of.get(line.id, ())))
        if not pks:
            continue
        txn = txns[min(pks)]
        if txn.id in taken:
            updates[line.id] = {"status": "mismatch",
                                "note": "payout already matched to another line"}
        elif -txn.amount_minor != line.amount_minor:
            updates[line.id] = {"status": "mismatch",
                                "note": f"Stripe payout {txn.source} is {-txn.amount_minor}"}
        else:
            taken.add(txn.id)
            payouts.append((line, txn))
    bank_id = ledger_queries.account_id(coop, "bank")
    paid = {line.id for line, _t in payouts}
    by_ledger = [line for line in lines
                 if line.reference and line.id not in updates and line.id not in paid]
    if bank_id is not None and by_ledger:
        candidates: dict[str, list] = {}
        for entry_id, ref, amount in ledger_queries.by_refs_through(
                coop, {line.reference for line in by_ledger}, bank_id, unless=_not_on_a_line):
            candidates.setdefault(ref, []).append((entry_id, amount))
        for line in by_ledger:
            found = candidates.get(line.reference)
            if not found:
                continue
            entry_id, amount = found.pop(0)  # the oldest not yet on a line
            if amount == line.amount_minor:
                updates[line.id] = {"status": "matched", "matched_entry_id": entry_id}
            else:
                updates[line.id] = {"status": "mismatch", "matched_entry_id": entry_id,
                                    "note": f"ledger moved {amount}"}
    if payouts:
        entries = bulk.post_many(coop, [_payout_entry(txn, line.id, line.booked_on)
                                        for line, txn in payouts], user=user)
        events = []
        for line, txn in payouts:
            entry_id = entries[f"stripe_payout:{txn.source or txn.txn_id}"]
            updates[line.id] = {"status": "matched", "matched_entry_id": entry_id,
                                "stripe_txn_id": txn.id}
            events.append(_payout_event(txn.txn_id, line.id, "unmatched", entry_id,
                                        -txn.amount_minor))
        audit.record_many(coop.id, user, events)
    _write_back(updates, {line.id: line.note for line in lines})
    if payouts:
        # A payout posted above now matches its balance transaction.
        reconcile(coop, user)
    counts = {"matched": 0, "mismatch": 0}
    for values in updates.values():
        counts[values["status"]] += 1
    unmatched = _unmatched_count(coop)
    tell_differences(coop, counts["mismatch"] + unmatched)
    return {**counts, "unmatched": unmatched}


def _write_back(updates: dict[int, dict], notes: dict[int, str]) -> None:
    """Each line's new status, note, ledger entry and Stripe row, not one statement per line:
    PostgreSQL COPYs the changes into a temporary table and updates from it in one
    statement; SQLite (in-process) runs one executemany."""
    if not updates:
        return
    rows = [(line_id, change["status"], change.get("note", notes[line_id]),
             change.get("matched_entry_id"), change.get("stripe_txn_id"))
            for line_id, change in sorted(updates.items())]
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text(
            "CREATE TEMPORARY TABLE IF NOT EXISTS bank_line_changes (id bigint PRIMARY KEY, "
            "status varchar(12) NOT NULL, note varchar(255) NOT NULL, entry_id bigint, "
            "txn_id bigint) ON COMMIT DELETE ROWS"))
        connection.execute(text("DELETE FROM bank_line_changes"))
        with driver_cursor(connection) as cursor:
            with cursor.copy("COPY bank_line_changes (id, status, note, entry_id, txn_id) "
                             "FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        connection.execute(text(
            "UPDATE bank_statement_lines SET status = c.status, note = c.note, "
            "matched_entry_id = c.entry_id, stripe_txn_id = c.txn_id "
            "FROM bank_line_changes c WHERE bank_statement_lines.id = c.id"))
    else:
        table = BankStatementLine.__table__
        db.session.execute(
            update(table).where(table.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status"), note=bindparam("b_note"),
                    matched_entry_id=bindparam("b_entry"), stripe_txn_id=bindparam("b_txn")),
            [{"b_id": r[0], "b_status": r[1], "b_note": r[2], "b_entry": r[3], "b_txn": r[4]}
             for r in rows])
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, BankStatementLine) and obj.id in updates:
            db.session.expire(obj)


@dataclass
class BankSuggestion:
    line: BankStatementLine
    kind: str  # "stripe_payout" or "entry"
    target_id: int
    label: str


def bank_suggestions(coop, lines: list[BankStatementLine]) -> list[BankSuggestion]:
    """Of these lines (a page of them), the unmatched ones with a candidate of the same
    amount within 3 days (no id in common): a Stripe payout not yet at the bank (money in),
    or a bank entry not yet on a line, each candidate suggested once. Three queries whatever
    the number of lines: the candidates are read once, by amount and dates, and paired."""
    out = []
    lines = sorted((line for line in lines if line.status == "unmatched"
                    and line.coop_id == coop.id), key=lambda ln: (ln.booked_on, ln.id))
    if not lines:
        return out
    bank_id = ledger_queries.account_id(coop, "bank")
    window = SUGGEST_WINDOW + timedelta(hours=12)
    noon = {line.id: datetime.combine(line.booked_on, time(12), tzinfo=timezone.utc)
            for line in lines}
    lo, hi = min(noon.values()) - window, max(noon.values()) + window
    money_in = sorted({line.amount_minor for line in lines if line.amount_minor > 0})
    payouts: dict[int, list] = {}
    if money_in:
        for txn in db.session.scalars(select(StripeBalanceTxn).where(
                StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.type == "payout",
                StripeBalanceTxn.amount_minor.in_([-a for a in money_in]),
                ~exists(select(BankStatementLine.id).where(
                    BankStatementLine.stripe_txn_id == StripeBalanceTxn.id)))
                .order_by(StripeBalanceTxn.id)):
            payouts.setdefault(-txn.amount_minor, []).append(txn)
    entries: dict[int, list] = {}
    if bank_id is not None:
        amounts = sorted({line.amount_minor for line in lines})
        for entry_id, moment, kind, amount in ledger_queries.through_between(
                coop, bank_id, lo, hi, amounts, unless=_not_on_a_line):
            entries.setdefault(int(amount), []).append((entry_id, moment, kind))
    used: set = set()
    for line in lines:
        day = noon[line.id]
        if line.amount_minor > 0:
            txn = next((t for t in payouts.get(line.amount_minor, [])
                        if abs((t.available_on or t.created) - day) <= window
                        and ("p", t.id) not in used), None)
            if txn is not None:
                used.add(("p", txn.id))
                out.append(BankSuggestion(line, "stripe_payout", txn.id, _(
                    "Stripe payout %(ref)s", ref=txn.source or txn.txn_id)))
                continue
        for entry_id, moment, kind in sorted(entries.get(line.amount_minor, []),
                                             key=lambda r: abs(r[1] - day)):
            if abs(moment - day) <= window and ("e", entry_id) not in used:
                used.add(("e", entry_id))
                out.append(BankSuggestion(line, "entry", entry_id,
                                          f"{label(kind, 'entry_kind')} #{entry_id}"))
                break
    return out


def get_bank_line(coop, line_id: int) -> BankStatementLine:
    line = db.session.get(BankStatementLine, line_id)
    if line is None or line.coop_id != coop.id:
        raise NotFound(_("No such statement line."))
    return line


def confirm_bank_match(coop, user, line_id: int, kind: str, target_id: int) -> BankStatementLine:
    """The treasurer confirms a suggested match. Only a current suggestion can be confirmed."""
    line = get_bank_line(coop, line_id)
    if line.status != "unmatched":
        raise Conflict(_("This line was already matched."), code="already_matched")
    suggestion = next((s for s in bank_suggestions(coop, [line]) if s.line.id == line.id
                       and s.kind == kind and s.target_id == target_id), None)
    if suggestion is None:
        raise Conflict(_("That is not a suggested match for this line."), code="no_suggestion")
    before = {"status": line.status}
    if kind == "stripe_payout":
        txn = db.session.get(StripeBalanceTxn, target_id)
        entry = _post_stripe_payout(coop, user, txn, line)
        line.matched_entry_id, line.stripe_txn_id = entry.id, txn.id
    else:
        line.matched_entry_id = target_id
    line.status = "matched"
    line.note = "confirmed by the treasurer"
    db.session.flush()
    if kind == "stripe_payout":
        reconcile(coop, user)
    audit.record(coop.id, user, "treasury.bank_match_confirmed", "bank_line", line.id, before,
                 {"status": "matched", "kind": kind, "target": target_id,
                  "amount_minor": line.amount_minor})
    return line


def explain_bank_line(coop, user, line_id: int, note) -> BankStatementLine:
    """A statement line with nothing in the ledger to match (or another amount) marked as
    explained, with the treasurer's note; audited."""
    line = get_bank_line(coop, line_id)
    note = _note(note)
    if line.status not in ("unmatched", "mismatch"):
        raise Conflict(_("This line is not a difference."), code="not_a_difference")
    before = {"status": line.status, "note": line.note}
    line.status, line.note = "explained", note
    db.session.flush()
    audit.record(coop.id, user, "treasury.bank_line_explained", "bank_line", line.id, before,
                 {"status": "explained", "note": note, "amount_minor": line.amount_minor})
    return line


def post_bank_fee(coop, user, line_id: int) -> BankStatementLine:
    """A bank charge on the statement the ledger lacks (money out, nothing matched): posted
    as an operating cost from the bank (Dr operating_costs, Cr bank) and matched to it."""
    line = get_bank_line(coop, line_id)
    if line.status != "unmatched" or line.amount_minor >= 0 or line.matched_entry_id:
        raise Conflict(_("Only money out of the bank with nothing matched can be posted as "
                         "a bank fee."), code="not_a_fee")
    amount = -line.amount_minor
    entry = ledger.post(coop, key=f"bank_fee:{line.id}", kind="operating_cost", user=user,
                        memo=(line.description or f"bank fee, statement line {line.id}")[:255],
                        external_ref=line.reference or None,
                        effective_on=datetime.combine(line.booked_on, time(12),
                                                      tzinfo=timezone.utc),
                        lines=[ledger.debit("operating_costs", amount),
                               ledger.credit("bank", amount)])
    before = {"status": line.status}
    line.status, line.matched_entry_id = "matched", entry.id
    line.note = "bank fee posted"
    db.session.flush()
    audit.record(coop.id, user, "treasury.bank_fee_posted", "bank_line", line.id, before,
                 {"status": "matched", "matched_entry_id": entry.id, "amount_minor": amount})
    return line
