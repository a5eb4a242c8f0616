"""The pools' read side for other domains: which Stripe ids are the coop's own orders'."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select

from ..extensions import db
from .models import Order, Pool


def own_stripe_ids(coop_id: int, ids: Iterable[str]) -> set[str]:
    """Those of `ids` that are the PaymentIntent or the charge Minga recorded for an order in
    one of this coop's pools (one query)."""
    ids = [i for i in set(ids) if i]
    if not ids:
        return set()
    rows = db.session.execute(
        select(Order.payment_intent_id, Order.charge_id)
        .join(Pool, Pool.id == Order.pool_id)
        .where(Pool.coop_id == coop_id,
               or_(Order.payment_intent_id.in_(ids), Order.charge_id.in_(ids)))).all()
    wanted = set(ids)
    return {value for row in rows for value in row if value in wanted}
