"""The figures of the `sold` market (tests/plugins/market.py) and helpers of intake tests."""
from __future__ import annotations

from coop.extensions import db
from coop.pools.models import Order
from coop.pricing import services as pricing

VISA = "pm_card_visa"
PRICE = 3_204_000      # buyer price per kg at 300 kg: 28,000 + 8% (2,240) + 1,800 premium
FARMER = 2_800_000
PREMIUM = 180_000


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
