"""Shared set-up for pool tests: a coop with prices, farmers with listings, buyers."""
from __future__ import annotations

from datetime import timedelta

import pytest

from coop.common.models import utcnow
from coop.extensions import db
from coop.pools import services as pools
from coop.pricing import services as pricing


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
