"""The buyer's confirmation racing the expiry job (and the webhook's job) on the same orders,
with real threads, each with its own connection: for every order exactly one wins. Never both
authorized and released; the pool's committed total is always the authorized orders' grams,
never above max_kg; every PaymentIntent left holding belongs to an authorized order."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from coop.common.models import utcnow
from coop.extensions import db
from coop.payments import gateway
from coop.pools import cards
from coop.pools.models import Order, Pool
from tests.support.cards import PK

ORDERS = 12


@pytest.fixture
def card_app(app, stripe_clean):
    saved = app.config.get("STRIPE_PUBLISHABLE_KEY")
    app.config["STRIPE_PUBLISHABLE_KEY"] = PK
    yield stripe_clean
    app.config["STRIPE_PUBLISHABLE_KEY"] = saved


def test_confirmation_and_expiry_race_and_exactly_one_wins(app, market, make_buyer, card_app):
    pool = market.open_pool(min_kg="1", max_kg=str(ORDERS))
    buyers = [make_buyer(organisation=f"Race {n}") for n in range(ORDERS)]
    orders = []
    for buyer in buyers:
        step, _created = cards.place_card_order(buyer, pool.id, quantity_kg="1")
        orders.append(step.order.id)
        # The buyer's bank confirmed the card at Stripe: the hold is in place, its return
        # and its webhook are on their way.
        gateway.confirm_card(step.order.payment_intent_id, "pm_card_visa")
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).committed_g == ORDERS * 1000
    later = utcnow() + timedelta(seconds=901)   # and the expiry job runs past their timeout
    barrier = threading.Barrier(ORDERS * 2 + 1)
    errors: list[str] = []

    def run(fn) -> None:
        with app.app_context():
            db.session.connection()
            barrier.wait(timeout=30)
            try:
                fn()
            except Exception as exc:   # recorded for the assertion below
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(lambda i=i: cards.confirm_card_order(i),))
               for i in orders]
    threads += [threading.Thread(target=run, args=(lambda: cards.expire_card_orders(now=later),))
                for _ in range(ORDERS)]
    threads.append(threading.Thread(target=run, args=(
        lambda: [cards.confirm_card_order(i) for i in reversed(orders)],)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    db.session.expire_all()
    rows = list(db.session.execute(select(Order.id, Order.status, Order.payment_intent_id,
                                          Order.quantity_g).where(Order.pool_id == pool.id)))
    assert {r.status for r in rows} <= {"authorized", "failed"}
    authorized = [r for r in rows if r.status == "authorized"]
    committed = db.session.get(Pool, pool.id).committed_g
    assert committed == sum(r.quantity_g for r in authorized) <= ORDERS * 1000
    for r in rows:
        state = gateway.retrieve(r.payment_intent_id).status
        assert state == ("requires_capture" if r.status == "authorized" else "canceled"), r
    # One pending ledger entry per authorized order, none for the others.
    from coop.ledger.models import LedgerEntry
    for r in rows:
        entries = db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.source_type == "order", LedgerEntry.source_id == r.id))
        assert entries == (1 if r.status == "authorized" else 0), r


def test_a_late_confirmation_against_an_expiry_that_saw_nothing_held(app, market, make_buyer,
                                                                      card_app):
    """The expiry job looked while the bank was still asking (nothing held) and ends the
    order, while the buyer's confirmation arrives with the hold in place: the two conditional
    UPDATEs from authorizing decide, exactly one per order."""
    pool = market.open_pool(min_kg="1", max_kg=str(ORDERS))
    buyers = [make_buyer(organisation=f"Late {n}") for n in range(ORDERS)]
    holds = {}
    for buyer in buyers:
        step, _created = cards.place_card_order(buyer, pool.id, quantity_kg="1")
        holds[step.order.id] = gateway.confirm_card(step.order.payment_intent_id,
                                                    "pm_card_visa")
    barrier = threading.Barrier(ORDERS * 2)
    errors: list[str] = []
    won: dict[str, list[int]] = {"authorized": [], "expired": []}

    def run(fn) -> None:
        with app.app_context():
            db.session.connection()
            barrier.wait(timeout=30)
            try:
                fn()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    def confirm(order_id):
        if cards._authorize(order_id, holds[order_id]):
            won["authorized"].append(order_id)

    def expire(order_id):  # what expire_card_orders does once it saw nothing held
        if cards._end_authorizing(order_id, cards.EXPIRED):
            won["expired"].append(order_id)
            gateway._cancel_quietly(holds[order_id].id)

    threads = []
    for order_id in holds:
        threads += [threading.Thread(target=run, args=(lambda i=order_id: confirm(i),)),
                    threading.Thread(target=run, args=(lambda i=order_id: expire(i),))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(won["authorized"] + won["expired"]) == sorted(holds)   # one each
    db.session.expire_all()
    rows = {r.id: r for r in db.session.execute(select(Order.id, Order.status).where(
        Order.pool_id == pool.id))}
    for order_id, hold in holds.items():
        status = rows[order_id].status
        assert status == ("authorized" if order_id in won["authorized"] else "failed")
        state = gateway.retrieve(hold.id).status
        assert state == ("requires_capture" if status == "authorized" else "canceled")
    assert db.session.get(Pool, pool.id).committed_g == 1000 * len(won["authorized"])
