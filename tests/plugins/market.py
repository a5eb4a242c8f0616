"""Fixtures of a market: `market` (a coop with prices, farmers with listings, buyers), `sold`
(a pool of it closed and captured), `ledger_sound` (the ledger recomputes after the test)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from coop.common.models import utcnow
from coop.extensions import db
from coop.ledger import services as ledger
from coop.pools import services as pools
from coop.pricing import services as pricing
from tests.support.intake import PRICE, VISA
from tests.support.settle import close_and_settle


@pytest.fixture
def ledger_sound():
    """Every scenario leaves a ledger whose balances recompute from its postings
    (`pytestmark = pytest.mark.usefixtures("ledger_sound")`)."""
    yield
    db.session.rollback()
    assert ledger.check() == []


@pytest.fixture
def market(make_coop, make_user, make_farmer, make_listing, make_buyer):
    """Coop (COP) with coffee sca85 priced 28,000.00 farmer + 8% commission (6% from 1,000 kg)
    + 1,800.00 premium; three farmers listing 100, 200 and 300 kg; two buyers."""
    class Market:
        pass

    m = Market()
    m.treasurer = make_user(name="Tesorera")
    m.coop = make_coop(treasurer=m.treasurer)
    m.manager = next(x.user for x in m.coop.memberships if x.role == "manager")
    pricing.set_price(m.coop, m.manager, crop="coffee", grade="sca85", floor="24000",
                      farmer_price="28000", commission_kind="bps", commission="800",
                      premium="1800", tiers_text="400 600")
    db.session.commit()
    m.farmers = [make_farmer(m.coop) for _ in range(3)]
    m.listings = [make_listing(f, kg=kg) for f, kg in zip(m.farmers, ("100", "200", "300"))]
    m.buyers = [make_buyer(organisation=f"Buyer {i}") for i in range(2)]

    def open_pool(min_kg="100", max_kg="500", days=3, **kw):
        pool = pools.open_pool(m.coop, m.manager, crop="coffee", grade="sca85", min_kg=min_kg,
                               max_kg=max_kg, closes_at=utcnow() + timedelta(days=days), **kw)
        db.session.commit()
        return pool
    m.open_pool = open_pool
    return m


@pytest.fixture
def sold(market, stripe_clean):
    """Buyer 0 orders 200 kg, buyer 1 100 kg; closing allocates 50, 100 and 150 kg to the
    three farmers (listed 100, 200, 300) and captures 3,204,000 minor units a kg."""
    pool = market.open_pool(min_kg="100", max_kg="500")
    market.orders = [pools.place_order(market.buyers[0], pool.id, quantity_kg="200",
                                       payment_method=VISA)[0],
                     pools.place_order(market.buyers[1], pool.id, quantity_kg="100",
                                       payment_method=VISA)[0]]
    market.pool = close_and_settle(pool.id)
    assert market.pool.status == "confirmed"
    assert market.pool.final_price_per_kg_minor == PRICE
    allocations = pools.pool_allocations(pool.id)
    market.allocations = {a.farmer_user_id: a for a in allocations}
    market.alloc = [market.allocations[f.id] for f in market.farmers]
    assert [a.quantity_g for a in market.alloc] == [50_000, 100_000, 150_000]
    db.session.commit()
    return market
