"""The treasurer's outside checks and the year-end close.

Reconciliation with Stripe: balance transactions come from the API (minor units, paged)
or from Stripe's CSV export (MAJOR units, e.g. "12.34"); both are streamed into
`stripe_balance_txns` a thousand rows at a time and matched to the ledger in SQL by
source id: what the ledger moved through stripe_clearing in posted entries whose
external_ref is the source (a charge id for captures, a refund id for refunds, a payout
id for bank transfers) must equal Stripe's signed amount. Card fees are posted once per
balance transaction, in one entry per day of each chunk (key "fees:<day>:<first>-<last>"),
each transaction pointing at the entry that carries its fee. Without a source match, a ledger entry of the
same amount and a close date is only suggested: the treasurer confirms it.

Bank statement: lines (date, description, amount, reference) matched to Stripe payouts
(the payout id in the reference or description; the transfer Dr bank Cr stripe_clearing
is posted then) and to ledger entries that moved the bank account with the same external
reference (farmer payout lines, operating costs). Anything else is shown unmatched.

Year-end close: the surplus of the year (income less expenses, from the ledger) closed
into current_surplus, then distributed by the coop's policy (Ley 79 defaults): losses
carried forward first, then reserve, education and solidarity funds, the rest to members
pro rata to the value they supplied (intake credits to their payable), cash or retained
in their share capital. Parts by largest remainder: they add up exactly.

Services flush, never commit."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from ..common.apportion import largest_remainder
from ..common.labels import label
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.money import parse_major
from ..common.models import utcnow
from ..extensions import db
from ..ledger import services as ledger
from ..ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from ..ledger import bulk
from .models import BankStatementLine, StripeBalanceTxn, YearEndClose

CSV_LOCALE = "en"  # Stripe's and the banks' CSV exports: "1,234.50", never the page's locale

CHUNK = 1000
# Verdicts that are not a difference: the ledger agrees, the rest of a hold Stripe released
# at a partial capture, or a difference the treasurer explained with a note.
SETTLED = ("matched", "released", "explained")
# Balance transactions that are Stripe's own charges on the balance (no object of Minga's
# is their source): the treasurer posts them as card fees.
FEE_TYPES = ("stripe_fee", "stripe_fx_fee", "network_cost", "tax", "fee", "application_fee")
SUGGEST_WINDOW = timedelta(days=3)
MAX_ERRORS = 10
PAYOUT_ID = re.compile(r"\b(?:po|txn)_[A-Za-z0-9]+")
YEAR_END_KINDS = ("year_end_close", "year_end_distribution")

# ---------------------------------------------------------------- Stripe: reading input

# Stripe's dashboard export ("Balance change from activity", balance transactions) and the
# report API name the same columns differently; the first name is ours.
STRIPE_COLUMNS = {
    "id": ("id", "balance_transaction_id", "balance transaction id"),
    "type": ("type", "reporting_category", "reporting category"),
    "source": ("source", "source_id", "source id"),
    "amount": ("amount", "gross"),
    "fee": ("fee",),
    "net": ("net",),
    "currency": ("currency",),
    "created": ("created", "created (utc)", "created_utc", "created utc"),
    "available_on": ("available_on", "available on (utc)", "available_on_utc",
                     "available on"),
    "charge": ("charge", "charge_id", "charge id"),
}
STRIPE_REQUIRED = ("id", "type", "amount", "fee", "net", "currency", "created")


def _header_map(fieldnames, columns, required) -> dict[str, str]:
    """Our name -> the file's header, case and blanks ignored; refuses missing columns."""
    normal = {(name or "").strip().lower(): name for name in fieldnames or []}
    mapping = {}
    for ours, aliases in columns.items():
        for alias in aliases:
            if alias in normal:
                mapping[ours] = normal[alias]
                break
    missing = [c for c in required if c not in mapping]
    if missing:
        raise ValidationFailed(
            _("The file lacks the columns: %(cols)s.", cols=", ".join(missing)),
            code="bad_columns", fields={"file": [_("Missing: %(c)s", c=", ".join(missing))]})
    return mapping


def _moment(value) -> datetime | None:
    """A Unix timestamp (the API) or "2026-03-01 14:05:09" / ISO 8601 (the CSV), in UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # Stripe's "(UTC)" columns carry no offset
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class _text_stream:
    """A binary upload (or an already-text stream) as text, BOM removed, read line by line,
    never all at once; the caller's stream is left open afterwards."""

    def __init__(self, stream):
        self.stream = stream
        self.wrapper = None if isinstance(stream, io.TextIOBase) else \
            io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")

    def __enter__(self):
        return self.wrapper or self.stream

    def __exit__(self, *exc):
        if self.wrapper is not None:
            self.wrapper.detach()


def _csv_stripe_rows(coop, stream, errors: list, skipped: dict):
    """Rows of Stripe's CSV export as our dicts. The CSV's amounts are in the currency's
    MAJOR unit ("12.34" USD is 1234 cents): converted with the currency's exponent, refusing
    more decimals than the currency has. Currency is compared upper case."""
    with _text_stream(stream) as text:
        yield from _stripe_reader(coop, csv.DictReader(text), errors, skipped)


def _stripe_reader(coop, reader, errors, skipped):
    cols = _header_map(reader.fieldnames, STRIPE_COLUMNS, STRIPE_REQUIRED)
    for number, raw in enumerate(reader, start=2):
        try:
            currency = (raw.get(cols["currency"]) or "").strip().upper()
            if currency != coop.currency:
                skipped["currency"] = skipped.get("currency", 0) + 1
                continue
            # Files write amounts the English way ("1,234.50" or "1234.50"), read strictly.
            amount = parse_major(raw.get(cols["amount"]), currency, locale=CSV_LOCALE)
            fee = parse_major(raw.get(cols["fee"]) or "0", currency, locale=CSV_LOCALE)
            net = parse_major(raw.get(cols["net"]), currency, locale=CSV_LOCALE)
            txn_id = (raw.get(cols["id"]) or "").strip()
            if not txn_id or len(txn_id) > 255:
                raise ValueError("no id")
            if net != amount - fee:
                raise ValueError("net is not amount less fee")
            if fee < 0:
                raise ValueError("negative fee")
            source = (raw.get(cols["source"]) or "").strip() if "source" in cols else ""
            charge = (raw.get(cols["charge"]) or "").strip() if "charge" in cols else ""
            yield {"txn_id": txn_id, "type": (raw.get(cols["type"]) or "").strip()[:32],
                   "source": source[:255] or None, "charge_ref": charge[:255] or None,
                   "amount_minor": amount, "fee_minor": fee,
                   "net_minor": net, "currency": currency,
                   "created": _moment(raw.get(cols["created"])),
                   "available_on": _moment(raw.get(cols["available_on"]))
                   if "available_on" in cols else None,
                   "origin": "csv"}
        except (ValueError, TypeError, OverflowError) as exc:
            if len(errors) < MAX_ERRORS:
                errors.append(_("Line %(n)d: %(problem)s", n=number, problem=str(exc)))
            else:
                break


def _api_rows(coop, skipped: dict, limit: int):
    """Balance transactions from the API: already in minor units."""
    from ..payments import gateway
    for txn in gateway.balance_transactions(limit=limit):
        if txn["currency"] != coop.currency:
            skipped["currency"] = skipped.get("currency", 0) + 1
            continue
        yield {"txn_id": txn["id"], "type": str(txn["type"])[:32], "source": txn["source"],
               "charge_ref": txn.get("charge"), "amount_minor": int(txn["amount"]), "fee_minor": int(txn["fee"]),
               "net_minor": int(txn["net"]), "currency": txn["currency"],
               "created": _moment(txn["created"]) or utcnow(),
               "available_on": _moment(txn["available_on"]), "origin": "api"}


def _insert_ignore(model, rows: list[dict], index: list[str]) -> None:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(model.__table__).on_conflict_do_nothing(index_elements=index), rows)


def _count_txns(coop) -> int:
    return db.session.scalar(select(func.count()).select_from(StripeBalanceTxn)
                             .where(StripeBalanceTxn.coop_id == coop.id))


def _store_txns(coop, rows, errors: list) -> int:
    """Stream rows into the table a chunk at a time; a row already stored is left as it is."""
    before = _count_txns(coop)
    chunk: list[dict] = []
    now = utcnow()
    for row in rows:
        row.update(coop_id=coop.id, status="unmatched", imported_at=now)
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _insert_ignore(StripeBalanceTxn, chunk, ["coop_id", "txn_id"])
            chunk = []
    if errors:
        raise ValidationFailed(_("The file has errors; nothing was imported."),
                               code="bad_file", fields={"file": errors})
    if chunk:
        _insert_ignore(StripeBalanceTxn, chunk, ["coop_id", "txn_id"])
    return _count_txns(coop) - before


def import_stripe_csv(coop, user, stream) -> dict:
    """Store the rows of Stripe's balance CSV export (all or nothing), then reconcile."""
    errors: list[str] = []
    skipped: dict = {}
    added = _store_txns(coop, _csv_stripe_rows(coop, stream, errors, skipped), errors)
    summary = reconcile(coop, user)
    summary.update(added=added, skipped_other_currency=skipped.get("currency", 0))
    ledger.audit(coop.id, user, "treasury.stripe_csv_import", "coop", coop.id, {}, summary)
    return summary


def pull_stripe(coop, user, limit: int = 100) -> dict:
    """Page through Stripe's balance transactions, store the new ones, reconcile."""
    skipped: dict = {}
    added = _store_txns(coop, _api_rows(coop, skipped, limit), [])
    summary = reconcile(coop, user)
    summary.update(added=added, skipped_other_currency=skipped.get("currency", 0))
    ledger.audit(coop.id, user, "treasury.stripe_pull", "coop", coop.id, {}, summary)
    return summary


# ---------------------------------------------------------------- Stripe: matching

def _account_id(coop, code: str) -> int | None:
    return db.session.scalar(select(LedgerAccount.id).where(LedgerAccount.coop_id == coop.id,
                                                            LedgerAccount.code == code))


def reconcile(coop, user=None) -> dict:
    """Match every stored balance transaction to the ledger (in SQL), post the card fees
    not yet posted, refresh suggestions. Running it again changes nothing already done."""
    clearing_id = _account_id(coop, "stripe_clearing")
    auto = and_(StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.matched_entry_id.is_(None))
    if clearing_id is None:
        db.session.execute(update(StripeBalanceTxn).where(auto)
                           .values(ledger_amount_minor=None, status="missing_ledger")
                           .execution_options(synchronize_session=False))
    else:
        # Correlated lookups driven by the (coop_id, external_ref) index: no plan depends on
        # table statistics (an UPDATE ... FROM an aggregate went N x N on PostgreSQL right
        # after a bulk load). "+ 0" keeps SQLite off the account_id index (N x N as well).
        ledger_sum = (select(func.sum(LedgerPosting.amount_minor))
                      .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
                      .where(LedgerEntry.coop_id == coop.id,
                             LedgerEntry.external_ref == StripeBalanceTxn.source,
                             LedgerEntry.status == "posted",
                             LedgerPosting.account_id + 0 == clearing_id)
                      .scalar_subquery())
        db.session.execute(update(StripeBalanceTxn).where(auto)
                           .values(ledger_amount_minor=ledger_sum)
                           .execution_options(synchronize_session=False))
        # A partial capture: Stripe may show the charge at the amount held and give the rest
        # back as a refund on the same charge (the sandbox does; Stripe itself shows only the
        # amount captured). The ledger moved only what was captured, so the charge matches
        # when its amount plus those refunds the ledger never moved equals the ledger's.
        rest = aliased(StripeBalanceTxn)
        released = (select(func.coalesce(func.sum(rest.amount_minor), 0))
                    .where(rest.coop_id == coop.id, rest.charge_ref == StripeBalanceTxn.source,
                           rest.type == "refund", rest.ledger_amount_minor.is_(None),
                           rest.matched_entry_id.is_(None))
                    .correlate(StripeBalanceTxn).scalar_subquery())
        ledger_amount = StripeBalanceTxn.ledger_amount_minor
        verdict = case((ledger_amount.is_(None), "missing_ledger"),
                       (ledger_amount == StripeBalanceTxn.amount_minor, "matched"),
                       (and_(StripeBalanceTxn.charge_ref.is_(None),
                             ledger_amount < StripeBalanceTxn.amount_minor,
                             ledger_amount == StripeBalanceTxn.amount_minor + released),
                        "matched"),
                       else_="mismatch")
        # A difference the treasurer explained stays explained unless it now matches.
        final = case((and_(StripeBalanceTxn.status == "explained", verdict != "matched"),
                      "explained"), else_=verdict)
        db.session.execute(update(StripeBalanceTxn).where(auto, StripeBalanceTxn.status != final)
                           .values(status=final)
                           .execution_options(synchronize_session=False))
        # ... and those refunds are the released rest of the hold, not a difference.
        charge = aliased(StripeBalanceTxn)
        db.session.execute(
            update(StripeBalanceTxn)
            .where(auto, StripeBalanceTxn.status == "missing_ledger",
                   StripeBalanceTxn.type == "refund", StripeBalanceTxn.charge_ref.is_not(None),
                   exists(select(charge.id).where(
                       charge.coop_id == coop.id, charge.source == StripeBalanceTxn.charge_ref,
                       charge.status == "matched",
                       charge.ledger_amount_minor < charge.amount_minor)
                       .correlate(StripeBalanceTxn)))
            .values(status="released")
            .execution_options(synchronize_session=False))
    fees = post_fees(coop, user)
    suggested = refresh_suggestions(coop)
    counts = dict(db.session.execute(
        select(StripeBalanceTxn.status, func.count()).where(StripeBalanceTxn.coop_id == coop.id)
        .group_by(StripeBalanceTxn.status)).all())
    db.session.expire_all()
    return {"matched": counts.get("matched", 0), "mismatch": counts.get("mismatch", 0),
            "missing_ledger": counts.get("missing_ledger", 0),
            "released": counts.get("released", 0), "explained": counts.get("explained", 0),
            "suggested": suggested,
            "fees_posted": fees["count"], "fees_minor": fees["total"]}


def _txn_day():
    """The UTC calendar day of a balance transaction, in SQL on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", StripeBalanceTxn.created))
    return func.date(StripeBalanceTxn.created)


def post_fees(coop, user=None) -> dict:
    """Dr card_fees Cr stripe_clearing for each balance transaction with a fee whose source
    is in the ledger (matched or mismatched: Stripe took the fee either way), once. Set-based:
    one entry per day (key "fees:<day>:<first id>-<last id>"), then every transaction it
    covers points at it in one UPDATE, so no fee is posted twice and nothing is held in
    memory whatever the number of transactions."""
    eligible = (StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.fee_minor > 0,
                StripeBalanceTxn.fee_entry_id.is_(None),
                StripeBalanceTxn.status.in_(("matched", "mismatch")))
    day = _txn_day()
    days = db.session.execute(
        select(day, func.sum(StripeBalanceTxn.fee_minor), func.count(),
               func.min(StripeBalanceTxn.id), func.max(StripeBalanceTxn.id),
               func.max(StripeBalanceTxn.created))
        .where(*eligible).group_by(day).order_by(day)).all()
    count = total = 0
    for day_value, amount, n, first, last, latest in days:
        on = str(day_value)[:10]
        amount, n = int(amount), int(n)
        key = f"fees:{on}:{first}-{last}"
        entry_id = bulk.post_many(coop, [bulk.NewEntry(
            key=key, kind="card_fee", effective_on=latest,
            memo=f"Stripe fees of {n} transaction(s) on {on}",
            lines=[ledger.debit("card_fees", amount),
                   ledger.credit("stripe_clearing", amount)])], user=user)[key]
        db.session.execute(update(StripeBalanceTxn)
                           .where(*eligible, day == day_value,
                                  StripeBalanceTxn.id.between(first, last))
                           .values(fee_entry_id=entry_id)
                           .execution_options(synchronize_session=False))
        count += n
        total += amount
    if count:
        ledger.audit(coop.id, user, "treasury.fees_posted", "coop", coop.id, {},
                     {"count": count, "total_minor": total})
    return {"count": count, "total": total}


def _confirmed_entry_ids(coop):
    return select(StripeBalanceTxn.matched_entry_id).where(
        StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.matched_entry_id.is_not(None))


def _candidate_entries(coop, clearing_id) -> dict[int, list[tuple[datetime, int]]]:
    """Posted entries through stripe_clearing with no external reference (a capture that lost
    its charge id, a refund recorded by hand), not a fee and not confirmed to another
    transaction: amount -> [(date, entry id)]."""
    rows = db.session.execute(
        select(LedgerEntry.id, LedgerEntry.effective_on, func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
               LedgerEntry.external_ref.is_(None), LedgerEntry.kind != "card_fee",
               LedgerPosting.account_id == clearing_id,
               LedgerEntry.id.notin_(_confirmed_entry_ids(coop)))
        .group_by(LedgerEntry.id, LedgerEntry.effective_on)).all()
    out: dict[int, list] = {}
    for entry_id, moment, amount in rows:
        out.setdefault(int(amount), []).append((moment, entry_id))
    return out


def refresh_suggestions(coop) -> int:
    """For each transaction missing in the ledger, the ledger entry of the same amount whose
    date is closest (within 3 days), if any. Only a suggestion: nothing is matched."""
    db.session.execute(update(StripeBalanceTxn).where(
        StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.suggested_entry_id.is_not(None))
        .values(suggested_entry_id=None).execution_options(synchronize_session=False))
    clearing_id = _account_id(coop, "stripe_clearing")
    if clearing_id is None:
        return 0
    candidates = _candidate_entries(coop, clearing_id)
    if not candidates:
        return 0
    suggestions = []
    rows = db.session.execute(
        select(StripeBalanceTxn.id, StripeBalanceTxn.amount_minor, StripeBalanceTxn.created)
        .where(StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.status == "missing_ledger",
               StripeBalanceTxn.amount_minor.in_(list(candidates)))
        .execution_options(yield_per=CHUNK))
    for txn_pk, amount, created in rows:
        close = [(abs(moment - created), entry_id) for moment, entry_id in candidates[amount]
                 if abs(moment - created) <= SUGGEST_WINDOW]
        if close:
            suggestions.append({"b_id": txn_pk, "b_entry": min(close)[1]})
    if suggestions:
        table = StripeBalanceTxn.__table__
        db.session.execute(update(table).where(table.c.id == bindparam("b_id"))
                           .values(suggested_entry_id=bindparam("b_entry")), suggestions)
    return len(suggestions)


def get_txn(coop, txn_pk: int) -> StripeBalanceTxn:
    row = db.session.get(StripeBalanceTxn, txn_pk)
    if row is None or row.coop_id != coop.id:
        raise NotFound(_("No such balance transaction."))
    return row


def _clearing_amount(coop, entry_id: int) -> int:
    clearing_id = _account_id(coop, "stripe_clearing")
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
                                 .where(LedgerPosting.entry_id == entry_id,
                                        LedgerPosting.account_id == clearing_id)) or 0)


def confirm_suggestion(coop, user, txn_pk: int) -> StripeBalanceTxn:
    """The treasurer accepts the suggested ledger entry for a transaction missing in the
    ledger; its fee is posted then."""
    txn = get_txn(coop, txn_pk)
    if txn.matched_entry_id is not None:
        raise Conflict(_("This transaction was already matched."), code="already_matched")
    if txn.suggested_entry_id is None or txn.status != "missing_ledger":
        raise Conflict(_("There is no suggestion to confirm."), code="no_suggestion")
    taken = db.session.scalar(select(StripeBalanceTxn.id).where(
        StripeBalanceTxn.matched_entry_id == txn.suggested_entry_id))
    if taken is not None:
        raise Conflict(_("That ledger entry is matched to another transaction."),
                       code="entry_taken")
    before = {"status": txn.status, "matched_entry_id": None}
    txn.matched_entry_id = txn.suggested_entry_id
    txn.suggested_entry_id = None
    txn.ledger_amount_minor = _clearing_amount(coop, txn.matched_entry_id)
    txn.status = "matched" if txn.ledger_amount_minor == txn.amount_minor else "mismatch"
    db.session.flush()
    post_fees(coop, user)
    ledger.audit(coop.id, user, "treasury.match_confirmed", "stripe_txn", txn.txn_id, before,
                 {"status": txn.status, "matched_entry_id": txn.matched_entry_id,
                  "amount_minor": txn.amount_minor})
    return txn


def _note(note) -> str:
    note = " ".join(str(note or "").split())
    if not note or not note.isprintable():
        raise ValidationFailed(_("Say why this is not a difference."),
                               fields={"note": [_("Required.")]})
    if len(note) > 255:
        raise ValidationFailed(_("Keep the note under 255 characters."),
                               fields={"note": [_("Too long.")]})
    return note


def explain_txn(coop, user, txn_pk: int, note) -> StripeBalanceTxn:
    """The treasurer marks a difference (an amount that differs, a transaction missing in
    the ledger) as explained, with a note; it leaves the list of differences, stays in the
    list of explained ones, and the audit log keeps who said what."""
    txn = get_txn(coop, txn_pk)
    note = _note(note)
    if txn.status not in ("mismatch", "missing_ledger"):
        raise Conflict(_("This transaction is not a difference."), code="not_a_difference")
    before = {"status": txn.status, "note": txn.note}
    txn.status, txn.note = "explained", note
    db.session.flush()
    ledger.audit(coop.id, user, "treasury.difference_explained", "stripe_txn", txn.txn_id,
                 before, {"status": txn.status, "note": note, "amount_minor": txn.amount_minor})
    return txn


def is_fee(txn: StripeBalanceTxn) -> bool:
    """A charge of Stripe's own on the balance (a fee, a tax), missing in the ledger."""
    return txn.status == "missing_ledger" and txn.amount_minor < 0 \
        and txn.type in FEE_TYPES and txn.matched_entry_id is None


def post_missing_fee(coop, user, txn_pk: int) -> StripeBalanceTxn:
    """Post a Stripe fee the ledger lacks (Dr card_fees, Cr stripe_clearing, the
    transaction's id as reference) and match the transaction to it. Once."""
    txn = get_txn(coop, txn_pk)
    if not is_fee(txn):
        raise Conflict(_("Only a Stripe fee missing in the ledger can be posted here."),
                       code="not_a_fee")
    amount = -txn.amount_minor
    entry = ledger.post(coop, key=f"stripe_fee:{txn.txn_id}", kind="card_fee", user=user,
                        external_ref=txn.source, effective_on=txn.created,
                        memo=f"Stripe {txn.type} {txn.txn_id}",
                        lines=[ledger.debit("card_fees", amount),
                               ledger.credit("stripe_clearing", amount)])
    before = {"status": txn.status}
    txn.matched_entry_id = entry.id
    txn.suggested_entry_id = None
    txn.ledger_amount_minor = _clearing_amount(coop, entry.id)
    txn.status = "matched" if txn.ledger_amount_minor == txn.amount_minor else "mismatch"
    db.session.flush()
    ledger.audit(coop.id, user, "treasury.fee_posted", "stripe_txn", txn.txn_id, before,
                 {"status": txn.status, "matched_entry_id": entry.id, "amount_minor": amount})
    return txn


# ---------------------------------------------------------------- bank statement

BANK_COLUMNS = {
    "date": ("date", "fecha", "booking date", "booked_on"),
    "description": ("description", "descripcion", "descripción", "concepto"),
    "amount": ("amount", "monto", "valor", "importe"),
    "reference": ("reference", "referencia", "ref"),
}


def _bank_rows(coop, stream, errors: list, user_id):
    with _text_stream(stream) as text:
        yield from _bank_reader(coop, csv.DictReader(text), errors, user_id)


def _bank_reader(coop, reader, errors: list, user_id):
    cols = _header_map(reader.fieldnames, BANK_COLUMNS, ("date", "amount"))
    seen: dict[tuple, int] = {}
    now = utcnow()
    for number, raw in enumerate(reader, start=2):
        try:
            booked = date.fromisoformat((raw.get(cols["date"]) or "").strip())
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
    ledger.audit(coop.id, user, "treasury.bank_import", "coop", coop.id, {}, summary)
    return summary


def _bank_sum(coop, entry_id: int) -> int:
    bank_id = _account_id(coop, "bank")
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
                                 .where(LedgerPosting.entry_id == entry_id,
                                        LedgerPosting.account_id == bank_id)) or 0)


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
    ledger.audit(coop.id, user, "treasury.stripe_payout_posted", "stripe_txn", txn.txn_id,
                 {"bank_line": line.id, "status": line.status},
                 {"entry": entry.id, "amount_minor": amount, "status": "matched"})
    return entry


def _matched_line_for_entry(entry_id):
    return select(BankStatementLine.id).where(BankStatementLine.matched_entry_id == entry_id)


def match_bank(coop, user=None) -> dict:
    """Match unmatched statement lines on ids: a Stripe payout id in the reference or the
    description (money in), or a ledger entry through the bank with that external reference
    (farmer payout lines, costs). Amounts must agree, or the line is marked mismatch."""
    matched = mismatched = 0
    lines = list(db.session.scalars(select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id, BankStatementLine.status == "unmatched")
        .order_by(BankStatementLine.id)))
    bank_id = _account_id(coop, "bank")
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
        entry_id = db.session.scalar(
            select(LedgerEntry.id).join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
                   LedgerEntry.external_ref == line.reference,
                   LedgerPosting.account_id == bank_id,
                   ~exists(_matched_line_for_entry(LedgerEntry.id)))
            .order_by(LedgerEntry.id).limit(1))
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
    bank_id = _account_id(coop, "bank")
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
        for entry_id, moment, kind, amount in db.session.execute(
                select(LedgerEntry.id, LedgerEntry.effective_on, LedgerEntry.kind,
                       func.sum(LedgerPosting.amount_minor))
                .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
                .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
                       LedgerEntry.effective_on >= lo, LedgerEntry.effective_on <= hi,
                       LedgerPosting.account_id == bank_id,
                       ~exists(_matched_line_for_entry(LedgerEntry.id)))
                .group_by(LedgerEntry.id, LedgerEntry.effective_on, LedgerEntry.kind)
                .having(func.sum(LedgerPosting.amount_minor).in_(amounts))):
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
    ledger.audit(coop.id, user, "treasury.bank_match_confirmed", "bank_line", line.id, before,
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
    ledger.audit(coop.id, user, "treasury.bank_line_explained", "bank_line", line.id, before,
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
    ledger.audit(coop.id, user, "treasury.bank_fee_posted", "bank_line", line.id, before,
                 {"status": "matched", "matched_entry_id": entry.id, "amount_minor": amount})
    return line


# ---------------------------------------------------------------- the period's report

def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed(_("The period ends before it starts."),
                               fields={"to": [_("Before the start.")]})
    return (datetime.combine(start, time(0), tzinfo=timezone.utc),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=timezone.utc))


@dataclass
class Report:
    start: date
    end: date
    currency: str
    counts: dict
    stripe_net_minor: int
    stripe_amount_minor: int
    stripe_fees_minor: int
    differences: list = field(default_factory=list)      # StripeBalanceTxn not matched
    missing_in_stripe: list = field(default_factory=list)  # (entry, amount)
    suggestions: list = field(default_factory=list)
    bank_unmatched: list = field(default_factory=list)     # BankStatementLine
    bank_mismatch: list = field(default_factory=list)
    ledger_not_at_bank: list = field(default_factory=list)  # (entry, amount)
    payouts_not_at_bank: list = field(default_factory=list)  # StripeBalanceTxn
    bank_suggestions: list = field(default_factory=list)
    explained: list = field(default_factory=list)          # StripeBalanceTxn explained
    bank_explained: list = field(default_factory=list)
    suggestion_for: dict = field(default_factory=dict)      # txn pk -> suggested entry


def missing_in_stripe(coop, start: datetime, end: datetime, limit: int | None = 500):
    """Posted entries through stripe_clearing that name a Stripe object (external_ref) for
    which no balance transaction is stored."""
    clearing_id = _account_id(coop, "stripe_clearing")
    if clearing_id is None:
        return []
    stmt = (select(LedgerEntry, func.sum(LedgerPosting.amount_minor))
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
                   LedgerEntry.external_ref.is_not(None),
                   LedgerEntry.effective_on >= start, LedgerEntry.effective_on < end,
                   LedgerPosting.account_id == clearing_id,
                   ~exists(select(StripeBalanceTxn.id).where(
                       StripeBalanceTxn.coop_id == coop.id,
                       StripeBalanceTxn.source == LedgerEntry.external_ref)),
                   ~exists(select(StripeBalanceTxn.id).where(
                       StripeBalanceTxn.matched_entry_id == LedgerEntry.id)))
            .group_by(LedgerEntry.id).order_by(LedgerEntry.id))
    if limit:
        stmt = stmt.limit(limit)
    return [(entry, int(amount)) for entry, amount in db.session.execute(stmt)]


def report(coop, start: date, end: date, limit: int | None = 500) -> Report:
    lo, hi = _bounds(start, end)
    in_period = and_(StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.created >= lo,
                     StripeBalanceTxn.created < hi)
    counts = dict(db.session.execute(select(StripeBalanceTxn.status, func.count())
                                     .where(in_period).group_by(StripeBalanceTxn.status)).all())
    sums = db.session.execute(select(func.coalesce(func.sum(StripeBalanceTxn.amount_minor), 0),
                                     func.coalesce(func.sum(StripeBalanceTxn.fee_minor), 0),
                                     func.coalesce(func.sum(StripeBalanceTxn.net_minor), 0))
                              .where(in_period)).one()
    diff_stmt = (select(StripeBalanceTxn).where(in_period,
                                                StripeBalanceTxn.status.notin_(SETTLED))
                 .order_by(StripeBalanceTxn.created, StripeBalanceTxn.id))
    if limit:
        diff_stmt = diff_stmt.limit(limit)
    rep = Report(start=start, end=end, currency=coop.currency, counts=counts,
                 stripe_amount_minor=int(sums[0]), stripe_fees_minor=int(sums[1]),
                 stripe_net_minor=int(sums[2]),
                 differences=list(db.session.scalars(diff_stmt)),
                 missing_in_stripe=missing_in_stripe(coop, lo, hi, limit))
    suggested = {t.suggested_entry_id for t in rep.differences if t.suggested_entry_id}
    entries = {e.id: e for e in db.session.scalars(
        select(LedgerEntry).where(LedgerEntry.id.in_(suggested)))} if suggested else {}
    rep.suggestions = [(t, entries[t.suggested_entry_id])
                       for t in rep.differences if t.suggested_entry_id in entries]
    rep.suggestion_for = {t.id: e for t, e in rep.suggestions}
    explained_stmt = (select(StripeBalanceTxn).where(in_period,
                                                     StripeBalanceTxn.status == "explained")
                      .order_by(StripeBalanceTxn.created, StripeBalanceTxn.id))
    if limit:
        explained_stmt = explained_stmt.limit(limit)
    rep.explained = list(db.session.scalars(explained_stmt))
    rep.bank_explained = list(db.session.scalars(select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id, BankStatementLine.status == "explained",
        BankStatementLine.booked_on >= start, BankStatementLine.booked_on <= end)
        .order_by(BankStatementLine.booked_on, BankStatementLine.id)))
    rep.bank_unmatched = list(db.session.scalars(select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id,
        BankStatementLine.status.notin_(("matched", "explained")),
        BankStatementLine.booked_on >= start, BankStatementLine.booked_on <= end)
        .order_by(BankStatementLine.booked_on, BankStatementLine.id)))
    bank_id = _account_id(coop, "bank")
    if bank_id is not None:
        rep.ledger_not_at_bank = [(e, int(a)) for e, a in db.session.execute(
            select(LedgerEntry, func.sum(LedgerPosting.amount_minor))
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
                   LedgerEntry.external_ref.is_not(None),
                   LedgerEntry.effective_on >= lo, LedgerEntry.effective_on < hi,
                   LedgerPosting.account_id == bank_id,
                   ~exists(_matched_line_for_entry(LedgerEntry.id)))
            .group_by(LedgerEntry.id).order_by(LedgerEntry.id))]
    rep.payouts_not_at_bank = list(db.session.scalars(select(StripeBalanceTxn).where(
        in_period, StripeBalanceTxn.type == "payout",
        ~exists(select(BankStatementLine.id).where(
            BankStatementLine.stripe_txn_id == StripeBalanceTxn.id)))
        .order_by(StripeBalanceTxn.id)))
    rep.bank_suggestions = bank_suggestions(coop)
    return rep


CSV_HEADER = ["section", "date", "stripe_txn_id", "type", "source_or_reference",
              "stripe_amount_minor", "fee_minor", "ledger_amount_minor", "difference_minor",
              "ledger_entry_id", "status", "currency"]


def report_csv_rows(coop, start: date, end: date):
    """Every difference of the period (no row limit), streamed: Stripe rows not matched,
    ledger entries missing in Stripe, bank lines and ledger bank entries unmatched."""
    lo, hi = _bounds(start, end)
    cur = coop.currency
    yield CSV_HEADER
    stmt = (select(StripeBalanceTxn).where(
        StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.created >= lo,
        StripeBalanceTxn.created < hi, StripeBalanceTxn.status.notin_(("matched", "released")))
        .order_by(StripeBalanceTxn.created, StripeBalanceTxn.id)
        .execution_options(yield_per=CHUNK))
    for t in db.session.scalars(stmt):
        ledger_amount = t.ledger_amount_minor
        yield ["stripe", t.created.date().isoformat(), t.txn_id, t.type, t.source or "",
               t.amount_minor, t.fee_minor, "" if ledger_amount is None else ledger_amount,
               t.amount_minor - (ledger_amount or 0), t.matched_entry_id or "", t.status, cur]
    for entry, amount in missing_in_stripe(coop, lo, hi, None):
        yield ["ledger", entry.effective_on.date().isoformat(), "", entry.kind,
               entry.external_ref, "", "", amount, -amount, entry.id, "missing_stripe", cur]
    rep = report(coop, start, end, None)
    for line in rep.bank_unmatched:
        yield ["bank", line.booked_on.isoformat(), "", "statement_line", line.reference,
               "", "", "", line.amount_minor, line.matched_entry_id or "",
               f"bank_{line.status}", cur]
    for entry, amount in rep.ledger_not_at_bank:
        yield ["ledger", entry.effective_on.date().isoformat(), "", entry.kind,
               entry.external_ref, "", "", amount, -amount, entry.id, "missing_bank", cur]
    for t in rep.payouts_not_at_bank:
        yield ["stripe", t.created.date().isoformat(), t.txn_id, t.type, t.source or "",
               t.amount_minor, t.fee_minor, "", "", "", "payout_not_at_bank", cur]


def audit_csv_rows(coop_id: int):
    from ..ledger.models import AuditEvent
    from ..auth.models import User
    yield ["id", "when_utc", "user_id", "user", "action", "object_type", "object_id",
           "before", "after"]
    stmt = (select(AuditEvent, User.name).outerjoin(User, User.id == AuditEvent.user_id)
            .where(AuditEvent.coop_id == coop_id).order_by(AuditEvent.id)
            .execution_options(yield_per=CHUNK))
    for event, name in db.session.execute(stmt):
        yield [event.id, event.created_at.isoformat(), event.user_id or "", name or "system",
               event.action, event.object_type, event.object_id, event.before_json,
               event.after_json]


def csv_safe(value) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ is prefixed with '
    unless it is a number."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        try:
            Decimal(text)
            return text
        except InvalidOperation:
            return "'" + text
    return text


# ---------------------------------------------------------------- operating costs

COST_PLAUSIBLE_FACTOR = 100  # "150.000" read as 150,00 is 1000x off; ask again from 100x


def usual_operating_cost(coop) -> int | None:
    """The median of the coop's last 50 operating costs (minor units), None before the first."""
    amounts = sorted(db.session.scalars(
        select(LedgerPosting.amount_minor).join(LedgerEntry, LedgerPosting.entry_id
                                                == LedgerEntry.id)
        .join(LedgerAccount, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.kind == "operating_cost",
               LedgerAccount.code == "operating_costs", LedgerPosting.amount_minor > 0)
        .order_by(LedgerEntry.id.desc()).limit(50)))
    return amounts[len(amounts) // 2] if amounts else None


def record_operating_cost(coop, user, *, amount, spent_on, description: str,
                          reference: str = "", key: str,
                          confirm: str | None = None) -> LedgerEntry:
    """Dr operating_costs Cr bank. `key` (from the form) makes a resubmission do nothing.
    With `confirm` given (a form), an amount COST_PLAUSIBLE_FACTOR times above or below the
    coop's usual cost raises Implausible, writing nothing, unless `confirm` is its token."""
    try:
        minor = parse_major(amount, coop.currency)
    except ValueError as exc:
        from ..common.numbers import amount_examples
        raise ValidationFailed(_("Give an amount such as %(whole)s or %(decimals)s.",
                                 **amount_examples(125000)),
                               fields={"amount": [str(exc)]})
    if minor <= 0:
        raise ValidationFailed(_("The amount must be more than zero."),
                               fields={"amount": [_("More than zero.")]})
    if confirm is not None:
        from ..common.money import format_money
        from ..common.plausibility import Implausible, confirmed, far_from, token_for
        usual = usual_operating_cost(coop)
        token = token_for("operating_cost", coop.id, minor)
        if far_from(minor, usual, COST_PLAUSIBLE_FACTOR) and not confirmed(confirm, token):
            warning = _("%(amount)s is far from this cooperative's usual cost, about "
                        "%(usual)s. Check the number.",
                        amount=format_money(minor, coop.currency),
                        usual=format_money(usual, coop.currency))
            raise Implausible(_("Nothing was recorded: the amount is far from the usual. If "
                                "it is right, tick \"Yes, this is right\" and record again."),
                              token=token, fields={"amount": [warning]})
    if not isinstance(spent_on, date):
        try:
            spent_on = date.fromisoformat(str(spent_on or "").strip())
        except ValueError:
            raise ValidationFailed(_("Give the date as YYYY-MM-DD."),
                                   fields={"spent_on": [_("Not a date.")]})
    description = (description or "").strip()
    if not description or not description.isprintable():
        raise ValidationFailed(_("Say what the cost was."),
                               fields={"description": [_("Required.")]})
    if not key or not key.isprintable() or len(key) > 200:
        raise ValidationFailed("bad form key")
    reference = (reference or "").strip()[:255] or None
    entry = ledger.post(coop, key=f"operating_cost:{key}", kind="operating_cost", user=user,
                        memo=description[:255], external_ref=reference,
                        effective_on=datetime.combine(spent_on, time(12), tzinfo=timezone.utc),
                        lines=[ledger.debit("operating_costs", minor),
                               ledger.credit("bank", minor)])
    ledger.audit(coop.id, user, "treasury.operating_cost", "ledger_entry", entry.id, {},
                 {"amount_minor": minor, "spent_on": spent_on.isoformat(),
                  "description": description, "reference": reference})
    return entry


# ---------------------------------------------------------------- year-end close

def _year_bounds(year: int) -> tuple[datetime, datetime]:
    return (datetime(year, 1, 1, tzinfo=timezone.utc),
            datetime(year + 1, 1, 1, tzinfo=timezone.utc))


def _year_end_moment(year: int) -> datetime:
    return datetime(year, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@dataclass
class MemberShare:
    user_id: int
    name: str
    patronage_minor: int
    share_minor: int
    cash_minor: int
    retained_minor: int


@dataclass
class Distribution:
    year: int
    currency: str
    income: list          # (code, name, amount) credit-normal amounts earned
    expenses: list        # (code, name, amount)
    surplus_minor: int    # < 0: a loss
    losses_before_minor: int
    loss_cover_minor: int
    reserve_minor: int
    education_minor: int
    solidarity_minor: int
    members_minor: int
    members: list
    policy: dict
    closed: YearEndClose | None = None

    @property
    def total_minor(self) -> int:
        return (self.loss_cover_minor + self.reserve_minor + self.education_minor
                + self.solidarity_minor + sum(m.share_minor for m in self.members))

    def summary(self) -> dict:
        return {"year": self.year, "surplus_minor": self.surplus_minor,
                "income": [[c, a] for c, _n, a in self.income],
                "expenses": [[c, a] for c, _n, a in self.expenses],
                "losses_before_minor": self.losses_before_minor,
                "loss_cover_minor": self.loss_cover_minor, "reserve_minor": self.reserve_minor,
                "education_minor": self.education_minor,
                "solidarity_minor": self.solidarity_minor,
                "members_minor": self.members_minor, "members": len(self.members),
                "cash_minor": sum(m.cash_minor for m in self.members),
                "retained_minor": sum(m.retained_minor for m in self.members),
                "policy": self.policy}


LEY79_MIN_BPS = {"reserve": 2000, "education": 2000, "solidarity": 1000}


def _year_sums(coop, year: int) -> tuple[list, list]:
    """Income and expense accounts' movement in the year (normal side), the close itself
    left out."""
    lo, hi = _year_bounds(year)
    rows = db.session.execute(
        select(LedgerAccount.code, LedgerAccount.name, LedgerAccount.kind,
               func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerAccount.coop_id == coop.id, LedgerAccount.kind.in_(("income", "expense")),
               LedgerEntry.status == "posted", LedgerEntry.effective_on >= lo,
               LedgerEntry.effective_on < hi, LedgerEntry.kind.notin_(YEAR_END_KINDS))
        .group_by(LedgerAccount.code, LedgerAccount.name, LedgerAccount.kind)
        .order_by(LedgerAccount.code)).all()
    income = [(c, n, -int(s)) for c, n, k, s in rows if k == "income" and s]
    expenses = [(c, n, int(s)) for c, n, k, s in rows if k == "expense" and s]
    return income, expenses


def patronage(coop, year: int) -> dict[int, int]:
    """user id -> value supplied in the year: what intake entries credited to the member's
    farmer_payable, less reversals of such entries (whenever they were posted)."""
    lo, hi = _year_bounds(year)
    intake = aliased(LedgerEntry)
    rows = db.session.execute(
        select(LedgerAccount.user_id, func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .outerjoin(intake, intake.id == LedgerEntry.reverses_id)
        .where(LedgerAccount.coop_id == coop.id, LedgerAccount.code.like("farmer_payable:%"),
               LedgerEntry.status == "posted",
               or_(and_(LedgerEntry.kind == "intake", LedgerEntry.effective_on >= lo,
                        LedgerEntry.effective_on < hi),
                   # a reversal counts in the year of the intake it corrects
                   and_(intake.kind == "intake", intake.effective_on >= lo,
                        intake.effective_on < hi)))
        .group_by(LedgerAccount.user_id)).all()
    return {int(uid): -int(total) for uid, total in rows if uid is not None and -int(total) > 0}


def _split_funds(rest: int, policy) -> dict[str, int]:
    """Reserve, education, solidarity and members by largest remainder over the policy's
    basis points; a fund rounded below its Ley 79 minimum (20/20/10% of what is
    distributed, rounded up) is topped up from the members' part."""
    bps = {"reserve": policy.reserve_bps, "education": policy.education_bps,
           "solidarity": policy.solidarity_bps}
    bps["members"] = 10000 - sum(bps.values())
    order = ["reserve", "education", "solidarity", "members"]
    parts = largest_remainder(rest, [(i, bps[name]) for i, name in enumerate(order)])
    split = {name: parts.get(i, 0) for i, name in enumerate(order)}
    for name, minimum_bps in LEY79_MIN_BPS.items():
        minimum = -(-rest * minimum_bps // 10000)
        short = min(max(0, minimum - split[name]), split["members"])
        split[name] += short
        split["members"] -= short
    return split


def preview(coop, year: int, names: bool = True) -> Distribution:
    """What closing `year` would post, computed from the ledger and the coop's policy."""
    policy = ledger.finance_settings(coop)
    income, expenses = _year_sums(coop, year)
    surplus = sum(a for *_x, a in income) - sum(a for *_x, a in expenses)
    losses_acc = db.session.scalar(select(LedgerAccount).where(
        LedgerAccount.coop_id == coop.id, LedgerAccount.code == "accumulated_losses"))
    losses_before = max(0, losses_acc.balance_minor) if losses_acc else 0  # a debit balance
    cover = min(max(surplus, 0), losses_before)
    rest = max(surplus, 0) - cover
    split = _split_funds(rest, policy)
    members: list[MemberShare] = []
    weights = patronage(coop, year)
    members_total = split["members"]
    if members_total and not weights:
        # Nobody supplied anything: the members' part stays in the reserve.
        split["reserve"] += members_total
        members_total = split["members"] = 0
    if members_total:
        shares = largest_remainder(members_total, sorted(weights.items()))
        who = {}
        if names:
            from ..auth.models import User
            ids = list(shares)
            for start in range(0, len(ids), CHUNK):
                who.update(dict(db.session.execute(select(User.id, User.name).where(
                    User.id.in_(ids[start:start + CHUNK]))).all()))
        cash_bps = policy.patronage_cash_bps
        for uid in sorted(shares):
            share = shares[uid]
            part = largest_remainder(share, [(0, cash_bps), (1, 10000 - cash_bps)])
            members.append(MemberShare(uid, who.get(uid, f"#{uid}"), weights[uid], share,
                                       part.get(0, 0), part.get(1, 0)))
    existing = db.session.scalar(select(YearEndClose).where(YearEndClose.coop_id == coop.id,
                                                            YearEndClose.year == year))
    return Distribution(
        year=year, currency=coop.currency, income=income, expenses=expenses,
        surplus_minor=surplus, losses_before_minor=losses_before, loss_cover_minor=cover,
        reserve_minor=split["reserve"], education_minor=split["education"],
        solidarity_minor=split["solidarity"], members_minor=members_total, members=members,
        policy={"reserve_bps": policy.reserve_bps, "education_bps": policy.education_bps,
                "solidarity_bps": policy.solidarity_bps,
                "patronage_cash_bps": policy.patronage_cash_bps},
        closed=existing)


def _check_closable(coop, year, today: date | None) -> str:
    """Refuse a year that is not one, not over yet, or closed already; its entry key."""
    today = today or utcnow().date()
    if not isinstance(year, int) or not 2000 <= year <= 2200:
        raise ValidationFailed(_("Not a year."), fields={"year": [_("Not a year.")]})
    if year >= today.year:
        raise ValidationFailed(_("A year can be closed only after it ends."),
                               code="year_not_over", fields={"year": [_("Not over yet.")]})
    closed = db.session.scalar(select(YearEndClose.id).where(YearEndClose.coop_id == coop.id,
                                                             YearEndClose.year == year))
    key = f"year_end:{year}"
    if closed is not None or db.session.scalar(select(LedgerEntry.id).where(
            LedgerEntry.coop_id == coop.id, LedgerEntry.idempotency_key == key)) is not None:
        raise Conflict(_("This year is closed already."), code="year_closed")
    return key


def _check_expected(dist: Distribution, expected_surplus: int | None) -> None:
    if expected_surplus is not None and expected_surplus != dist.surplus_minor:
        raise Conflict(_("The figures changed since the preview; look at them again."),
                       code="figures_changed")


def preview_close_year(coop, year: int, *, expected_surplus: int | None = None,
                       today: date | None = None) -> Distribution:
    """What close_year would post, refusing what it would refuse; writes nothing."""
    _check_closable(coop, year, today)
    dist = preview(coop, year)
    _check_expected(dist, expected_surplus)
    return dist


def close_figures(dist: Distribution) -> tuple:
    """What a treasurer approves: the summary and every member's part (for the
    confirmation step, which acts only if these are still the figures)."""
    return (dist.summary(), tuple((m.user_id, m.cash_minor, m.retained_minor)
                                  for m in dist.members))


def close_year(coop, user, year: int, *, expected_surplus: int | None = None,
               today: date | None = None) -> YearEndClose:
    """Post the approved preview: close income and expenses into current_surplus (key
    "year_end:<year>"), then distribute it (or move a loss to accumulated_losses). Refuses
    a year not over yet, a year closed already, and figures that changed since the preview
    the treasurer approved."""
    key = _check_closable(coop, year, today)
    dist = preview(coop, year, names=False)
    _check_expected(dist, expected_surplus)
    moment = _year_end_moment(year)
    record = YearEndClose(coop_id=coop.id, year=year, surplus_minor=dist.surplus_minor,
                          summary_json=json.dumps(dist.summary()),
                          approved_by_id=getattr(user, "id", None))
    db.session.add(record)
    db.session.flush()  # the unique (coop, year) refuses a racing second close here
    lines = [ledger.debit(code, amount) for code, _n, amount in dist.income]
    lines += [ledger.credit(code, amount) for code, _n, amount in dist.expenses]
    lines.append(ledger.credit("current_surplus", dist.surplus_minor))
    if any(line.amount_minor for line in lines[:-1]):
        entry = ledger.post(coop, key=key, kind="year_end_close", user=user, lines=lines,
                            memo=f"Close of {year}: income and expenses into the surplus",
                            source=("year_end", record.id), effective_on=moment)
        record.close_entry_id = entry.id
    if dist.surplus_minor < 0:
        loss = -dist.surplus_minor
        entry = ledger.post(coop, key=f"{key}:distribution", kind="year_end_distribution",
                            user=user, memo=f"Loss of {year} carried forward",
                            source=("year_end", record.id), effective_on=moment,
                            lines=[ledger.debit("accumulated_losses", loss),
                                   ledger.credit("current_surplus", loss)])
        record.distribution_entry_id = entry.id
    elif dist.surplus_minor > 0:
        dlines = [ledger.debit("current_surplus", dist.surplus_minor),
                  ledger.credit("accumulated_losses", dist.loss_cover_minor),
                  ledger.credit("reserve_fund", dist.reserve_minor),
                  ledger.credit("education_fund", dist.education_minor),
                  ledger.credit("solidarity_fund", dist.solidarity_minor)]
        for m in dist.members:
            dlines.append(ledger.credit(ledger.farmer_payable(m.user_id), m.cash_minor))
            dlines.append(ledger.credit(ledger.share_capital(m.user_id), m.retained_minor))
        ids = bulk.post_many(coop, [bulk.NewEntry(
            key=f"{key}:distribution", kind="year_end_distribution", lines=dlines,
            memo=f"Distribution of the {year} surplus", source=("year_end", record.id),
            effective_on=moment)], user=user)
        record.distribution_entry_id = ids[f"{key}:distribution"]
    db.session.flush()
    ledger.audit(coop.id, user, "treasury.year_end_close", "year_end", year,
                 {"closed": False}, dict(dist.summary(), closed=True,
                                         close_entry=record.close_entry_id,
                                         distribution_entry=record.distribution_entry_id))
    return record
