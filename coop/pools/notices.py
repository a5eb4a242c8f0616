"""What the pools tell buyers and managers, each in the transaction of the event it is about
(coop/messages: one message per event, person and channel, however often it is replayed).

Buyers: a hold placed, a pool confirmed and the card captured, a pool that did not fill (the
hold released), a pool closing in 24 hours, a new pool of a crop they bought before (news:
only to those who opted in). Managers: a pool reached its minimum, a pool closes tomorrow
short of it."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import distinct, select

from ..common.models import utcnow
from ..cooperatives import services as coops
from ..extensions import db
from ..jobs import services as jobs
from ..messages import services as messages
from ..messages.services import Kg, Label, Money
from .models import Order, Pool


def _pool_name(pool: Pool) -> str:
    return f"#{pool.id}"


def _order_link(order: Order) -> str:
    return "/my/orders"


def _crop(pool: Pool) -> Label:
    return Label("crop", pool.crop.slug)


def hold_placed(order: Order, committed_g: int | None = None) -> None:
    """The card hold of `order` is in place (placed, changed, or found by the resolver): the
    buyer is told the amount held and until when; the pool's managers, once, when the pool
    reaches its minimum (`committed_g`: the pool's total as the order's grams were reserved,
    when the caller knows it)."""
    pool = order.pool
    hold_told(order_id=order.id, user_id=order.user_id,
              payment_intent_id=order.payment_intent_id, amount_minor=order.amount_authorized_minor,
              currency=order.currency, grams=order.quantity_g, pool_id=pool.id,
              coop_id=pool.coop_id, closes_at=pool.closes_at, min_g=pool.min_g,
              committed_g=committed_g)


def hold_told(*, order_id: int, user_id: int, payment_intent_id: str, amount_minor: int,
              currency: str, grams: int, pool_id: int, coop_id: int, closes_at: datetime,
              min_g: int, committed_g: int | None = None) -> None:
    """`hold_placed` from plain values (placing an order loads no objects): one job, in the
    transaction that records the hold, writes the buyer's message and, while nobody was told
    of the pool's minimum yet, the managers' (`tell_hold`, on a worker: the order's request
    spends one INSERT on telling, not the look-ups, the rendering and the writes)."""
    jobs.enqueue_many("pools.tell_hold", [{
        "order_id": order_id, "user_id": user_id, "payment_intent_id": payment_intent_id,
        "amount_minor": amount_minor, "currency": currency, "grams": grams,
        "pool_id": pool_id, "coop_id": coop_id, "closes_at": closes_at.isoformat(),
        "min_g": min_g, "committed_g": committed_g}], coop_id=coop_id)


@jobs.task("pools.tell_hold")
def tell_hold(*, order_id: int, user_id: int, payment_intent_id: str, amount_minor: int,
              currency: str, grams: int, pool_id: int, coop_id: int, closes_at: str,
              min_g: int, committed_g: int | None = None) -> None:
    """The buyer's message for a hold (once per order and PaymentIntent, however often the
    job runs: messages are unique per event, person and channel), and the managers', once,
    when the pool's total as this order was reserved (`committed_g`; None: as it stands now)
    reached its minimum."""
    closes = datetime.fromisoformat(closes_at)
    messages.notify_many([messages.Notice(
        user_id, "buyer.hold_placed", f"order:{order_id}:hold:{payment_intent_id}",
        {"amount": Money(amount_minor, currency), "kg": Kg(grams), "pool": f"#{pool_id}",
         "closes": closes, "link": "/my/orders"})], coop_id=coop_id)
    if committed_g is None:
        committed_g = db.session.scalar(select(Pool.committed_g).where(Pool.id == pool_id))
    event = f"pool:{pool_id}:minimum"
    if committed_g >= min_g > 0 and not messages.told(event):
        messages.notify_many([messages.Notice(
            manager_id, "manager.pool_minimum", event,
            {"pool": f"#{pool_id}", "kg": Kg(committed_g), "link": f"/manage/pools/{pool_id}"})
            for manager_id in coops.staff_ids(coop_id, "manager")], coop_id=coop_id)


def captured(order: Order, amount_minor: int) -> None:
    pool = order.pool
    price = pool.final_price_per_kg_minor
    messages.notify(order.user_id, "buyer.captured", event=f"order:{order.id}:captured",
                    coop_id=pool.coop_id, amount=Money(amount_minor, order.currency),
                    kg=Kg(order.quantity_g), pool=_pool_name(pool),
                    price=Money(price or 0, order.currency), link=_order_link(order))


def released(order: Order) -> None:
    """The pool did not fill (or was called off): the hold is released, nothing charged."""
    pool = order.pool
    messages.notify(order.user_id, "buyer.released", event=f"order:{order.id}:released",
                    coop_id=pool.coop_id,
                    amount=Money(order.amount_authorized_minor, order.currency),
                    pool=_pool_name(pool), link=_order_link(order))


def settled(pool: Pool, captured: list, cancelled: list) -> None:
    """What `captured` and `released` tell, for a settled pool's rows (id, user_id,
    currency, quantity_g, amount_due_minor, amount_authorized_minor): all of them in one pass
    (messages.notify_many), their sending enqueued in batches."""
    price = Money(pool.final_price_per_kg_minor or 0, pool.currency)
    name = _pool_name(pool)
    messages.notify_many(
        [messages.Notice(row.user_id, "buyer.captured", f"order:{row.id}:captured", {
            "amount": Money(row.amount_due_minor, row.currency), "kg": Kg(row.quantity_g),
            "pool": name, "price": price, "link": "/my/orders"}) for row in captured]
        + [messages.Notice(row.user_id, "buyer.released", f"order:{row.id}:released", {
            "amount": Money(row.amount_authorized_minor, row.currency), "pool": name,
            "link": "/my/orders"}) for row in cancelled],
        coop_id=pool.coop_id)


def pool_opened(pool: Pool) -> None:
    """A job tells the buyers of this crop (the fan-out runs on a worker, not in the request
    that opened the pool)."""
    jobs.enqueue("pools.announce", key=f"pool-announce:{pool.id}", coop_id=pool.coop_id,
                 pool_id=pool.id)


@jobs.task("pools.announce")
def announce(pool_id: int) -> None:
    """News of a new pool to every person who ordered this crop before and opted in."""
    pool = db.session.get(Pool, pool_id)
    if pool is None or pool.status != "open":
        return
    from ..pricing import services as pricing
    price = pricing.highest(pool.price)
    user_ids = db.session.scalars(
        select(distinct(Order.user_id)).join(Pool, Pool.id == Order.pool_id)
        .where(Pool.crop_id == pool.crop_id, Pool.id != pool.id,
               Order.status.in_(("authorized", "captured"))))
    written = []
    for user_id in user_ids:
        written += messages.notify(user_id, "buyer.new_pool", event=f"pool:{pool.id}:new",
                                   coop_id=pool.coop_id, send=False, crop=_crop(pool),
                                   coop=pool.coop.name, kg=Kg(pool.max_g),
                                   price=Money(price.buyer, pool.currency),
                                   closes=pool.closes_at, link=f"/pools/{pool.id}")
    messages.send_batches([m for m in written if m.status == "queued" and m.attempts == 0],
                          coop_id=pool.coop_id)
    db.session.commit()


def remind(now: datetime | None = None) -> int:
    """Pools closing within 24 hours: their buyers are told (once), and their managers when
    the pool is still short of its minimum (once). Returns how many pools were looked at."""
    now = now or utcnow()
    soon = list(db.session.scalars(select(Pool).where(
        Pool.status == "open", Pool.closes_at > now,
        Pool.closes_at <= now + timedelta(hours=24))))
    for pool in soon:
        needed = max(0, pool.min_g - pool.committed_g)
        buyers = db.session.scalars(select(distinct(Order.user_id)).where(
            Order.pool_id == pool.id, Order.status == "authorized"))
        for user_id in buyers:
            messages.notify(user_id, "buyer.pool_closing", event=f"pool:{pool.id}:closing",
                            coop_id=pool.coop_id, pool=_pool_name(pool), kg=Kg(needed),
                            closes=pool.closes_at, link=f"/pools/{pool.id}")
        if needed > 0:
            for manager_id in coops.staff_ids(pool.coop_id, "manager"):
                messages.notify(manager_id, "manager.pool_short", event=f"pool:{pool.id}:short",
                                coop_id=pool.coop_id, pool=_pool_name(pool),
                                kg=Kg(pool.committed_g), min=Kg(pool.min_g),
                                closes=pool.closes_at, link=f"/manage/pools/{pool.id}")
    return len(soon)
