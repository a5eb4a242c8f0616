"""Invoices issued when settlement captures, credit notes for refunds, the numbering's rules
(contiguous, no gaps, no duplicates, never past the authorised range, nothing burnt by a
rolled-back transaction) and the documents' immutability."""
from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from coop.common.errors import Conflict, ValidationFailed
from coop.extensions import db
from coop.invoices import numbering, services as invoices
from coop.invoices.models import DocumentCounter, Invoice
from coop.ledger.models import LedgerEntry
from coop.pools import services as pools
from tests.support import is_postgres
from tests.support.intake import PRICE, VISA
from tests.support.settle import close_and_settle

pytestmark = pytest.mark.usefixtures("ledger_sound")

RANGES = {"invoice": {"prefix": "SETP", "from": "990", "to": "5000",
                      "resolution": "DIAN 18760000001", "resolution_on": None},
          "credit_note": {"prefix": "NC", "from": "1", "to": "", "resolution": ""},
          "support_doc": {"prefix": "DS", "from": "1", "to": "", "resolution": ""}}


def _configure(market, **changes):
    ranges = {k: dict(v) for k, v in RANGES.items()}
    for kind, values in changes.items():
        ranges[kind].update(values)
    invoices.save_settings(market.coop, market.treasurer, legal_name="Cooperativa Test",
                           tax_id="800.197.268-4", address="Calle 1, Popayán",
                           ranges=ranges, tax_rates={"coffee": "0", "cacao": "19"},
                           locale="es_CO")
    db.session.commit()


def _documents(kind="invoice") -> list[Invoice]:
    db.session.expire_all()
    return list(db.session.scalars(select(Invoice).where(Invoice.kind == kind)
                                   .order_by(Invoice.number)))


def test_each_captured_order_gets_one_invoice_in_sequence_with_its_lines(market, stripe_clean):
    _configure(market)
    invoices.save_billing(
        market.buyers[0].buyer_id, legal_name="Rösterei Hamburg GmbH", tax_id="DE123456789",
        country="DE", address="Speicherstadt 1, Hamburg")
    db.session.commit()
    pool = market.open_pool(min_kg="100", max_kg="500")
    orders = [pools.place_order(market.buyers[0], pool.id, quantity_kg="200",
                                payment_method=VISA)[0],
              pools.place_order(market.buyers[1], pool.id, quantity_kg="100",
                                payment_method=VISA)[0]]
    close_and_settle(pool.id)
    docs = _documents()
    assert [d.full_number for d in docs] == ["SETP990", "SETP991"]
    assert {d.order_id for d in docs} == {o.id for o in orders}
    first = next(d for d in docs if d.order_id == orders[0].id)
    assert first.total_minor == PRICE * 200 and first.tax_minor == 0
    assert first.resolution == "DIAN 18760000001" and first.range_to == 5000
    assert json.loads(first.customer_json)["name"] == "Rösterei Hamburg GmbH"
    assert json.loads(first.seller_json)["tax_id"] == "800197268-4"
    [line] = invoices.lines_of(first)
    assert line["quantity_g"] == 200_000 and line["unit_price_minor"] == PRICE
    assert line["farmer_minor"] + line["commission_minor"] + line["premium_minor"] == PRICE
    assert line["crop"] == "coffee" and line["grade"] == "sca85" and line["pool_id"] == pool.id
    assert first.payment.startswith("card") and first.paid_at is not None
    # The capture's ledger entry points at its invoice.
    entries = dict(db.session.execute(select(LedgerEntry.source_id, LedgerEntry.document_id)
                                      .where(LedgerEntry.kind == "capture")).all())
    assert entries == {d.order_id: d.id for d in docs}
    # A buyer editing the billing details later changes no issued invoice.
    invoices.save_billing(market.buyers[0].buyer_id, legal_name="New Name GmbH",
                          tax_id="DE123456789", country="DE", address="Elsewhere 2")
    db.session.commit()
    again = next(d for d in _documents() if d.order_id == orders[0].id)
    assert json.loads(again.customer_json)["name"] == "Rösterei Hamburg GmbH"


def test_issued_documents_are_never_updated_or_deleted(sold):
    [doc, *_] = _documents()
    with pytest.raises((IntegrityError, DBAPIError)):
        db.session.execute(update(Invoice).where(Invoice.id == doc.id).values(total_minor=1))
        db.session.flush()
    db.session.rollback()
    with pytest.raises((IntegrityError, DBAPIError)):
        db.session.execute(text("DELETE FROM invoices"))
    db.session.rollback()
    assert len(_documents()) == 2


def test_a_coop_without_settings_numbers_from_1_with_the_default_prefix(sold):
    assert [d.full_number for d in _documents()] == ["FV1", "FV2"]


def test_closing_is_refused_before_the_range_runs_out_and_the_treasurer_warned(
        market, stripe_clean, app):
    _configure(market, invoice={"from": "1", "to": "1"})
    assert invoices.range_warnings(market.coop.id) == [("invoice", 1)]
    pool = market.open_pool(min_kg="100", max_kg="500")
    for buyer, kg in ((market.buyers[0], "200"), (market.buyers[1], "100")):
        pools.place_order(buyer, pool.id, quantity_kg=kg, payment_method=VISA)
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        pools.close_pool(pool.id)
    assert refused.value.code == "numbering_range_exhausted"
    db.session.rollback()
    assert pools.get_pool(pool.id).status == "open"
    assert _documents() == []
    # A new resolution's range, and closing goes ahead.
    _configure(market, invoice={"from": "1", "to": "10"})
    close_and_settle(pool.id)
    assert [d.number for d in _documents()] == [1, 2]


def test_the_counter_never_passes_its_range_and_a_new_range_cannot_go_back(market):
    _configure(market, invoice={"from": "7", "to": "8"})
    assert numbering.take(market.coop.id, "invoice", 2).first == 7
    with pytest.raises(Conflict):
        numbering.take(market.coop.id, "invoice", 1)
    db.session.commit()
    with pytest.raises(Conflict):
        _configure(market, invoice={"from": "1", "to": "5"})
    db.session.rollback()
    _configure(market, invoice={"from": "1", "to": "100"})
    assert numbering.take(market.coop.id, "invoice", 1).first == 9  # never given twice


def test_a_rolled_back_transaction_burns_no_number(market):
    _configure(market)
    numbering.take(market.coop.id, "invoice", 5)
    db.session.rollback()  # a crash after numbering, before commit
    assert numbering.take(market.coop.id, "invoice", 1).first == 990


def test_settings_refuse_a_bad_nit_a_bad_range_and_a_bad_tax_rate(market):
    with pytest.raises(ValidationFailed) as refused:
        invoices.save_settings(market.coop, market.treasurer, legal_name="", tax_id="800197268-5",
                               address="x", ranges={"invoice": {"from": "10", "to": "2"}},
                               tax_rates={"coffee": "120"}, locale="es_CO")
    fields = refused.value.fields
    assert {"legal_name", "tax_id", "invoice_to", "tax_coffee"} <= set(fields)
    db.session.rollback()
    assert invoices.settings_of(market.coop.id) is None
    assert invoices.parse_tax_rate("19,5", "es_CO") == 1950
    assert invoices.parse_tax_rate("0", "es_CO") == 0


@pytest.mark.parametrize("locale, typed, expected", [
    ("es_CO", "5.000", 5000), ("es_CO", "5000", 5000), ("es_PE", "5,000", 5000),
    ("en", "5,000", 5000), ("es_CO", "1,5", None), ("es_PE", "1.5", None),
    ("es_CO", "5.00", None), ("es_CO", "diez", None), ("es_CO", "0", None),
    ("es_CO", "-3", None), ("es_CO", "1" * 16, None)])
def test_a_range_is_read_in_the_pages_locale_and_a_fraction_refused(market, locale, typed,
                                                                     expected):
    ranges = {k: dict(v) for k, v in RANGES.items()}
    ranges["invoice"].update({"from": "1", "to": typed})
    if expected is None:
        with pytest.raises(ValidationFailed) as refused:
            invoices.save_settings(market.coop, market.treasurer, legal_name="Coop",
                                   tax_id="800197268-4", address="Calle 1", ranges=ranges,
                                   tax_rates={}, locale=locale)
        assert set(refused.value.fields) == {"invoice_to"}
        db.session.rollback()
        assert invoices.settings_of(market.coop.id) is None
        return
    invoices.save_settings(market.coop, market.treasurer, legal_name="Coop",
                           tax_id="800197268-4", address="Calle 1", ranges=ranges,
                           tax_rates={}, locale=locale)
    db.session.commit()
    assert invoices.numbering_of(invoices.settings_of(market.coop.id))["invoice"]["to"] \
        == expected


def test_the_tax_of_a_crop_is_included_in_what_the_card_paid(market, stripe_clean):
    ranges = {k: dict(v) for k, v in RANGES.items()}
    invoices.save_settings(market.coop, market.treasurer, legal_name="Coop", tax_id="800197268-4",
                           address="Calle 1", ranges=ranges, tax_rates={"coffee": "19"},
                           locale="es_CO")
    db.session.commit()
    pool = market.open_pool(min_kg="100", max_kg="500")
    pools.place_order(market.buyers[0], pool.id, quantity_kg="300", payment_method=VISA)
    close_and_settle(pool.id)
    [doc] = _documents()
    assert doc.subtotal_minor + doc.tax_minor == doc.total_minor == PRICE * 300
    assert doc.tax_minor == PRICE * 300 - round(PRICE * 300 / 1.19)


def test_the_invoice_keeps_the_rate_to_the_buyer_s_display_currency_as_information(
        app, market, stripe_clean):
    from datetime import date
    from decimal import Decimal

    from coop.common.money import exponent
    from coop.fx import services as fx
    from tests.support.auth import client_as
    today = date.today()
    fx.store([fx.Rate(today, "EUR", market.coop.currency, Decimal("4000"))], "test")
    market.buyers[0].display_currency = "EUR"  # the Hamburg roaster thinks in euros
    db.session.commit()
    pool = market.open_pool(min_kg="100", max_kg="500")
    euro = pools.place_order(market.buyers[0], pool.id, quantity_kg="200",
                             payment_method=VISA)[0]
    local = pools.place_order(market.buyers[1], pool.id, quantity_kg="100",
                              payment_method=VISA)[0]
    close_and_settle(pool.id)
    by_order = {d.order_id: d for d in _documents()}
    kept = json.loads(by_order[euro.id].customer_json)["fx"]
    assert kept == {"currency": "EUR", "rate": str(Decimal(1) / Decimal(4000)),
                    "on": today.isoformat()}
    assert "fx" not in json.loads(by_order[local.id].customer_json)
    # Shown as information only, in the coop's currency first: the total at that rate.
    doc = by_order[euro.id]
    cur = market.coop.currency
    euros = (Decimal(doc.total_minor).scaleb(-exponent(cur)) / 4000).quantize(Decimal("0.01"))
    page = client_as(app, market.buyers[0]).get(f"/my/invoices/{doc.id}").get_data(as_text=True)
    assert "For information only" in page and f"€{euros:,.2f}" in page, page
    assert doc.total_minor == euro.amount_due_minor  # charged and invoiced in the coop's
    xml = client_as(app, market.buyers[0]).get(f"/my/invoices/{doc.id}.xml").get_data(
        as_text=True)
    assert "<cbc:TargetCurrencyCode>EUR</cbc:TargetCurrencyCode>" in xml
    assert "<cbc:CalculationRate>0.00025</cbc:CalculationRate>" in xml
    other = client_as(app, market.buyers[1]).get(f"/my/invoices/{by_order[local.id].id}")
    assert "For information only" not in other.get_data(as_text=True)


def test_each_invoice_is_e_mailed_to_the_buyer_s_accounts_users_else_its_admins(
        market, make_user, stripe_clean):
    from coop.messages.models import Message
    clerk = make_user(email="cuentas@roesterei.example", name="Accounts clerk")
    clerk.buyer_id, clerk.buyer_role = market.buyers[0].buyer_id, "accounts"
    db.session.commit()
    pool = market.open_pool(min_kg="100", max_kg="500")
    first = pools.place_order(market.buyers[0], pool.id, quantity_kg="200",
                              payment_method=VISA)[0]
    second = pools.place_order(market.buyers[1], pool.id, quantity_kg="100",
                               payment_method=VISA)[0]
    close_and_settle(pool.id)
    by_order = {d.order_id: d for d in _documents()}
    told = {(m.user_id, m.event): m for m in db.session.scalars(
        select(Message).where(Message.template == "buyer.invoice_issued"))}
    # The first buyer has an accounts user: the invoice goes there, not to the purchaser.
    assert set(told) == {(clerk.id, f"invoice:{by_order[first.id].id}"),
                         (market.buyers[1].id, f"invoice:{by_order[second.id].id}")}
    mail = told[(clerk.id, f"invoice:{by_order[first.id].id}")]
    assert mail.channel == "email" and mail.to_address == "cuentas@roesterei.example"
    assert f"/my/invoices/{by_order[first.id].id}" in mail.body


# ------------------------------------------------------------------- concurrency (threads)

def _issue_in_thread(app, coop_id, n, fail_after_numbering, results, errors, barrier):
    with app.app_context():
        try:
            barrier.wait(timeout=10)
            for attempt in range(3):  # retries, as a job queue's would
                try:
                    counter = numbering.take(coop_id, "invoice", n)
                    if fail_after_numbering and attempt == 0:
                        raise RuntimeError("crash half-way")
                    for k in range(n):
                        db.session.execute(Invoice.__table__.insert().values(
                            coop_id=coop_id, kind="invoice", prefix=counter.prefix,
                            number=counter.first + k,
                            source_key=f"t:{threading.get_ident()}:{attempt}:{k}",
                            currency="COP", subtotal_minor=1, tax_minor=0, total_minor=1,
                            payment="", range_from=1, resolution="", seller_json="{}",
                            customer_json="{}", lines_json="[]",
                            issued_at=db.func.now()))
                    db.session.commit()
                    results.append((counter.first, n))
                    break
                except RuntimeError:
                    db.session.rollback()
        except Exception as exc:  # shown by the assertion
            errors.append(repr(exc))
        finally:
            db.session.remove()


@pytest.mark.skipif(not is_postgres(), reason="concurrent writers need PostgreSQL")
def test_concurrent_issuers_crashes_and_retries_leave_contiguous_unique_numbers(app, market):
    _configure(market, invoice={"from": "1", "to": "100000"})
    results, errors = [], []
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    threads = [threading.Thread(target=_issue_in_thread,
                                args=(app, market.coop.id, 5 + i, i % 3 == 0, results, errors,
                                      barrier)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    numbers = [d.number for d in _documents()]
    assert numbers == list(range(1, sum(5 + i for i in range(threads_n)) + 1))
    assert db.session.scalar(select(DocumentCounter.next_number).where(
        DocumentCounter.coop_id == market.coop.id,
        DocumentCounter.kind == "invoice")) == len(numbers) + 1


@pytest.mark.skipif(not is_postgres(), reason="concurrent workers need PostgreSQL")
def test_two_pools_closing_at_once_number_their_invoices_without_gap_or_duplicate(
        app, market, stripe_clean, make_listing):
    from coop.pools import settlement
    app.config["SETTLE_CHUNK_SIZE"], saved = 2, app.config.get("SETTLE_CHUNK_SIZE")
    try:
        for f in market.farmers:
            make_listing(f, kg="300")
        first = market.open_pool(min_kg="1", max_kg="500")
        second = market.open_pool(min_kg="1", max_kg="500")
        for pool in (first, second):
            for i in range(5):
                pools.place_order(market.buyers[i % 2], pool.id, quantity_kg="10",
                                  payment_method=VISA)
        db.session.commit()
        pools.close_pool(first.id)
        pools.close_pool(second.id)
        db.session.commit()
        errors = []

        def worker():
            with app.app_context():
                try:
                    settlement.drain(timeout=120)
                except Exception as exc:
                    errors.append(repr(exc))
                finally:
                    db.session.remove()
        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert errors == []
    finally:
        app.config["SETTLE_CHUNK_SIZE"] = saved
    docs = _documents()
    assert [d.number for d in docs] == list(range(1, 11))
    assert len({d.order_id for d in docs}) == 10
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.kind == "capture", LedgerEntry.document_id.is_not(None))) == 10


def test_each_refund_gets_a_credit_note_pointing_at_its_invoice(sold):
    from coop.intake import services as intake
    from coop.intake.models import Refund
    intake.record_intake(sold.manager, sold.alloc[2].id, received_kg="100", grade="sca85",
                         idempotency_key="k1")
    db.session.commit()
    refunds = list(db.session.scalars(select(Refund).where(Refund.status == "succeeded")))
    assert refunds
    notes = _documents("credit_note")
    assert [n.full_number for n in notes] == [f"NC{i}" for i in range(1, len(refunds) + 1)]
    invoice_of = {d.order_id: d.id for d in _documents()}
    for note in notes:
        refund = next(r for r in refunds if r.id == note.refund_id)
        assert note.total_minor == refund.amount_minor
        assert note.credits_invoice_id == invoice_of[refund.order_id]
        assert invoices.lines_of(note)[0]["reason"] == "shortfall"
    entries = dict(db.session.execute(select(LedgerEntry.source_id, LedgerEntry.document_id)
                                      .where(LedgerEntry.kind == "refund")).all())
    assert entries == {n.refund_id: n.id for n in notes}


def test_a_capture_the_webhook_tells_first_gets_one_invoice_and_settlement_none_more(
        market, stripe_clean):
    from coop.pools.models import Order
    from tests.support.settle import settle_now
    pool = market.open_pool(min_kg="100", max_kg="500")
    order, _ = pools.place_order(market.buyers[0], pool.id, quantity_kg="200",
                                 payment_method=VISA)
    db.session.commit()
    pools.close_pool(pool.id)
    db.session.commit()
    intent = db.session.get(Order, order.id).payment_intent_id
    assert pools.apply_payment_intent_event("payment_intent.succeeded", intent) == "captured"
    db.session.commit()
    [doc] = _documents()
    assert doc.order_id == order.id
    assert db.session.scalar(select(LedgerEntry.document_id).where(
        LedgerEntry.kind == "capture", LedgerEntry.source_id == order.id)) == doc.id
    settle_now(pool.id)
    assert [d.id for d in _documents()] == [doc.id]
