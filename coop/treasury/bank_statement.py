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
from sqlalchemy import exists, func, or_, select

from ..audit import services as audit
from ..common import csvfiles
from ..common.dates import parse_date
from ..common.labels import label
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.money import parse_major
from ..common.models import utcnow
from ..extensions import db
from ..ledger import queries as ledger_queries
from ..ledger import services as ledger
from .models import BankStatementLine, StripeBalanceTxn
from .stripe_reconciliation import (CHUNK, CSV_LOCALE, MAX_ERRORS, SUGGEST_WINDOW, _header_map,
                                    _insert_ignore, _note, _text_stream, reconcile)

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
            amount = parse_major(raw.get(cols["amount"]), coop.currency, locale=CSV_LOCALE)
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
    then match."""
    errors: list[str] = []
    count = lambda: db.session.scalar(select(func.count()).select_from(BankStatementLine)  # noqa: E731
                                      .where(BankStatementLine.coop_id == coop.id))
    before = count()
    chunk = []
    for row in _bank_rows(coop, stream, errors, getattr(user, "id", None)):
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
    summary = match_bank(coop, user)
    summary["added"] = added
    audit.record(coop.id, user, "treasury.bank_import", "coop", coop.id, {}, summary)
    return summary


def _bank_sum(coop, entry_id: int) -> int:
    return ledger_queries.sum_on_account(entry_id, ledger_queries.account_id(coop, "bank"))


def _post_stripe_payout(coop, user, txn: StripeBalanceTxn, line: BankStatementLine):
    """The payout reached the bank: Dr bank Cr stripe_clearing, once per payout id."""
    ref = txn.source or txn.txn_id
    amount = -txn.amount_minor
    entry = ledger.post(coop, key=f"stripe_payout:{ref}", kind="stripe_payout",
                        external_ref=ref, user=user, source=("bank_line", line.id),
                        memo=f"Stripe payout {ref} to the bank",
                        effective_on=datetime.combine(line.booked_on, time(12),
                                                      tzinfo=timezone.utc),
                        lines=[ledger.debit("bank", amount),
                               ledger.credit("stripe_clearing", amount)])
    audit.record(coop.id, user, "treasury.stripe_payout_posted", "stripe_txn", txn.txn_id,
                 {"bank_line": line.id, "status": line.status},
                 {"entry": entry.id, "amount_minor": amount, "status": "matched"})
    return entry


def _matched_line_for_entry(entry_id):
    return select(BankStatementLine.id).where(BankStatementLine.matched_entry_id == entry_id)


def _not_on_a_line(entry_id, _external_ref):
    """For the ledger's queries: leave out entries a statement line is matched to."""
    return ~exists(_matched_line_for_entry(entry_id))


def match_bank(coop, user=None) -> dict:
    """Match unmatched statement lines on ids: a Stripe payout id in the reference or the
    description (money in), or a ledger entry through the bank with that external reference
    (farmer payout lines, costs). Amounts must agree, or the line is marked mismatch."""
    matched = mismatched = 0
    lines = list(db.session.scalars(select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id, BankStatementLine.status == "unmatched")
        .order_by(BankStatementLine.id)))
    bank_id = ledger_queries.account_id(coop, "bank")
    for line in lines:
        txn = None
        if line.amount_minor > 0:
            refs = {line.reference} | set(PAYOUT_ID.findall(line.description))
            refs.discard("")
            if refs:
                txn = db.session.scalar(select(StripeBalanceTxn).where(
                    StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.type == "payout",
                    or_(StripeBalanceTxn.source.in_(refs), StripeBalanceTxn.txn_id.in_(refs)))
                    .order_by(StripeBalanceTxn.id).limit(1))
        if txn is not None:
            if db.session.scalar(select(BankStatementLine.id).where(
                    BankStatementLine.stripe_txn_id == txn.id)) is not None:
                line.status, line.note = "mismatch", "payout already matched to another line"
                mismatched += 1
                continue
            if -txn.amount_minor != line.amount_minor:
                line.status = "mismatch"
                line.note = f"Stripe payout {txn.source} is {-txn.amount_minor}"
                mismatched += 1
                continue
            entry = _post_stripe_payout(coop, user, txn, line)
            line.status, line.matched_entry_id, line.stripe_txn_id = "matched", entry.id, txn.id
            matched += 1
            continue
        if not line.reference or bank_id is None:
            continue
        entry_id = ledger_queries.first_by_ref_through(coop, line.reference, bank_id,
                                                       unless=_not_on_a_line)
        if entry_id is None:
            continue
        amount = _bank_sum(coop, entry_id)
        line.matched_entry_id = entry_id
        if amount == line.amount_minor:
            line.status = "matched"
            matched += 1
        else:
            line.status, line.note = "mismatch", f"ledger moved {amount}"
            mismatched += 1
        db.session.flush()
    db.session.flush()
    if matched or mismatched:
        # A payout posted above now matches its balance transaction.
        reconcile(coop, user)
    return {"matched": matched, "mismatch": mismatched,
            "unmatched": db.session.scalar(select(func.count()).select_from(BankStatementLine)
                                           .where(BankStatementLine.coop_id == coop.id,
                                                  BankStatementLine.status == "unmatched"))}


@dataclass
class BankSuggestion:
    line: BankStatementLine
    kind: str  # "stripe_payout" or "entry"
    target_id: int
    label: str


def bank_suggestions(coop) -> list[BankSuggestion]:
    """Unmatched lines with a candidate of the same amount within 3 days (no id in common):
    a Stripe payout not yet at the bank (money in), or a bank entry not yet on a line.
    Three queries whatever the number of lines: the candidates are read once, by amount
    and dates, and paired here."""
    out = []
    bank_id = ledger_queries.account_id(coop, "bank")
    lines = list(db.session.scalars(select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id, BankStatementLine.status == "unmatched")
        .order_by(BankStatementLine.booked_on, BankStatementLine.id)))
    if not lines:
        return out
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
    suggestion = next((s for s in bank_suggestions(coop) if s.line.id == line.id
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
