"""Reconciliation with Stripe: balance transactions come from the API (minor units, paged)
or from Stripe's CSV export (MAJOR units, e.g. "12.34"); both are streamed into
`stripe_balance_txns` a thousand rows at a time and matched to the ledger in SQL by
source id: what the ledger moved through stripe_clearing in posted entries whose
external_ref is the source (a charge id for captures, a refund id for refunds, a payout
id for bank transfers) must equal Stripe's signed amount. Card fees are posted once per
balance transaction, in one entry per day of each chunk (key "fees:<day>:<first>-<last>"),
each transaction pointing at the entry that carries its fee. Without a source match, a ledger entry of the
same amount and a close date is only suggested: the treasurer confirms it.

Each coop's money is its own: the platform's one Stripe account (and its CSV export) holds
every coop's balance transactions, so an import keeps only the coop's own (`_own_rows`): a
row whose source, charge or PaymentIntent is one Minga recorded for this coop (its orders'
PaymentIntents and charges, its refunds, its ledger's captures and refunds), or whose
metadata names the coop (coop_id, which every PaymentIntent and refund Minga makes
carries). A fee line counts by the charge or refund it is about; a line that names no
object of the coop's (another coop's, or the platform's own: a monthly fee, a payout of the
whole balance) is left out and counted, never by currency.

Services flush, never commit."""
from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, case, exists, func, select, update
from sqlalchemy.orm import aliased

from ..audit import services as audit
from ..common import csvfiles
from ..common.dates import check_moment
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.money import parse_major
from ..common.models import utcnow
from ..cooperatives import services as coop_services
from ..extensions import db
from ..ledger import bulk
from ..ledger import queries as ledger_queries
from ..ledger import services as ledger
from ..messages import services as messages
from .models import StripeBalanceTxn


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
    "payment_intent": ("payment_intent", "payment_intent_id", "payment intent id",
                       "payment intent"),
}
# The coop a row is of, from Minga's metadata: the dashboard writes "coop_id (metadata)",
# the itemized reports "payment_metadata[coop_id]" (refund_, payout_, transfer_ likewise).
COOP_META_COLUMNS = ("coop_id", "coop_id (metadata)", "metadata[coop_id]",
                     "payment_metadata[coop_id]", "refund_metadata[coop_id]",
                     "payout_metadata[coop_id]", "transfer_metadata[coop_id]")
# Ledger entries that name a Stripe object Minga made for the coop (a charge, a refund).
OWN_REF_KINDS = ("capture", "refund")
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
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return datetime.fromtimestamp(int(text), tz=timezone.utc)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # Stripe's "(UTC)" columns carry no offset
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _typed_moment(value) -> datetime | None:
    """A CSV's timestamp: as `_moment`, its day between 2000 and the end of next year."""
    moment = _moment(value)
    return check_moment(moment) if moment is not None else None


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
        yield from _stripe_reader(coop, *csvfiles.read(text), errors, skipped)


def _stripe_reader(coop, fieldnames, reader, errors, skipped):
    cols = _header_map(fieldnames, STRIPE_COLUMNS, STRIPE_REQUIRED)
    meta_cols = [name for name in fieldnames or []
                 if (name or "").strip().lower() in COOP_META_COLUMNS]
    for number, raw in reader:
        try:
            csvfiles.check_row(raw)
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
            intent = (raw.get(cols["payment_intent"]) or "").strip() \
                if "payment_intent" in cols else ""
            coop_ref = next((v.strip() for v in (raw.get(c) for c in meta_cols)
                             if v and v.strip()), None)
            # payment_intent and coop_ref only tell whose the row is (`_own_rows`).
            yield {"payment_intent": intent if 0 < len(intent) <= 255 else None,
                   "coop_ref": coop_ref,
                   "txn_id": txn_id, "type": (raw.get(cols["type"]) or "").strip()[:32],
                   "source": source[:255] or None, "charge_ref": charge[:255] or None,
                   "amount_minor": amount, "fee_minor": fee,
                   "net_minor": net, "currency": currency,
                   "created": _typed_moment(raw.get(cols["created"])),
                   "available_on": _typed_moment(raw.get(cols["available_on"]))
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
        yield {"payment_intent": txn.get("payment_intent"), "coop_ref": txn.get("coop_id"),
               "txn_id": txn["id"], "type": str(txn["type"])[:32], "source": txn["source"],
               "charge_ref": txn.get("charge"), "amount_minor": int(txn["amount"]), "fee_minor": int(txn["fee"]),
               "net_minor": int(txn["net"]), "currency": txn["currency"],
               "created": _moment(txn["created"]) or utcnow(),
               "available_on": _moment(txn["available_on"]), "origin": "api"}


def _recorded_ids(coop, ids: set[str]) -> set[str]:
    """Those of `ids` that Minga recorded as this coop's: its orders' PaymentIntents and
    charges, its refunds, and the charges and refunds its ledger captured and refunded."""
    from ..intake import queries as intake_queries
    from ..pools import queries as pool_queries
    return (pool_queries.own_stripe_ids(coop.id, ids)
            | intake_queries.own_refund_ids(coop.id, ids)
            | ledger_queries.external_refs_among(coop, ids, OWN_REF_KINDS))


def _own_rows(coop, rows, skipped: dict):
    """Only the coop's own rows (see the module's docstring), a chunk at a time: one lookup
    of the recorded ids per chunk, nothing held beyond it. The others are counted in
    skipped["not_own"]. Metadata naming another coop leaves a row out whatever its ids."""
    mine = str(coop.id)

    def sort(chunk):
        ids = {v for row in chunk for v in (row["source"], row["charge_ref"],
                                              row["payment_intent"]) if v}
        recorded = _recorded_ids(coop, ids) if ids else set()
        for row in chunk:
            coop_ref = row.pop("coop_ref", None)
            refs = (row["source"], row["charge_ref"], row.pop("payment_intent", None))
            if coop_ref == mine or (coop_ref is None and any(r in recorded for r in refs if r)):
                yield row
            else:
                skipped["not_own"] = skipped.get("not_own", 0) + 1

    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            yield from sort(chunk)
            chunk = []
    if chunk:
        yield from sort(chunk)


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
    """Store the rows of Stripe's balance CSV export that are the coop's own (all or
    nothing), then reconcile; the summary says how many rows were left out as another's."""
    errors: list[str] = []
    skipped: dict = {}
    added = _store_txns(coop, _own_rows(coop, _csv_stripe_rows(coop, stream, errors, skipped),
                                        skipped), errors)
    summary = reconcile(coop, user)
    summary.update(added=added, skipped_other_currency=skipped.get("currency", 0),
                   skipped_not_own=skipped.get("not_own", 0))
    audit.record(coop.id, user, "treasury.stripe_csv_import", "coop", coop.id, {}, summary)
    return summary


def pull_stripe(coop, user, limit: int = 100) -> dict:
    """Page through Stripe's balance transactions, store the new ones that are the coop's
    own, reconcile."""
    skipped: dict = {}
    added = _store_txns(coop, _own_rows(coop, _api_rows(coop, skipped, limit), skipped), [])
    summary = reconcile(coop, user)
    summary.update(added=added, skipped_other_currency=skipped.get("currency", 0),
                   skipped_not_own=skipped.get("not_own", 0))
    audit.record(coop.id, user, "treasury.stripe_pull", "coop", coop.id, {}, summary)
    return summary


# ---------------------------------------------------------------- Stripe: matching

def reconcile(coop, user=None) -> dict:
    """Match every stored balance transaction to the ledger (in SQL), post the card fees
    not yet posted, refresh suggestions. Running it again changes nothing already done."""
    clearing_id = ledger_queries.account_id(coop, "stripe_clearing")
    auto = and_(StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.matched_entry_id.is_(None))
    if clearing_id is None:
        db.session.execute(update(StripeBalanceTxn).where(auto)
                           .values(ledger_amount_minor=None, status="missing_ledger")
                           .execution_options(synchronize_session=False))
    else:
        # A correlated lookup per row, driven by the ledger's (coop_id, external_ref) index.
        ledger_sum = ledger_queries.posted_sum_by_ref(coop, StripeBalanceTxn.source, clearing_id)
        # A fee line's source is the charge it is about: what the ledger moved for that charge
        # is not the fee. A fee is in the ledger only once posted for it (matched_entry_id).
        ledger_sum = case((StripeBalanceTxn.type.in_(FEE_TYPES), None), else_=ledger_sum)
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
    tell_differences(coop, counts.get("mismatch", 0) + counts.get("missing_ledger", 0))
    return {"matched": counts.get("matched", 0), "mismatch": counts.get("mismatch", 0),
            "missing_ledger": counts.get("missing_ledger", 0),
            "released": counts.get("released", 0), "explained": counts.get("explained", 0),
            "suggested": suggested,
            "fees_posted": fees["count"], "fees_minor": fees["total"]}


def tell_differences(coop, count: int, now: datetime | None = None) -> None:
    """Tell the coop's treasurers that reconciliation (Stripe's or the bank's) found `count`
    differences to look at: once a day per coop, whatever the number of runs."""
    if count <= 0:
        return
    day = (now or utcnow()).date().isoformat()
    for user_id in coop_services.staff_ids(coop.id, "treasurer"):
        messages.notify(user_id, "treasurer.reconciliation", event=f"reconcile:{coop.id}:{day}",
                        coop_id=coop.id, count=count, coop=coop.name,
                        link=f"/manage/coops/{coop.id}/treasury/reconciliation")


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
        audit.record(coop.id, user, "treasury.fees_posted", "coop", coop.id, {},
                     {"count": count, "total_minor": total})
    return {"count": count, "total": total}


def _confirmed_entry_ids(coop):
    return select(StripeBalanceTxn.matched_entry_id).where(
        StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.matched_entry_id.is_not(None))


def _candidate_entries(coop, clearing_id) -> dict[int, list[tuple[datetime, int]]]:
    """Posted entries through stripe_clearing with no external reference (a capture that lost
    its charge id, a refund recorded by hand), not a fee and not confirmed to another
    transaction: amount -> [(date, entry id)]."""
    rows = ledger_queries.unreferenced_through(coop, clearing_id, _confirmed_entry_ids(coop))
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
    clearing_id = ledger_queries.account_id(coop, "stripe_clearing")
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
    return ledger_queries.sum_on_account(
        entry_id, ledger_queries.account_id(coop, "stripe_clearing"))


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
    audit.record(coop.id, user, "treasury.match_confirmed", "stripe_txn", txn.txn_id, before,
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
    audit.record(coop.id, user, "treasury.difference_explained", "stripe_txn", txn.txn_id,
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
    # The fee's own id as reference: a fee line about a charge must not add to what the
    # ledger moved for that charge (its source), or the charge would no longer match.
    entry = ledger.post(coop, key=f"stripe_fee:{txn.txn_id}", kind="card_fee", user=user,
                        external_ref=txn.txn_id, effective_on=txn.created,
                        memo=f"Stripe {txn.type} {txn.txn_id}",
                        lines=[ledger.debit("card_fees", amount),
                               ledger.credit("stripe_clearing", amount)])
    before = {"status": txn.status}
    txn.matched_entry_id = entry.id
    txn.suggested_entry_id = None
    txn.ledger_amount_minor = _clearing_amount(coop, entry.id)
    txn.status = "matched" if txn.ledger_amount_minor == txn.amount_minor else "mismatch"
    db.session.flush()
    audit.record(coop.id, user, "treasury.fee_posted", "stripe_txn", txn.txn_id, before,
                 {"status": txn.status, "matched_entry_id": entry.id, "amount_minor": amount})
    return txn
