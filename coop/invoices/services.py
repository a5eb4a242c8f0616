"""Invoices and credit notes: the coop's invoice settings, the buyers' billing details, issuing
(one invoice per captured order, in bulk, in the capture's transaction; one credit note per
refund), the authority's acceptance codes, and the lists.

Prices on Minga are what the card is charged: the taxes of the coop's settings are included
in them (the invoice shows the net, the tax and the total, which is what was captured).
Every function flushes and never commits: the caller's unit of work (or the settlement's
recorded step) commits the documents with the captures and ledger entries they belong to."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, insert, select, text

from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.models import utcnow
from ..common.numbers import NumberInputError, PERCENT_EXAMPLE, PERCENT_FORMAT, parse_number
from ..extensions import db
from . import numbering, taxids
from .models import KINDS, BuyerBilling, Invoice, InvoiceAcceptance, InvoiceSettings

MAX_TAX_BPS = 10_000
# Authorised numbering ranges: whole numbers of up to 15 digits (DIAN's run to 10 digits).
MAX_RANGE_NUMBER = Decimal(10) ** 15 - 1
WHOLE_EXAMPLE = Decimal(5000)
_invoices = Invoice.__table__


# ------------------------------------------------------------------------- coop settings

def settings_of(coop_id: int) -> InvoiceSettings | None:
    return db.session.scalar(select(InvoiceSettings).where(InvoiceSettings.coop_id == coop_id))


def numbering_of(row: InvoiceSettings | None) -> dict:
    return json.loads(row.numbering_json or "{}") if row else {}


def tax_rates_of(row: InvoiceSettings | None) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads(row.tax_rates_json or "{}").items()} if row else {}


def _whole(text, field: str, problems: dict, *, low: int = 1, locale=None) -> int | None:
    """A whole number typed in the page's locale ("5.000" in Colombia, "5,000" in Peru);
    a fraction ("1,5"), letters or a number out of range is a problem on `field`."""
    if str(text or "").strip() == "":
        return None
    message = _("Give a whole number, such as 1 or 5000.")
    try:
        value = parse_number(str(text), locale, example=WHOLE_EXAMPLE, fmt="#,##0",
                             maximum=MAX_RANGE_NUMBER)
    except NumberInputError:
        problems.setdefault(field, []).append(message)
        return None
    if value != value.to_integral_value() or value < low:
        problems.setdefault(field, []).append(message)
        return None
    return int(value)


def parse_tax_rate(text, locale=None) -> int:
    """A percentage typed in the page's locale ("19", "19,5" in Colombia) -> basis points;
    0 is allowed. ValueError with a message for anything else."""
    try:
        value = parse_number(text, locale, example=PERCENT_EXAMPLE, fmt=PERCENT_FORMAT)
    except NumberInputError as exc:
        raise ValueError(exc.message)
    bps = value * 100
    if bps != bps.to_integral_value() or not 0 <= bps <= MAX_TAX_BPS:
        raise ValueError(_("A tax rate is a percentage from 0 to 100 with at most two "
                           "decimals."))
    return int(bps)


def save_settings(coop, user, *, legal_name: str, tax_id: str, address: str,
                  ranges: dict[str, dict], tax_rates: dict[str, str], locale=None
                  ) -> InvoiceSettings:
    """The coop's invoice settings. `ranges`: kind -> {prefix, from, to, resolution,
    resolution_on (date or None)} as typed; `tax_rates`: crop slug -> percentage as typed.
    Refuses (422, every problem at its field): an empty legal name or address, a tax id that
    is not a valid NIT (Colombia, DIAN check digit) or RUC (Peru, 11 digits and check digit),
    a range whose end is before its start or behind the numbers already given, a tax rate
    outside 0..100 %. Nothing is written when anything is refused."""
    problems: dict[str, list] = {}
    legal_name, address = (legal_name or "").strip(), (address or "").strip()
    if not legal_name:
        problems["legal_name"] = [_("Give the coop's legal name as registered.")]
    if not address:
        problems["address"] = [_("Give the coop's registered address.")]
    normal_id = taxids.normalise(coop.country, tax_id)
    if normal_id is None:
        problems["tax_id"] = [{
            "CO": _("Not a valid NIT: write its digits and check digit, such as 900123456-8."),
            "PE": _("Not a valid RUC: 11 digits, such as 20100070970."),
        }.get(coop.country, _("Give the coop's tax id."))]
    parsed: dict[str, dict] = {}
    for kind in KINDS:
        typed = ranges.get(kind) or {}
        prefix = (typed.get("prefix") or "").strip().upper()
        if len(prefix) > 10 or not all(ch.isalnum() or ch == "-" for ch in prefix):
            problems.setdefault(f"{kind}_prefix", []).append(
                _("Up to 10 letters, digits or hyphens."))
        start = _whole(typed.get("from"), f"{kind}_from", problems, locale=locale) or 1
        end = _whole(typed.get("to"), f"{kind}_to", problems, locale=locale)
        if end is not None and end < start:
            problems.setdefault(f"{kind}_to", []).append(
                _("The range must end at or after its first number."))
        parsed[kind] = {"prefix": prefix or numbering.DEFAULT_PREFIX[kind], "from": start,
                        "to": end, "resolution": (typed.get("resolution") or "").strip()[:200],
                        "resolution_on": typed.get("resolution_on")}
    rates: dict[str, int] = {}
    for slug, typed in (tax_rates or {}).items():
        if str(typed or "").strip() == "":
            continue
        try:
            rates[slug] = parse_tax_rate(typed, locale)
        except ValueError as exc:
            problems.setdefault(f"tax_{slug}", []).append(str(exc))
    if problems:
        raise ValidationFailed(_("Some invoice settings need correcting."), fields=problems)
    row = settings_of(coop.id)
    if row is None:
        row = InvoiceSettings(coop_id=coop.id)
        db.session.add(row)
    row.legal_name, row.tax_id, row.address = legal_name, normal_id, address
    row.tax_rates_json = json.dumps(rates, sort_keys=True)
    row.numbering_json = json.dumps({k: {**v, "resolution_on": v["resolution_on"].isoformat()
                                         if v["resolution_on"] else None}
                                     for k, v in parsed.items()}, sort_keys=True)
    row.updated_by_id, row.updated_at = getattr(user, "id", None), utcnow()
    for kind, v in parsed.items():
        numbering.configure(coop.id, kind, prefix=v["prefix"], range_from=v["from"],
                            range_to=v["to"], resolution=v["resolution"],
                            resolution_on=v["resolution_on"])
    db.session.flush()
    return row


def warning_threshold() -> int:
    return int(current_app.config.get("INVOICE_RANGE_WARNING", 100))


def range_warnings(coop_id: int) -> list[tuple[str, int]]:
    """(kind, numbers left) for each kind whose authorised range has fewer than the
    INVOICE_RANGE_WARNING setting left: what the treasurer is warned of."""
    found = []
    for kind in KINDS:
        left = numbering.remaining(coop_id, kind)
        if left is not None and left < warning_threshold():
            found.append((kind, left))
    return found


def check_room(coop_id: int, kind: str, n: int) -> None:
    """Refuses (409 numbering_range_exhausted) before a pool is confirmed whose `n` captures
    would not fit in what is left of the authorised range."""
    left = numbering.remaining(coop_id, kind)
    if left is not None and n > left:
        raise Conflict(_("Only %(left)s invoice numbers are left in the authorised range, "
                         "and this needs %(n)s: record the new resolution and range in the "
                         "invoice settings first.", left=left, n=n),
                       code="numbering_range_exhausted")


# -------------------------------------------------------------------- buyer billing details

def billing_of(buyer_id: int | None) -> BuyerBilling | None:
    if not buyer_id:
        return None
    return db.session.scalar(select(BuyerBilling).where(BuyerBilling.buyer_id == buyer_id))


def billing_given(buyer_id):
    """The rule "this buyer has given its billing details" as an SQL EXISTS, for `buyer_id`
    a value or a bound parameter (None: false). The order path folds it into a statement it
    runs anyway (coop/pools/core.py, the pool's facts), so the check costs no statement; a
    buyer without billing details places no order (require_billing)."""
    return select(BuyerBilling.id).where(BuyerBilling.buyer_id == buyer_id).exists()


def has_billing(buyer_id: int | None) -> bool:
    if not buyer_id:
        return False
    return bool(db.session.scalar(select(billing_given(buyer_id))))


def require_billing(buyer_id: int | None, *, given: bool | None = None) -> None:
    """Refuses (422 billing_details_required) an order of a buyer without billing details.
    `given`: what billing_given answered in the caller's own statement (else asked here)."""
    if given is None:
        given = has_billing(buyer_id)
    if not given:
        raise ValidationFailed(_("Give your organisation's billing details (legal name, tax "
                                 "id, country, address) before your first order."),
                               code="billing_details_required")


def save_billing(buyer_id: int, *, legal_name: str, tax_id: str, country: str,
                 address: str) -> BuyerBilling:
    """The buyer's billing details, made or changed. Refuses (422, at the fields) an empty
    name, tax id or address, a country that is not two letters, a Colombian NIT or Peruvian
    RUC whose check digit is wrong. Invoices already issued keep what they were issued with."""
    problems: dict[str, list] = {}
    legal_name, address = (legal_name or "").strip(), (address or "").strip()
    country = (country or "").strip().upper()
    if not legal_name or len(legal_name) > 200:
        problems["legal_name"] = [_("Give your organisation's legal name.")]
    if not address or len(address) > 300:
        problems["address"] = [_("Give your organisation's billing address.")]
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        problems["country"] = [_("Choose a country.")]
    normal = taxids.normalise(country, tax_id) if not problems.get("country") else None
    if normal is None:
        problems["tax_id"] = [_("Not a valid tax id for this country (Colombia: NIT with its "
                                "check digit; Peru: RUC of 11 digits).")]
    if problems:
        raise ValidationFailed(_("Some billing details need correcting."), fields=problems)
    row = billing_of(buyer_id)
    if row is None:
        row = BuyerBilling(buyer_id=buyer_id)
        db.session.add(row)
    row.legal_name, row.tax_id, row.country, row.address = legal_name, normal, country, address
    row.updated_at = utcnow()
    db.session.flush()
    return row


# ------------------------------------------------------------------------------ issuing

def _seller(coop, row: InvoiceSettings | None = None) -> dict:
    row = row or settings_of(coop.id)
    return {"name": row.legal_name if row else (coop.legal_name or coop.name),
            "trade_name": coop.name,
            "tax_id": row.tax_id if row else (coop.tax_id or ""),
            "address": row.address if row else coop.region,
            "country": coop.country}


def _customers(buyer_ids) -> dict[int, dict]:
    """buyer id -> the customer party of an invoice: the billing details, else the buyer's
    organisation and country (one query)."""
    from ..auth.models import Buyer
    ids = sorted(set(buyer_ids))
    if not ids:
        return {}
    found = {}
    for row in db.session.execute(
            select(Buyer.id, Buyer.organisation, Buyer.country, BuyerBilling.legal_name,
                   BuyerBilling.tax_id, BuyerBilling.country.label("billing_country"),
                   BuyerBilling.address)
            .outerjoin(BuyerBilling, BuyerBilling.buyer_id == Buyer.id)
            .where(Buyer.id.in_(ids))):
        if row.legal_name is not None:
            found[row.id] = {"name": row.legal_name, "tax_id": row.tax_id,
                             "country": row.billing_country, "address": row.address}
        else:
            found[row.id] = {"name": row.organisation, "tax_id": "",
                             "country": row.country or "", "address": ""}
    return found


def _display_rates(currency: str, order_ids, day: date) -> dict[int, dict]:
    """order id -> {"fx": {"currency", "rate", "on"}}: the rate of the day from the coop's
    currency to the display currency the ordering buyer chose (EUR, USD), kept with the
    invoice as information (the invoice is in the coop's currency); nothing for a buyer who
    chose the coop's own, or without a fresh rate (fx.services.rate_on). One query."""
    from ..auth.models import User
    from ..fx import services as fx
    from ..pools.models import Order
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    out, found = {}, {}
    for order_id, wanted in db.session.execute(
            select(Order.id, User.display_currency).join(User, User.id == Order.user_id)
            .where(Order.id.in_(ids), User.display_currency.is_not(None))):
        if not wanted or wanted == currency:
            continue
        if wanted not in found:
            found[wanted] = fx.rate_on(currency, wanted, day)
        if found[wanted] is not None:
            rate, on = found[wanted]
            out[order_id] = {"fx": {"currency": wanted, "rate": str(rate),
                                    "on": on.isoformat()}}
    return out


def indicative_total(invoice: Invoice) -> tuple[int, str, Decimal, date] | None:
    """The document's total in the buyer's display currency at the rate kept with it
    (minor units, currency, rate, the rate's day), rounded half up; None without one."""
    from ..fx.services import convert
    fx = json.loads(invoice.customer_json or "{}").get("fx")
    if not fx:
        return None
    rate = Decimal(fx["rate"])
    return (convert(invoice.total_minor, invoice.currency, fx["currency"], rate),
            fx["currency"], rate, date.fromisoformat(fx["on"]))


def _split_tax(total: int, bps: int) -> tuple[int, int]:
    """(net, tax) of a tax-inclusive amount, the net rounded half up."""
    if not bps:
        return total, 0
    net = (total * 10_000 * 2 + (10_000 + bps)) // (2 * (10_000 + bps))
    return net, total - net


@dataclass(frozen=True)
class Capture:
    """What settlement recorded of one captured hold."""
    order_id: int
    buyer_id: int
    quantity_g: int
    amount_minor: int
    charge_id: str | None


def _pool_facts(pool, conf: InvoiceSettings | None, buyer_ids=()) -> tuple[dict, dict]:
    """The line's facts of a pool's sale (crop, grade, lot, price breakdown, tax rate), and
    buyer id -> the DDS reference each buyer recorded for the pool's lot."""
    from ..lots.eudr_models import DdsReference
    from ..lots.models import Lot
    from ..pricing import services as pricing
    price = pricing.breakdown(pool.price, pool.committed_g)
    dds: dict[int, str] = {}
    lot_code = ""
    for code, buyer_id, reference in db.session.execute(
            select(Lot.code, DdsReference.buyer_id, DdsReference.reference)
            .outerjoin(DdsReference, (DdsReference.lot_id == Lot.id)
                       & DdsReference.buyer_id.in_(sorted(set(buyer_ids)) or [0]))
            .where(Lot.pool_id == pool.id)):
        lot_code = code
        if buyer_id is not None:
            dds[buyer_id] = reference
    rates = tax_rates_of(conf)
    return ({"crop": pool.crop.slug, "crop_en": pool.crop.name_en,
             "crop_es": pool.crop.name_es, "grade": pool.grade.code,
             "grade_en": pool.grade.name_en, "grade_es": pool.grade.name_es,
             "pool_id": pool.id, "lot": lot_code,
             "unit_price_minor": pool.final_price_per_kg_minor or price.buyer,
             "farmer_minor": price.farmer, "commission_minor": price.commission,
             "premium_minor": price.premium, "tax_bps": rates.get(pool.crop.slug, 0)}, dds)


def _number_rows(coop_id: int, kind: str, rows: list[dict]) -> None:
    """Give `rows` the next numbers of the kind, in order: one counter UPDATE for all."""
    counter = numbering.take(coop_id, kind, len(rows))
    for n, row in enumerate(rows):
        row.update(prefix=counter.prefix, number=counter.first + n,
                   range_from=counter.range_from, range_to=counter.range_to,
                   resolution=counter.resolution, resolution_on=counter.resolution_on)


def _insert(rows: list[dict]) -> dict[str, int]:
    """Insert the documents (one executemany with RETURNING); source_key -> id."""
    if not rows:
        return {}
    return {key: inv_id for inv_id, key in db.session.execute(
        insert(_invoices).returning(_invoices.c.id, _invoices.c.source_key), rows)}


def _existing(coop_id: int, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    return dict(db.session.execute(select(Invoice.source_key, Invoice.id).where(
        Invoice.coop_id == coop_id, Invoice.source_key.in_(keys))).all())


class PendingInvoices:
    """Invoices built and given their ids, numbered and inserted by `issue()`: the caller
    writes what points at them first (the ledger's entries) and issues last, so that the
    counter's row lock is held only from its UPDATE to the commit right after."""

    def __init__(self, coop_id: int, ids: dict[int, int], rows: list[dict]):
        self.coop_id, self.ids, self.rows = coop_id, ids, rows

    def issue(self) -> None:
        if self.rows:
            _number_rows(self.coop_id, "invoice", self.rows)
            _insert(self.rows)
            self.rows = []


def prepare_invoices(coop, pool, captures: list[Capture], *, now: datetime | None = None
                     ) -> PendingInvoices:
    """The invoices of these captured orders (one per order; an order invoiced already keeps
    its invoice), with their ids (order id -> invoice id), to be issued by `.issue()` in the
    same transaction. PostgreSQL: the ids come from the table's sequence, numbering waits for
    `.issue()`; SQLite (one writer at a time anyway): issued at once."""
    if not captures:
        return PendingInvoices(coop.id, {}, [])
    now = now or utcnow()
    keys = {c.order_id: f"order:{c.order_id}" for c in captures}
    found = _existing(coop.id, list(keys.values()))
    todo = [c for c in captures if keys[c.order_id] not in found]
    rows = []
    if todo:
        conf = settings_of(coop.id)
        facts, dds = _pool_facts(pool, conf, [c.buyer_id for c in todo])
        seller = json.dumps(_seller(coop, conf), sort_keys=True)
        customers = _customers(c.buyer_id for c in todo)
        rates = _display_rates(coop.currency, [c.order_id for c in todo], now.date())
        for c in todo:
            net, tax = _split_tax(c.amount_minor, facts["tax_bps"])
            line = {**facts, "dds": dds.get(c.buyer_id, ""), "quantity_g": c.quantity_g,
                    "net_minor": net, "tax_minor": tax, "total_minor": c.amount_minor}
            rows.append({"coop_id": coop.id, "kind": "invoice", "source_key": keys[c.order_id],
                         "issued_at": now, "currency": coop.currency, "subtotal_minor": net,
                         "tax_minor": tax, "total_minor": c.amount_minor,
                         "buyer_id": c.buyer_id, "farmer_user_id": None,
                         "order_id": c.order_id, "pool_id": pool.id, "refund_id": None,
                         "credits_invoice_id": None, "week_start": None,
                         "payment": f"card {c.charge_id or ''}".strip(), "paid_at": now,
                         "seller_json": seller,
                         "customer_json": json.dumps(
                             {**customers[c.buyer_id], **rates.get(c.order_id, {})},
                             sort_keys=True),
                         "lines_json": json.dumps([line], sort_keys=True)})
    pending = PendingInvoices(coop.id, {}, rows)
    if rows and db.session.connection().dialect.name == "postgresql":
        ids = list(db.session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('invoices', 'id')) "
            "FROM generate_series(1, :n)"), {"n": len(rows)}))
        for row, inv_id in zip(rows, ids):
            row["id"] = inv_id
            found[row["source_key"]] = inv_id
    elif rows:
        _number_rows(coop.id, "invoice", rows)
        found.update(_insert(rows))
        pending.rows = []
    pending.ids = {c.order_id: found[keys[c.order_id]] for c in captures}
    _tell_accounts(coop, pool, todo, pending.ids)
    return pending


def _tell_accounts(coop, pool, captures: list[Capture], ids: dict[int, int]) -> None:
    """An e-mail to each buyer's accounts users (else its admins) for each new invoice, with
    its link, in the invoices' transaction (messages: once per invoice and person)."""
    from ..auth import services as auth
    from ..messages import services as messages
    from ..messages.services import Money
    if not captures:
        return
    people = auth.invoice_recipients(c.buyer_id for c in captures)
    messages.notify_many([
        messages.Notice(user_id, "buyer.invoice_issued", f"invoice:{ids[c.order_id]}", {
            "order": f"#{c.order_id}", "pool": f"#{pool.id}",
            "amount": Money(c.amount_minor, coop.currency),
            "link": f"/my/invoices/{ids[c.order_id]}"})
        for c in captures for user_id in people.get(c.buyer_id, [])],
        coop_id=coop.id, channel="email")


def issue_for_captures(coop, pool, captures: list[Capture], *, now: datetime | None = None
                       ) -> dict[int, int]:
    """One invoice per captured order (order id -> invoice id), in the caller's transaction:
    a handful of statements for any number of orders, the numbers taken as one block. An
    order already invoiced keeps its invoice (a replay issues nothing). Refuses (409
    numbering_range_exhausted) when the block does not fit in the authorised range."""
    pending = prepare_invoices(coop, pool, captures, now=now)
    pending.issue()
    return pending.ids


def invoice_of_order(order_id: int) -> Invoice | None:
    return db.session.scalar(select(Invoice).where(Invoice.kind == "invoice",
                                                   Invoice.order_id == order_id))


def issue_credit_note(coop, *, refund_id: int, order_id: int, amount_minor: int,
                      reason: str, now: datetime | None = None) -> int:
    """The credit note of a refund, pointing at the order's invoice (its lines, seller and
    customer as that invoice has them), in the caller's transaction. Once per refund: a
    replay returns the first one's id. Refuses (409) past the authorised range."""
    key = f"refund:{refund_id}"
    found = _existing(coop.id, [key])
    if found:
        return found[key]
    now = now or utcnow()
    invoice = invoice_of_order(order_id)
    if invoice is not None:
        lines = json.loads(invoice.lines_json)
        seller, customer = invoice.seller_json, invoice.customer_json
        buyer_id, pool_id = invoice.buyer_id, invoice.pool_id
        bps = lines[0].get("tax_bps", 0) if lines else 0
    else:  # an order captured before invoicing began: the parties as they are now
        from ..pools.models import Order
        order = db.session.get(Order, order_id)
        facts, _dds = _pool_facts(order.pool, settings_of(coop.id))
        lines = [facts]
        seller = json.dumps(_seller(coop), sort_keys=True)
        customer = json.dumps(_customers([order.buyer_id])[order.buyer_id], sort_keys=True)
        buyer_id, pool_id, bps = order.buyer_id, order.pool_id, facts["tax_bps"]
    net, tax = _split_tax(amount_minor, bps)
    base = lines[0] if lines else {}
    line = {**base, "quantity_g": None, "reason": reason, "net_minor": net, "tax_minor": tax,
            "total_minor": amount_minor}
    row = {"coop_id": coop.id, "kind": "credit_note", "source_key": key, "issued_at": now,
           "currency": coop.currency, "subtotal_minor": net, "tax_minor": tax,
           "total_minor": amount_minor, "buyer_id": buyer_id, "farmer_user_id": None,
           "order_id": order_id, "pool_id": pool_id, "refund_id": refund_id,
           "credits_invoice_id": invoice.id if invoice else None, "week_start": None,
           "payment": "card refund", "paid_at": now, "seller_json": seller,
           "customer_json": customer, "lines_json": json.dumps([line], sort_keys=True)}
    _number_rows(coop.id, "credit_note", [row])
    return _insert([row])[key]


# -------------------------------------------------------------------------- acceptance

def acceptance_codes(invoice_ids) -> dict[int, str]:
    ids = list(invoice_ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(InvoiceAcceptance.invoice_id, InvoiceAcceptance.code)
                                   .where(InvoiceAcceptance.invoice_id.in_(ids))).all())


def record_acceptance(coop, user, invoice_id: int, code: str) -> InvoiceAcceptance:
    """The authority's acceptance code (CUFE, CDR) of one of the coop's documents, once.
    Refuses: another coop's document 404, an empty or over-long code 422, a document that
    has one already 409 (recording the same code again changes nothing)."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.coop_id != coop.id:
        raise NotFound(_("No such document."))
    code = (code or "").strip()
    if not code or len(code) > 200 or not code.isascii() or not code.isprintable():
        raise ValidationFailed(_("Give the acceptance code as the authority sent it."),
                               fields={"code": [_("Up to 200 letters and digits.")]})
    existing = db.session.scalar(select(InvoiceAcceptance)
                                 .where(InvoiceAcceptance.invoice_id == invoice_id))
    if existing is not None:
        if existing.code == code:
            return existing
        raise Conflict(_("This document's acceptance code is recorded already."),
                       code="acceptance_recorded")
    row = InvoiceAcceptance(invoice_id=invoice_id, code=code, recorded_by_id=user.id)
    db.session.add(row)
    db.session.flush()
    return row


def import_acceptances(coop, user, data: bytes) -> dict:
    """A CSV file of `number,code` lines (the number as printed, prefix and all). Records
    every line it can; returns {"recorded": n, "unchanged": n, "problems": [(line, why)]}.
    Nothing is recorded when the file is not CSV text."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(_("The file is not UTF-8 text."),
                               fields={"file": [_("Upload a CSV file: number,code.")]})
    numbers = {}
    for kind, prefix, number, inv_id in db.session.execute(
            select(Invoice.kind, Invoice.prefix, Invoice.number, Invoice.id)
            .where(Invoice.coop_id == coop.id)):
        numbers[f"{prefix}{number}".upper()] = inv_id
    recorded = unchanged = 0
    problems = []
    have = acceptance_codes(numbers.values())
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:  # a NUL byte, an over-long field: not a CSV of codes
        raise ValidationFailed(_("The file is not a CSV file of number,code lines."),
                               fields={"file": [_("Upload a CSV file: number,code.")]})
    for n, row in enumerate(rows, start=1):
        if not row or (n == 1 and row[0].strip().lower() == "number"):
            continue
        if len(row) < 2:
            problems.append((n, _("Two columns expected: number,code.")))
            continue
        inv_id = numbers.get(row[0].strip().upper())
        if inv_id is None:
            problems.append((n, _("No document numbered %(n)s.", n=row[0].strip()[:40])))
            continue
        code = row[1].strip()
        if have.get(inv_id) == code:
            unchanged += 1
            continue
        try:
            with db.session.begin_nested():
                record_acceptance(coop, user, inv_id, code)
            have[inv_id] = code
            recorded += 1
        except (ValidationFailed, Conflict) as exc:
            problems.append((n, exc.message))
    return {"recorded": recorded, "unchanged": unchanged, "problems": problems[:50]}


# ------------------------------------------------------------------------------ reading

def lines_of(invoice: Invoice) -> list[dict]:
    return json.loads(invoice.lines_json)


def party(text: str) -> dict:
    return json.loads(text)


def buyer_document(user, invoice_id: int) -> Invoice:
    """One of the buyer's own documents; anyone else's is 404."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or not user.buyer_id or invoice.buyer_id != user.buyer_id:
        raise NotFound(_("No such document."))
    return invoice


def coop_document(coop, invoice_id: int) -> Invoice:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.coop_id != coop.id:
        raise NotFound(_("No such document."))
    return invoice


def farmer_document(user, invoice_id: int) -> Invoice:
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.farmer_user_id != user.id:
        raise NotFound(_("No such document."))
    return invoice


def buyer_documents(buyer_id: int, *, limit: int, after_id: int | None = None) -> list[Invoice]:
    """The buyer's documents, newest first, `limit` of them after the cursor's id."""
    stmt = select(Invoice).where(Invoice.buyer_id == buyer_id)
    if after_id is not None:
        stmt = stmt.where(Invoice.id < after_id)
    return list(db.session.scalars(stmt.order_by(Invoice.id.desc()).limit(limit)))


def documents_of_orders(order_ids) -> dict[int, list[Invoice]]:
    """order id -> its invoice and credit notes (My orders' links), one query."""
    ids = list(order_ids)
    found: dict[int, list[Invoice]] = {}
    if not ids:
        return found
    for inv in db.session.scalars(select(Invoice).where(Invoice.order_id.in_(ids))
                                  .order_by(Invoice.id)):
        found.setdefault(inv.order_id, []).append(inv)
    return found


def coop_documents_query(coop_id: int, *, kind: str | None = None, since: date | None = None,
                         until: date | None = None, buyer_id: int | None = None):
    """The select of a coop's documents filtered by kind, period (issue dates, inclusive)
    and buyer, newest first."""
    from datetime import time, timedelta, timezone
    stmt = select(Invoice).where(Invoice.coop_id == coop_id)
    if kind:
        stmt = stmt.where(Invoice.kind == kind)
    if since:
        stmt = stmt.where(Invoice.issued_at >= datetime.combine(since, time(), timezone.utc))
    if until and until < date.max:  # the last day has no day after it: no bound
        stmt = stmt.where(Invoice.issued_at < datetime.combine(until + timedelta(days=1),
                                                               time(), timezone.utc))
    if buyer_id:
        stmt = stmt.where(Invoice.buyer_id == buyer_id)
    return stmt.order_by(Invoice.id.desc())


def counts_by_kind(coop_id: int) -> dict[str, int]:
    return dict(db.session.execute(select(Invoice.kind, func.count()).where(
        Invoice.coop_id == coop_id).group_by(Invoice.kind)).all())


CSV_COLUMNS = ["number", "kind", "issued_at", "buyer", "buyer_tax_id", "farmer_id", "pool_id",
               "order_id", "credits", "currency", "net_minor", "tax_minor", "total_minor",
               "acceptance_code"]


def export_csv(coop_id: int, **filters) -> str:
    """The coop's documents of a period as CSV (one row each, amounts in minor units)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = list(db.session.scalars(coop_documents_query(coop_id, **filters)))
    codes = acceptance_codes(r.id for r in rows)
    credited = {r.id: r.full_number for r in rows}
    missing = {r.credits_invoice_id for r in rows if r.credits_invoice_id
               and r.credits_invoice_id not in credited}
    if missing:
        for inv in db.session.scalars(select(Invoice).where(Invoice.id.in_(missing))):
            credited[inv.id] = inv.full_number
    for r in reversed(rows):
        customer = party(r.customer_json)
        writer.writerow([_safe(r.full_number), r.kind, r.issued_at.isoformat(),
                         _safe(customer.get("name", "")), _safe(customer.get("tax_id", "")),
                         r.farmer_user_id or "", r.pool_id or "", r.order_id or "",
                         credited.get(r.credits_invoice_id, "") if r.credits_invoice_id else "",
                         r.currency, r.subtotal_minor, r.tax_minor, r.total_minor,
                         _safe(codes.get(r.id, ""))])
    return out.getvalue()


def _safe(text: str) -> str:
    """A spreadsheet never runs a cell as a formula."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def decimal_rate(bps: int) -> Decimal:
    return Decimal(bps) / 100


def support_doc_csv(invoice: Invoice) -> str:
    """A purchase document's lines as CSV (one line per delivery), each with the farmer's
    identity document as the document was issued with it (empty: not recorded then)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["number", "issued_at", "week_start", "intake_id", "crop", "grade", "pool_id",
                     "lot", "kg", "unit_price_minor", "total_minor", "currency",
                     "farmer_name", "farmer_id_type", "farmer_id_number"])
    supplier = party(invoice.customer_json)
    farmer = [_safe(supplier.get("name", "")), supplier.get("tax_id_type") or "",
              _safe(supplier.get("tax_id") or "")]
    for line in lines_of(invoice):
        writer.writerow([invoice.full_number, invoice.issued_at.isoformat(),
                         invoice.week_start.isoformat() if invoice.week_start else "",
                         line.get("intake_id", ""), line.get("crop", ""), line.get("grade", ""),
                         line.get("pool_id", ""), _safe(line.get("lot", "")),
                         str(Decimal(line.get("quantity_g") or 0) / 1000),
                         line.get("unit_price_minor", ""), line["total_minor"], invoice.currency,
                         *farmer])
    return out.getvalue()
