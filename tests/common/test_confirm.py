"""The confirmation step before irreversible money actions (coop/common/confirm.py): for each
action the first POST changes nothing and shows the figures; "Yes" acts; a missing, forged,
tampered, other user's or stale confirmation does not act; CSRF still holds; the API still acts
in one call."""
from __future__ import annotations

import base64
import io
from decimal import Decimal
from html import unescape

import pytest
from babel.numbers import format_currency
from sqlalchemy import func, select

from coop.extensions import db
from coop.intake import services as intake
from coop.intake.models import Intake, Refund
from coop.listings.models import Listing
from coop.payments import gateway
from coop.payouts import services as payouts
from coop.payouts.models import PayoutBatch, PayoutLine
from coop.pools import services as pools
from coop.pools.models import Order, Pool
from coop.pricing import services as pricing
from coop.treasury.models import YearEndClose
from tests.support import KEEP
from tests.support.confirm import confirm, confirmation, is_confirmation
from tests.support.intake import stripe_refunds
from tests.plugins.payouts import bank_confirmation as bank_file
from tests.plugins.year_end import YEAR

pytestmark = pytest.mark.usefixtures("ledger_sound")

VISA = "pm_card_visa"


def money(minor: int, currency: str = "COP", locale: str = "en") -> str:
    return format_currency(Decimal(minor) / 100, currency, locale=locale)


def client_as(app, user, lang="en"):
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = lang
    with client.session_transaction() as session:
        session["lang"] = lang
        if user is not None:
            session["_user_id"] = user.get_id()  # "<id>:<session version>"
            session["login_factor"] = "password"
            session["_fresh"] = True
    return client


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def db_state() -> dict:
    db.session.rollback()
    db.session.expire_all()
    return {t.name: sorted(repr(tuple(r)) for r in db.session.execute(select(t)).all())
            for t in db.metadata.sorted_tables if t.name not in KEEP}


def refused_confirmations(client, first, tamper: dict, before: dict) -> None:
    """Each bad "Yes" shows the confirmation again and changes nothing."""
    for changes, notice in [({"confirm_token": None}, None),
                            ({"confirm_token": "forged"}, "no longer valid"),
                            (tamper, "do not match")]:
        again = confirm(client, first, **changes)
        assert is_confirmation(again), (changes, again.status_code, text(again)[:800])
        if notice:
            assert notice in text(again), changes
        assert db_state() == before, (changes, "acted without a valid confirmation")


# ---------------------------------------------------------------- orders

def test_joining_a_pool_shows_the_hold_first_and_holds_only_on_yes(app, market, stripe_clean):
    pool = market.open_pool()
    client = client_as(app, market.buyers[0])
    before = db_state()
    first = client.post(f"/pools/{pool.id}", data={"quantity_kg": "120.5",
                                                   "payment_method": VISA})
    assert is_confirmation(first)
    held = pricing.amount_for(pricing.highest(pool.price).buyer, 120_500)
    page = text(first)
    assert f"120.5 kg = {money(held)} held" in page and "Place this order?" in page
    assert f'href="/pools/{pool.id}"' in first.get_data(as_text=True)  # Back
    assert db_state() == before
    refused_confirmations(client, first, {"quantity_kg": "400"}, before)
    # Another buyer cannot use this buyer's confirmation.
    url, fields = confirmation(first)
    other = client_as(app, market.buyers[1]).post(url, data=dict(fields))
    assert is_confirmation(other) and db_state() == before
    done = confirm(client, first)
    assert done.status_code == 302 and done.headers["Location"].endswith("/my/orders")
    order = db.session.scalar(select(Order))
    assert (order.status, order.quantity_g, order.amount_authorized_minor) == (
        "authorized", 120_500, held)
    assert gateway.retrieve(order.payment_intent_id).status == "requires_capture"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    # A second tap on the same "Yes" is the same order, not a second hold.
    assert confirm(client, first).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1


def test_the_order_confirmation_reads_in_spanish(app, market, stripe_clean):
    pool = market.open_pool()
    first = client_as(app, market.buyers[0], "es").post(
        f"/pools/{pool.id}", data={"quantity_kg": "100", "payment_method": VISA})
    held = pricing.amount_for(pricing.highest(pool.price).buyer, 100_000)
    page = text(first)
    assert f"100 kg = {money(held, locale='es')} retenidos" in page
    assert "Sí, retener el monto en mi tarjeta" in page and "Volver" in page


def test_a_bad_order_is_refused_on_the_first_post_without_a_confirmation(app, market,
                                                                        stripe_clean):
    pool = market.open_pool()
    response = client_as(app, market.buyers[0]).post(
        f"/pools/{pool.id}", data={"quantity_kg": "600", "payment_method": VISA})
    assert response.status_code == 409 and not is_confirmation(response)
    assert "Only 500 kg is left" in text(response).replace("500.000", "500")


def test_changing_and_withdrawing_an_order_ask_first(app, market, stripe_clean):
    pool = market.open_pool()
    order = pools.place_order(market.buyers[0], pool.id, quantity_kg="100",
                              payment_method=VISA)[0]
    db.session.commit()
    intent = order.payment_intent_id
    client = client_as(app, market.buyers[0])
    before = db_state()
    first = client.post(f"/my/orders/{order.id}/change", data={"quantity_kg": "150"})
    assert is_confirmation(first)
    price = pricing.highest(pool.price).buyer
    page = text(first)
    assert f"Now: 100 kg, {money(order.amount_authorized_minor)} held." in page
    assert f"150 kg = {money(pricing.amount_for(price, 150_000))} held" in page
    assert db_state() == before and gateway.retrieve(intent).status == "requires_capture"
    refused_confirmations(client, first, {"quantity_kg": "10"}, before)
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert order.quantity_g == 150_000 and gateway.retrieve(intent).status == "canceled"

    before = db_state()
    first = client.post(f"/my/orders/{order.id}/withdraw")
    assert is_confirmation(first)
    assert (f"150 kg withdrawn; {money(order.amount_authorized_minor)} released on your card"
            in text(first))
    assert db_state() == before
    assert gateway.retrieve(order.payment_intent_id).status == "requires_capture"
    refused_confirmations(client, first, {"extra": "1"}, before)
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert order.status == "released"
    assert gateway.retrieve(order.payment_intent_id).status == "canceled"


# ---------------------------------------------------------------- pools

def test_closing_shows_each_buyers_capture_and_the_farmers_then_captures_on_yes(
        app, market, stripe_clean):
    pool = market.open_pool(min_kg="100", max_kg="500")
    a = pools.place_order(market.buyers[0], pool.id, quantity_kg="250", payment_method=VISA)[0]
    b = pools.place_order(market.buyers[1], pool.id, quantity_kg="150", payment_method=VISA)[0]
    db.session.commit()
    client = client_as(app, market.manager)
    before = db_state()
    first = client.post(f"/manage/pools/{pool.id}/close")
    assert is_confirmation(first)
    preview = pools.preview_close(pool.id)
    db.session.rollback()
    assert preview.outcome == "confirmed" and len(preview.farmers) == 3
    page = text(first)
    assert (f"The pool goes ahead: {money(preview.capture_minor)} will be captured from 2 "
            f"buyers' cards." in page)
    for effect in preview.buyers:
        assert effect.buyer in page and money(effect.capture_minor) in page
    for farmer in market.farmers:
        assert farmer.name in page
    assert db_state() == before
    for order in (a, b):
        assert gateway.retrieve(order.payment_intent_id).status == "requires_capture"
    refused_confirmations(client, first, {"extra": "1"}, before)

    # Another order arrives before "Yes": the figures changed, so it asks again.
    pools.place_order(market.buyers[1], pool.id, quantity_kg="10", payment_method=VISA)
    db.session.commit()
    stale = confirm(client, first)
    assert is_confirmation(stale) and "The figures changed" in text(stale)
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "open"
    expected = pools.preview_close(pool.id)
    db.session.rollback()
    assert len(expected.buyers) == 3 and money(expected.capture_minor) in text(stale)
    done = confirm(client, stale)
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "confirmed"
    captured = db.session.scalar(select(func.sum(Order.amount_captured_minor)))
    assert captured == expected.capture_minor
    assert gateway.retrieve(a.payment_intent_id).status == "succeeded"


def test_closing_below_the_minimum_says_the_pool_fails(app, market, stripe_clean):
    pool = market.open_pool(min_kg="300")
    order = pools.place_order(market.buyers[0], pool.id, quantity_kg="40",
                              payment_method=VISA)[0]
    db.session.commit()
    client = client_as(app, market.manager)
    first = client.post(f"/manage/pools/{pool.id}/close")
    page = text(first)
    assert "the pool fails" in page and money(order.amount_authorized_minor) in page
    assert db.session.get(Pool, pool.id).status == "open"
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "failed"


def test_cancelling_shows_the_holds_released_then_cancels_on_yes(app, market, stripe_clean):
    pool = market.open_pool()
    order = pools.place_order(market.buyers[0], pool.id, quantity_kg="40",
                              payment_method=VISA)[0]
    db.session.commit()
    client = client_as(app, market.manager)
    before = db_state()
    first = client.post(f"/manage/pools/{pool.id}/cancel")
    assert is_confirmation(first)
    assert (f"Nobody pays: {money(order.amount_authorized_minor)} held on 1 buyer's card is "
            f"released." in text(first))
    assert db_state() == before
    assert gateway.retrieve(order.payment_intent_id).status == "requires_capture"
    refused_confirmations(client, first, {"extra": "1"}, before)
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "cancelled"
    assert gateway.retrieve(order.payment_intent_id).status == "canceled"
    # The close token of a pool cannot cancel another one.
    other = market.open_pool(min_kg="10", max_kg="50")
    first = client.post(f"/manage/pools/{other.id}/close")
    url, fields = confirmation(first)
    client.post(f"/manage/pools/{other.id}/cancel", data=dict(fields))
    db.session.expire_all()
    assert db.session.get(Pool, other.id).status == "open"


# ---------------------------------------------------------------- intake

def test_a_short_delivery_shows_each_buyers_refund_first(app, sold):
    allocation = sold.alloc[0]   # 50 kg sold
    client = client_as(app, sold.manager)
    url = f"/manage/allocations/{allocation.id}/intake"
    data = {"received_kg": "40", "grade": "sca85", "idempotency_key": "k-1"}
    before = db_state()
    first = client.post(url, data=data)
    assert is_confirmation(first)
    preview = intake.preview_intake(sold.manager, allocation.id, received_kg="40",
                                    grade="sca85")
    db.session.rollback()
    assert preview.refund_minor > 0 and len(preview.refunds) == 2
    page = text(first)
    assert f"{money(preview.refund_minor)} is refunded to 2 buyers' cards." in page
    assert "accepted: 40 kg; short: 10 kg" in page
    for refund in preview.refunds:
        assert refund.buyer in page and money(refund.amount_minor) in page
    assert db_state() == before
    assert not any(stripe_refunds(o.payment_intent_id) for o in sold.orders)
    refused_confirmations(client, first, {"received_kg": "30"}, before)
    done = confirm(client, first)
    assert done.status_code == 302
    refunds = {r.order_id: r.amount_minor for r in db.session.scalars(select(Refund))}
    assert refunds == {r.order_id: r.amount_minor for r in preview.refunds}
    for o in sold.orders:
        assert [r["amount"] for r in stripe_refunds(o.payment_intent_id)] == [refunds[o.id]]


def test_a_full_delivery_refunds_nobody_and_records_in_one_step(app, sold):
    allocation = sold.alloc[1]   # 100 kg sold
    response = client_as(app, sold.manager).post(
        f"/manage/allocations/{allocation.id}/intake",
        data={"received_kg": "100", "grade": "sca85", "idempotency_key": "k-2"})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Intake.id))) == 1
    assert db.session.scalar(select(func.count(Refund.id))) == 0


# ---------------------------------------------------------------- listings

def test_withdrawing_a_harvest_asks_first(app, market):
    listing = market.listings[0]
    client = client_as(app, market.farmers[0])
    before = db_state()
    first = client.post(f"/my/listings/{listing.id}/withdraw")
    assert is_confirmation(first) and "100 kg" in text(first)
    assert db_state() == before
    refused_confirmations(client, first, {"extra": "1"}, before)
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).status == "withdrawn"


# ---------------------------------------------------------------- payouts

def test_making_a_batch_shows_lines_and_totals_per_rail_first(app, world):
    client = client_as(app, world.treasurer)
    url = f"/manage/coops/{world.coop.id}/payout-batches"
    before = db_state()
    first = client.post(url, data={"rail": "", "idempotency_key": "b-1"})
    assert is_confirmation(first)
    page = text(first)
    assert f"3 lines, {money(250_000_50)} to pay" in page and "3 farmers" in page
    for rail, amount in (("Nequi", 150_000_00), ("Bank account", 80_000_50),
                         ("Cash", 20_000_00)):
        assert rail in page and money(amount) in page
    assert db_state() == before
    refused_confirmations(client, first, {"rail": "nequi"}, before)
    done = confirm(client, first)
    assert done.status_code == 302
    batch = db.session.scalar(select(PayoutBatch))
    assert batch.total_minor == 250_000_50 and len(batch.lines) == 3
    # The same form again (a second click on "Yes"): the first batch, not a second.
    assert confirm(client, first).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == 1


def test_importing_confirmations_shows_what_is_marked_paid_or_failed_first(app, world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    lines = {line.rail: line for line in batch.lines}
    body = bank_file((lines["nequi"].id, "paid", "NQ-7"), (lines["bank"].id, "failed", "x"))
    client = client_as(app, world.treasurer)
    url = f"/manage/payout-batches/{batch.id}/confirmations"
    before = db_state()
    first = client.post(url, data={"file": (io.BytesIO(body.encode()), "c.csv")},
                        content_type="multipart/form-data")
    assert is_confirmation(first)
    page = text(first)
    assert f"1 line marked paid: {money(150_000_00)}" in page and "NQ-7" in page
    assert f"1 line marked failed: {money(80_000_50)} is due again" in page
    assert world.nequi.name in page and world.bank.name in page
    assert db_state() == before
    other = bank_file((lines["nequi"].id, "failed", "x"))
    refused_confirmations(client, first, {"content": base64.b64encode(other.encode()).decode()},
                          before)
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert db.session.get(PayoutLine, lines["nequi"].id).status == "paid"
    assert db.session.get(PayoutLine, lines["bank"].id).status == "failed"
    # Pasted text goes through the same step.
    pasted = client.post(url, data={"text": bank_file((lines["cash"].id, "paid", "R-1"))})
    assert is_confirmation(pasted) and "1 line marked paid" in text(pasted)
    assert confirm(client, pasted).status_code == 302
    db.session.expire_all()
    assert db.session.get(PayoutLine, lines["cash"].id).status == "paid"


def test_the_api_still_makes_a_batch_in_one_call(world, client, token):
    headers = token(world.treasurer)
    response = client.post(f"/api/v1/coops/{world.coop.id}/payout-batches", json={},
                           headers=headers)
    assert response.status_code == 201
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == 1


# ---------------------------------------------------------------- year-end

def test_approving_the_year_end_asks_first_and_again_if_the_figures_change(app, coop_year):
    c = coop_year
    c.intake(c.farmers[0], 100_000, 10_000)
    db.session.commit()
    client = client_as(app, c.treasurer)
    url = f"/manage/coops/{c.coop.id}/treasury/year-end/close"
    before = db_state()
    first = client.post(url, data={"year": YEAR, "expected_surplus": 10_000})
    assert is_confirmation(first)
    assert f"Surplus: {money(10_000)}" in text(first)
    assert db_state() == before
    refused_confirmations(client, first, {"extra": "1"}, before)
    c.intake(c.farmers[1], 100_000, 5_000)  # more income in the year before "Yes"
    db.session.commit()
    stale = confirm(client, first)
    assert stale.status_code == 302  # refused: the figures changed since the preview
    assert db.session.scalar(select(func.count()).select_from(YearEndClose)) == 0
    again = client.post(url, data={"year": YEAR, "expected_surplus": 15_000})
    assert is_confirmation(again) and f"Surplus: {money(15_000)}" in text(again)
    assert confirm(client, again).status_code == 302
    assert db.session.scalar(select(YearEndClose.surplus_minor)) == 15_000


# ---------------------------------------------------------------- CSRF

def test_yes_still_needs_the_csrf_token(other_app, market):
    import re
    strict = other_app(WTF_CSRF_ENABLED=True)
    listing = market.listings[0]
    client = client_as(strict, market.farmers[0])
    page = client.get("/my/listings").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    url = f"/my/listings/{listing.id}/withdraw"
    assert client.post(url).status_code == 400
    first = client.post(url, data={"csrf_token": csrf})
    assert is_confirmation(first)
    before = db_state()
    assert confirm(client, first, csrf_token=None).status_code == 400
    assert confirm(client, first, csrf_token="forged").status_code == 400
    assert db_state() == before
    assert confirm(client, first).status_code == 302
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).status == "withdrawn"


# ---------------------------------------------------------------- query counts

def test_the_close_confirmation_costs_the_same_queries_with_more_buyers(app, market, make_buyer,
                                                                       count_queries):
    pool = market.open_pool(min_kg="1", max_kg="500")
    client = client_as(app, market.manager)
    price = pricing.highest(pool.price).buyer

    def add_orders(n):
        for _ in range(n):
            user = make_buyer()
            db.session.add(Order(pool_id=pool.id, buyer_id=user.buyer_id, user_id=user.id,
                                 quantity_g=1_000, status="authorized", currency="COP",
                                 payment_method=VISA, payment_intent_id=f"pi_{user.id}",
                                 amount_authorized_minor=pricing.amount_for(price, 1_000)))
            db.session.get(Pool, pool.id).committed_g += 1_000
        db.session.commit()

    def cost():
        client.post(f"/manage/pools/{pool.id}/close")  # warm up
        db.session.expire_all()
        with count_queries() as counter:
            response = client.post(f"/manage/pools/{pool.id}/close")
        assert is_confirmation(response)
        return counter.count, text(response)

    add_orders(2)
    few, _page = cost()
    add_orders(20)
    many, page = cost()
    assert "22 buyers' cards" in page
    assert many == few, (few, many)
