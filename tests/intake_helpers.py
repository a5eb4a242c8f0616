"""Shared set-up for intake and share tests: a confirmed, captured pool from `market`."""
from __future__ import annotations

import pytest

from coop.extensions import db
from coop.ledger import services as ledger
from coop.pools import services as pools
from coop.pools.models import Order
from coop.pricing import services as pricing
from tests.pool_helpers import market  # noqa: F401

VISA = "pm_card_visa"
PRICE = 3_204_000      # buyer price per kg at 300 kg: 28,000 + 8% (2,240) + 1,800 premium
FARMER = 2_800_000
PREMIUM = 180_000


@pytest.fixture(autouse=True)
def _ledger_sound():
    """Every scenario leaves a ledger whose balances recompute from its postings."""
    yield
    db.session.rollback()
    assert ledger.check() == []


@pytest.fixture
def sold(market, stripe_clean):
    """Buyer 0 orders 200 kg, buyer 1 100 kg; closing allocates 50, 100 and 150 kg to the
    three farmers (listed 100, 200, 300) and captures 3,204,000 minor units a kg."""
    pool = market.open_pool(min_kg="100", max_kg="500")
    market.orders = [pools.place_order(market.buyers[0], pool.id, quantity_kg="200",
                                       payment_method=VISA)[0],
                     pools.place_order(market.buyers[1], pool.id, quantity_kg="100",
                                       payment_method=VISA)[0]]
    market.pool = pools.close_pool(pool.id)
    assert market.pool.status == "confirmed"
    assert market.pool.final_price_per_kg_minor == PRICE
    allocations = pools.pool_allocations(pool.id)
    market.allocations = {a.farmer_user_id: a for a in allocations}
    market.alloc = [market.allocations[f.id] for f in market.farmers]
    assert [a.quantity_g for a in market.alloc] == [50_000, 100_000, 150_000]
    db.session.commit()
    return market


def price_grade(m, grade, farmer_price):
    pricing.set_price(m.coop, m.manager, crop="coffee", grade=grade, floor="1000",
                      farmer_price=farmer_price, commission_kind="bps", commission="800",
                      premium="1800")
    db.session.commit()


def order(order_id) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def stripe_refunds(intent_id) -> list[dict]:
    """The refunds the sandbox holds for a PaymentIntent (id, amount)."""
    from coop.payments import gateway
    page = gateway._v1().refunds.list(params={"payment_intent": intent_id, "limit": 100})
    return [gateway._as_dict(r) for r in page.auto_paging_iter()]
