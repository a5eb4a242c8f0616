"""The resolver: brings every order whose card hold's outcome is unknown (or whose worker
died) together with what Stripe holds, and cancels holds no order recorded."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from ..common.models import utcnow
from ..common.statuses import UNSETTLED_ORDER_STATUSES, OrderStatus
from ..common.web import commit_step
from ..extensions import db
from ..payments import gateway
from .models import Order, Pool
from . import notices
from .core import _ledger_hold, _release


# A failed order whose hold the resolver settled (not the card's decline) says so first.
RESOLVED_FAILURE = "resolved:"


# ---------------------------------------------------------------- closing

def _in_flight(pool: Pool) -> int:
    """Orders of the pool whose hold is not settled yet (being placed, or unknown after the
    resolver ran): closing waits for them, never guesses."""
    return int(db.session.scalar(select(func.count(Order.id)).where(
        Order.pool_id == pool.id, Order.status.in_(UNSETTLED_ORDER_STATUSES))) or 0)


# ---------------------------------------------------------------- settling unknown holds
# A card hold lives at Stripe; the order that wanted it lives here. Between the two a worker
# can die, Stripe can stop answering, the database can drop the connection. Every attempt is
# recorded (pending) before Stripe is called, and every PaymentIntent is tagged with its
# order, so the resolver can always bring the two together again:
# - an order pending past the settle time (its worker is gone) or unknown (Stripe did not
#   answer) is looked up at Stripe: by its PaymentIntent id when recorded, else by metadata.
#   It STANDS (authorized) if its pool is still open and taking orders and Stripe holds
#   exactly its amount in its currency (requires_capture); otherwise every PaymentIntent of
#   it is cancelled and the order FAILS (its grams go back). None found: failed, but only
#   once the settle time has passed (a request still on its way, Stripe's search index lag).
# - every live hold at Stripe (requires_capture) tagged with an order that did not record it
#   as authorized is cancelled (a hold that appeared after its order was settled, an old
#   hold a change of quantity could not release).
# Each decision is claimed in the database first (a conditional UPDATE from pending or
# unknown), then carried out at Stripe, so concurrent runs, a placing worker and a replay
# never both record and cancel one hold; a run that dies after its claim is finished by the
# next run's sweep. Idempotent: a second run finds nothing to do.

def settle_after() -> timedelta:
    """How old an attempt must be before "no PaymentIntent found" is trusted and a pending
    order counts as abandoned: HOLD_RESOLVE_AFTER_SECONDS (set it well above the Stripe
    timeout and Stripe's search lag), never shorter than a call to Stripe can last."""
    from flask import current_app
    config = current_app.config
    after = float(config.get("HOLD_RESOLVE_AFTER_SECONDS") or 120)
    timeout = float(config.get("STRIPE_TIMEOUT_SECONDS") or 30)
    return timedelta(seconds=max(after, timeout))


def _settled_after_passed(order: Order, now: datetime) -> bool:
    return now - order.created_at > settle_after()


@dataclass
class Resolution:
    stood: list = field(default_factory=list)      # order ids recorded as authorized
    failed: list = field(default_factory=list)     # order ids failed (their holds cancelled)
    waiting: list = field(default_factory=list)    # order ids left for a later run
    already: list = field(default_factory=list)    # order ids another run settled first
    cancelled: list = field(default_factory=list)  # PaymentIntent ids cancelled


def resolve_holds(pool_id: int | None = None, now: datetime | None = None) -> Resolution:
    """Settle every unknown order and every pending one past the settle time (of one pool,
    or all), then cancel any live hold at Stripe that no authorized order recorded (all
    pools only). Safe to run concurrently and again. A Stripe that does not answer raises
    PaymentError (what was settled before stays settled)."""
    now = now or utcnow()
    stmt = select(Order.id).where(Order.status.in_(UNSETTLED_ORDER_STATUSES)).order_by(Order.id)
    if pool_id is not None:
        stmt = stmt.where(Order.pool_id == pool_id)
    ids = list(db.session.scalars(stmt))
    commit_step()
    result = Resolution()
    for order_id in ids:
        outcome = resolve_order(order_id, now=now, cancelled=result.cancelled)
        getattr(result, outcome).append(order_id)
    if pool_id is None:
        _sweep_live_holds(now, result)
    return result


def resolve_order(order_id: int, now: datetime | None = None,
                  cancelled: list | None = None) -> str:
    """Settle one order whose hold is unknown (or pending past the settle time) against
    Stripe. Returns "stood" or "failed" (this call settled it so), "already" (settled by
    another) or "waiting" (nothing to decide yet)."""
    now = now or utcnow()
    cancelled = cancelled if cancelled is not None else []
    order = db.session.get(Order, order_id)
    if order is None or order.status not in UNSETTLED_ORDER_STATUSES:
        commit_step()
        return "already"
    old_enough = _settled_after_passed(order, now)
    if order.status == OrderStatus.PENDING and not old_enough:
        commit_step()
        return "waiting"  # its worker may still be waiting for Stripe
    pool = order.pool
    recorded = order.payment_intent_id
    expected = (order.amount_authorized_minor, order.currency)
    pool_takes = pool.status == "open" and pool.closes_at > now
    commit_step()
    intents = ([gateway.retrieve(recorded)] if recorded
               else gateway.find_intents("order_id", str(order_id)))
    if not intents and not old_enough:
        return "waiting"  # Stripe's index may not show it yet
    standing = [h for h in intents if h.status == "requires_capture"
                and (h.amount, h.currency) == expected]
    if pool_takes and standing:
        keep = standing[0]
        if _claim_stood(order_id, keep):
            for other in intents:
                if other.id != keep.id:
                    _cancel_intent(other, cancelled)
            return "stood"
        pool_takes = False  # the pool was cancelled meanwhile, or another run settled it
    if not _claim_failed(order_id, "no hold found" if not intents
                         else "hold cancelled: " + ("pool closed" if not pool_takes
                                                    else "not held for the order's amount")):
        return _settled_elsewhere(order_id, intents, cancelled)
    for intent in intents:
        _cancel_intent(intent, cancelled)
    return "failed"


def _settled_elsewhere(order_id: int, intents: list, cancelled: list) -> str:
    """Another run (or the placing worker) settled the order first: cancel what it does not
    keep, and say how it ended."""
    db.session.expire_all()
    order = db.session.get(Order, order_id)
    kept = order.payment_intent_id if order.status == OrderStatus.AUTHORIZED else None
    commit_step()
    for intent in intents:
        if intent.id != kept:
            _cancel_intent(intent, cancelled)
    return "already"


def _in_open_pool(order_id, pool_id=None, dialect: str | None = None):
    """A condition for an order's UPDATE: its pool (`pool_id`, when the caller knows it) is
    still open, so a hold recorded now is captured or cancelled with the pool. On PostgreSQL
    the pool row is locked FOR KEY SHARE by the condition's own sub-select, before the order's
    row (the lock order closing uses): it waits for a close or cancel (FOR UPDATE), then sees
    the pool as that left it, but waits neither for other buyers' reservations nor they for
    it. SQLite serialises writers, and the UPDATE must be the transaction's first statement
    there (a read first could not be upgraded). The ids may be bound parameters (a statement
    built once); `dialect`: the session's unless given."""
    # The tables' columns, not the mapped attributes: a Core UPDATE built on it stays Core
    # (no ORM layer per execution, its cache key kept).
    orders, pool_table = Order.__table__.c, Pool.__table__.c
    of = pool_id if pool_id is not None else \
        select(orders.pool_id).where(orders.id == order_id).scalar_subquery()
    pools = select(pool_table.id).where(pool_table.id == of, pool_table.status == "open")
    if (dialect or db.session.get_bind().dialect.name) == "postgresql":
        pools = pools.with_for_update(read=True, key_share=True)
    return orders.pool_id.in_(pools)


def _claim_stood(order_id: int, hold: gateway.Hold) -> bool:
    result = db.session.execute(
        update(Order).where(Order.id == order_id, Order.status.in_(UNSETTLED_ORDER_STATUSES),
                            _in_open_pool(order_id))
        .values(status=OrderStatus.AUTHORIZED, payment_intent_id=hold.id,
                charge_id=hold.charge_id, failure_message="", updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        order = db.session.get(Order, order_id)
        db.session.refresh(order)
        _ledger_hold(order)
        notices.hold_placed(order)
    commit_step()
    return result.rowcount == 1


def _claim_failed(order_id: int, why: str) -> bool:
    """Fail an unsettled order and give its grams back, in one transaction (the pool row
    first, the lock order closing uses). False if another run settled it first."""
    pool_id = db.session.scalar(select(Order.pool_id).where(Order.id == order_id))
    db.session.execute(select(Pool.id).where(Pool.id == pool_id).with_for_update())
    result = db.session.execute(
        update(Order).where(Order.id == order_id, Order.status.in_(UNSETTLED_ORDER_STATUSES))
        .values(status=OrderStatus.FAILED, failure_message=f"{RESOLVED_FAILURE} {why}"[:255],
                updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        grams = db.session.scalar(select(Order.quantity_g).where(Order.id == order_id))
        _release(pool_id, grams)
    commit_step()
    return result.rowcount == 1


def _cancel_intent(hold: gateway.Hold, cancelled: list) -> None:
    if hold.status in ("canceled", "succeeded"):
        return
    gateway.cancel(hold.id)
    cancelled.append(hold.id)


def _sweep_live_holds(now: datetime, result: Resolution) -> None:
    """Cancel every live hold tagged with an order that did not record it as authorized
    (and is not still being settled), once it is older than the settle time."""
    horizon = (now - settle_after()).timestamp()
    holds = [h for h in gateway.live_holds() if h.metadata.get("order_id", "").isdigit()
             and (h.created or 0) < horizon]
    if not holds:
        return
    ids = {int(h.metadata["order_id"]) for h in holds}
    orders = dict(db.session.execute(select(Order.id, Order).where(Order.id.in_(ids))).all())
    owned = {o.payment_intent_id for o in orders.values()
             if o.status in (OrderStatus.AUTHORIZED, OrderStatus.CAPTURED)}
    # An order waiting for its buyer's card (3-D Secure may take minutes) is not an orphan:
    # its confirmation or the expiry job (coop/pools/cards.py) settles its PaymentIntent.
    unsettled = {o.id for o in orders.values()
                 if o.status in UNSETTLED_ORDER_STATUSES or o.status == OrderStatus.AUTHORIZING}
    commit_step()
    for hold in holds:
        order_id = int(hold.metadata["order_id"])
        if order_id not in orders:
            continue  # not this database's order (another deployment on the same account)
        if hold.id in owned or order_id in unsettled:
            continue
        _cancel_intent(hold, result.cancelled)
