"""Pools: managers open them, buyers commit quantities backed by card holds, closing confirms
(allocate to farmers pro rata, capture) or fails (cancel every hold).

Commit points. Views normally commit once; placing an order and closing a pool are the
exception, because a card hold lives at Stripe and must never be awaited inside a database
transaction (row locks would be held for the length of a network call). They run as short
steps, each committed, and each recorded so that a crash and a rerun finish the work without
holding, capturing or allocating twice."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..catalog import services as catalog
from ..common.apportion import largest_remainder
from ..common.errors import Conflict, DomainError, Forbidden, NotFound, PaymentDeclined, ValidationFailed
from ..common.idempotency import fingerprint as request_fingerprint, replay_or_refuse, write_or_find
from ..common.locks import supply_lock
from ..common.models import utcnow
from ..common.quantities import QuantityError, parse_kg
from ..common.statuses import (LIVE_ORDER_STATUSES, SUPPLY_LISTING_STATUSES,
                               UNSETTLED_ORDER_STATUSES, UNSOLD_POOL_STATUSES, OrderStatus)
from ..common.web import commit_step
from ..cooperatives import verification
from ..extensions import db
from ..ledger import services as ledger
from ..listings import services as listing_services
from ..listings.models import Listing
from ..payments import gateway
from ..pricing import services as pricing
from .models import Allocation, Order, Pool

MAX_OPEN_DAYS = 7          # card holds last 7 days for customer-initiated payments
REPLAY_WAIT_SECONDS = 3.0  # a replay of an order still being placed waits this long for it
# A failed order whose hold the resolver settled (not the card's decline) says so first.
RESOLVED_FAILURE = "resolved:"


# ---------------------------------------------------------------- supply reserved by pools

def reserved_g(coop_id: int, crop_id: int, grade_id: int, exclude_pool: int | None = None) -> int:
    """Grams open pools may still take from listings: each open pool's max_kg."""
    stmt = select(func.coalesce(func.sum(Pool.max_g), 0)).where(
        Pool.coop_id == coop_id, Pool.crop_id == crop_id, Pool.grade_id == grade_id,
        Pool.status == "open")
    if exclude_pool:
        stmt = stmt.where(Pool.id != exclude_pool)
    return int(db.session.scalar(stmt) or 0)


def register_supply_reservation() -> None:
    """Tell listings how much supply open pools hold (called once by create_app)."""
    listing_services.register_supply_reservation(reserved_g)


def lock_pool(pool_id: int) -> None:
    """Take the write lock on a pool's row until the transaction ends (an UPDATE that
    changes nothing takes it on both databases), so two intakes of one pool never split the
    same deposits."""
    db.session.execute(update(Pool).where(Pool.id == pool_id)
                       .values(allocated_g=Pool.allocated_g)
                       .execution_options(synchronize_session=False))


def record_refunded(order_id: int, amount_minor: int) -> None:
    """Add a refund that Stripe made to what the order has had refunded, in one
    UPDATE (atomic on both databases)."""
    db.session.execute(update(Order).where(Order.id == order_id)
                       .values(amount_refunded_minor=Order.amount_refunded_minor
                               + amount_minor, updated_at=utcnow())
                       .execution_options(synchronize_session=False))


def free_supply_g(coop_id: int, crop_id: int, grade_id: int) -> int:
    """Listed, uncommitted grams that no open pool has reserved yet."""
    return listing_services.uncommitted_supply(coop_id, crop_id, grade_id) \
        - reserved_g(coop_id, crop_id, grade_id)


# ---------------------------------------------------------------- opening

def _kg_text(grams: int) -> str:
    """Kilograms in a message, written the reader's way ("1.200,5" in es_CO, not "1200.500")."""
    from ..common.numbers import KG_FORMAT, format_number
    from ..common.quantities import grams_to_decimal
    return format_number(grams_to_decimal(grams), KG_FORMAT)


def _grams(value, field: str) -> int:
    try:
        return parse_kg(value)
    except QuantityError as exc:
        raise ValidationFailed(str(exc), fields={field: [str(exc)]})


def parse_closes_at(value, now: datetime) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value or "").strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed(_("Give the closing time as a date and time."),
                                   fields={"closes_at": [_("Not a date and time.")]})
    if moment.tzinfo is None:
        raise ValidationFailed(_("The closing time needs a time zone offset."),
                               fields={"closes_at": [_("Add an offset such as +00:00.")]})
    if moment <= now:
        raise ValidationFailed(_("The closing time is in the past."),
                               fields={"closes_at": [_("In the past.")]})
    if moment > now + timedelta(days=MAX_OPEN_DAYS):
        raise ValidationFailed(_("A pool closes within 7 days: card holds last 7 days."),
                               fields={"closes_at": [_("More than 7 days ahead.")]})
    return moment


def open_pool(coop, user, *, crop: str, grade: str, min_kg, max_kg, closes_at,
              now: datetime | None = None) -> Pool:
    """Open a pool at the current price. Refuses max_kg above the free listed supply, a
    closing time past or more than 7 days ahead, min above max, or no price set."""
    verification.require_verified(coop)  # a pending coop sets itself up, opens no pool
    now = now or utcnow()
    crop_row, grade_row = catalog.resolve(crop, grade)
    min_g, max_g = _grams(min_kg, "min_kg"), _grams(max_kg, "max_kg")
    if min_g > max_g:
        raise ValidationFailed(_("The minimum cannot be above the maximum."),
                               fields={"min_kg": [_("Above the maximum.")]})
    moment = parse_closes_at(closes_at, now)
    version = pricing.current(coop.id, crop_row.id, grade_row.id)
    if version is None:
        raise ValidationFailed(_("Set a price for this crop and grade before opening a pool."),
                               code="no_price", fields={"grade": [_("No price set.")]})
    supply_lock(coop.id, crop_row.id, grade_row.id)
    free = free_supply_g(coop.id, crop_row.id, grade_row.id)
    if max_g > free:
        raise ValidationFailed(
            _("Only %(kg)s kg of this crop and grade is listed and not yet in a pool.",
              kg=_kg_text(max(free, 0))),
            code="insufficient_supply", fields={"max_kg": [_("More than the free supply.")]})
    pool = Pool(coop_id=coop.id, crop_id=crop_row.id, grade_id=grade_row.id,
                price_version_id=version.id, currency=version.currency, min_g=min_g, max_g=max_g,
                committed_g=0, closes_at=moment, status="open", created_by_id=user.id)
    db.session.add(pool)
    db.session.flush()
    return pool


# ---------------------------------------------------------------- reading

def get_pool(pool_id: int) -> Pool:
    pool = db.session.get(Pool, pool_id)
    if pool is None:
        raise NotFound(_("No such pool."))
    return pool


def pools(status: str | None = None, coop_id: int | None = None, limit: int | None = None,
          after_id: int | None = None) -> list[Pool]:
    stmt = select(Pool).order_by(Pool.id.desc())
    if status:
        stmt = stmt.where(Pool.status == status)
    if coop_id:
        stmt = stmt.where(Pool.coop_id == coop_id)
    if after_id:
        stmt = stmt.where(Pool.id < after_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt).unique())


def pool_orders(pool_id: int) -> list[Order]:
    return list(db.session.scalars(select(Order).where(Order.pool_id == pool_id)
                                   .order_by(Order.id)).unique())


def pool_allocations(pool_id: int) -> list[Allocation]:
    return list(db.session.scalars(select(Allocation).where(Allocation.pool_id == pool_id)
                                   .order_by(Allocation.id)).unique())


def buyer_orders(user, limit: int | None = None, after_id: int | None = None) -> list[Order]:
    if not user.buyer_id:
        return []
    stmt = select(Order).where(Order.buyer_id == user.buyer_id).order_by(Order.id.desc())
    if after_id:
        stmt = stmt.where(Order.id < after_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt).unique())


def buyer_pool_orders(user, pool_id: int) -> list[Order]:
    """The buyer's own orders in one pool, newest first (none for anyone else)."""
    if not getattr(user, "buyer_id", None):
        return []
    return list(db.session.scalars(select(Order).where(Order.buyer_id == user.buyer_id,
                                                       Order.pool_id == pool_id)
                                   .order_by(Order.id.desc())).unique())


def farmer_allocations(user) -> list[Allocation]:
    return list(db.session.scalars(select(Allocation).where(Allocation.farmer_user_id == user.id)
                                   .order_by(Allocation.id.desc())).unique())


def own_order(user, order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None or not user.buyer_id or order.buyer_id != user.buyer_id:
        raise NotFound(_("No such order."))
    return order


def current_price(pool: Pool) -> pricing.Breakdown:
    return pricing.breakdown(pool.price, pool.committed_g)


# ---------------------------------------------------------------- the ledger side of holds

def _ledger_hold(order: Order) -> None:
    """The authorised amount as a pending entry (it moves no posted balance)."""
    ledger.hold(order.pool.coop, key=f"order:{order.id}:hold:{order.payment_intent_id}",
                amount=order.amount_authorized_minor, source=("order", order.id),
                memo=f"card hold, order {order.id}")


def _ledger_release(order: Order) -> None:
    for pending in ledger.pending_for(order.pool.coop, ("order", order.id)):
        ledger.settle_pending(order.pool.coop, pending, outcome="voided")


def _ledger_capture(order: Order, amount: int, charge_id: str | None) -> None:
    """Captured money sits at Stripe (clearing) and is owed to the buyer until the goods
    are received (deposits). The hold's pending entry is marked posted."""
    coop = order.pool.coop
    for pending in ledger.pending_for(coop, ("order", order.id)):
        ledger.settle_pending(coop, pending, outcome="posted")
    ledger.post(coop, key=f"order:{order.id}:capture", kind="capture",
                source=("order", order.id), external_ref=charge_id,
                memo=f"card capture, order {order.id}",
                lines=[ledger.debit("stripe_clearing", amount),
                       ledger.credit("buyer_deposits", amount)])


# ---------------------------------------------------------------- orders

def _fingerprint(pool_id, quantity_kg, payment_method) -> str:
    return request_fingerprint(
        {"pool": pool_id, "quantity_kg": str(quantity_kg), "pm": payment_method})


def _reserve(pool_id: int, grams: int) -> None:
    """Add grams to a pool's committed total in one conditional UPDATE: atomic on both
    databases, so no number of concurrent buyers can pass max_kg."""
    result = db.session.execute(
        update(Pool).where(Pool.id == pool_id, Pool.status == "open",
                           Pool.committed_g + grams <= Pool.max_g)
        .values(committed_g=Pool.committed_g + grams)
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        return
    pool = db.session.get(Pool, pool_id)
    db.session.refresh(pool)
    if pool.status != "open":
        raise Conflict(_("This pool is closed."), code="pool_closed")
    raise Conflict(_("Only %(kg)s kg is left in this pool.",
                     kg=_kg_text(pool.max_g - pool.committed_g)), code="pool_full",
                   fields={"quantity_kg": [_("More than is left.")]})


def _release(pool_id: int, grams: int) -> bool:
    result = db.session.execute(
        update(Pool).where(Pool.id == pool_id, Pool.status == "open",
                           Pool.committed_g >= grams)
        .values(committed_g=Pool.committed_g - grams)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def _check_payment_method(payment_method) -> str:
    if not isinstance(payment_method, str) or not payment_method.strip() \
            or len(payment_method) > 255:
        raise ValidationFailed(_("Choose a card."), fields={"payment_method": [_("Required.")]})
    if not payment_method.strip().isprintable() or " " in payment_method.strip():
        # Stripe ids are letters, digits and underscores; a control character is no card.
        raise ValidationFailed(_("That is not a payment method."),
                               code="invalid_payment_method",
                               fields={"payment_method": [_("Not a payment method id.")]})
    return payment_method.strip()


def place_order(user, pool_id: int, *, quantity_kg, payment_method,
                idempotency_key: str | None = None, now: datetime | None = None
                ) -> tuple[Order, bool]:
    """Commit a quantity to an open pool and hold quantity x the highest tier price on the card.
    Returns (order, created). Refuses: not a buyer (403), pool closed (409 pool_closed), past
    max_kg (409 pool_full), a declined card (402, nothing held, nothing committed). Stripe not
    answering in time is 503 payment_unknown: the order is left unknown, its grams reserved,
    for resolve_holds to settle. The same Idempotency-Key with the same body returns the
    first order as it stands (see _replay), never a second hold; with another body, 422.
    Commits in steps (see the module's docstring)."""
    now = now or utcnow()
    if not user.buyer_id:
        raise Forbidden(_("Only buyers can order."), code="not_a_buyer")
    fingerprint = _fingerprint(pool_id, quantity_kg, payment_method)
    if idempotency_key is not None:
        earlier = db.session.scalar(select(Order).where(
            Order.buyer_id == user.buyer_id, Order.idempotency_key == idempotency_key))
        if earlier is not None:
            return _replay(earlier, fingerprint), False
    grams = _grams(quantity_kg, "quantity_kg")
    payment_method = _check_payment_method(payment_method)
    pool = get_pool(pool_id)
    if pool.status != "open" or pool.closes_at <= now:
        raise Conflict(_("This pool is closed."), code="pool_closed")
    price = pricing.highest(pool.price)
    amount = pricing.amount_for(price.buyer, grams)
    # Step 1: reserve the quantity and record the order as pending. The reads above end
    # first, so the write starts its own transaction (SQLite cannot upgrade a stale read).
    commit_step()
    _reserve(pool.id, grams)
    order = Order(pool_id=pool.id, buyer_id=user.buyer_id, user_id=user.id, quantity_g=grams,
                  status="pending", currency=pool.currency, payment_method=payment_method,
                  amount_authorized_minor=amount, idempotency_key=idempotency_key,
                  request_hash=fingerprint if idempotency_key else None)
    db.session.add(order)
    _written, earlier = write_or_find(
        lambda: order, lambda: db.session.scalar(select(Order).where(
            Order.buyer_id == user.buyer_id, Order.idempotency_key == idempotency_key)))
    if earlier is not None:  # the same key raced in from another request: its order answers
        return _replay(earlier, fingerprint), False
    # Step 2: the hold, with no database lock held. The PaymentIntent carries the order, so
    # the resolver finds it whatever happens next, and Stripe's own idempotency key, so a
    # retry of this attempt (stripe-python's, or Stripe's) returns the same PaymentIntent.
    try:
        hold = gateway.hold(amount, pool.currency, payment_method, _hold_metadata(order, pool),
                            idempotency_key=f"minga-order-{order.id}-hold")
    except gateway.PaymentError as exc:
        if _outcome_unknown(exc):
            # Stripe may have held the card (a timeout, a 5xx): not failed, unknown. The
            # grams stay reserved until resolve_holds finds out, within minutes.
            _mark_unknown(order, exc)
            raise _unknown_error()
        _fail_pending(order, exc)
        if isinstance(exc, gateway.CardDeclined):
            raise PaymentDeclined(_("The card was declined. Nothing was held and nothing was "
                                    "committed."), code="payment_declined")
        if exc.http_status in (400, 404):
            # Stripe refused the request itself (an unknown payment method id): the client's
            # mistake, not an outage.
            raise ValidationFailed(_("That payment method cannot be used. Nothing was held and "
                                     "nothing was committed."), code="invalid_payment_method",
                                   fields={"payment_method": [_("Unknown payment method.")]})
        raise DomainError(_("The card could not be checked right now. Nothing was held; try "
                            "again in a moment."), code="payment_unavailable", status=503)
    # Step 3: the hold is in place: record it (once; the resolver may have settled it first).
    _fault_point("after_hold")
    return _record_hold(order, hold), True


def _replay(order: Order, fingerprint: str) -> Order:
    """The first order again for a repeat of its request, as it stands now: an order still
    being placed is waited for briefly (then 409 in_progress), one whose hold is unknown is
    resolved against Stripe first; a failed one answers its failure again. Never a second
    hold."""
    replay_or_refuse(order, order.request_hash == fingerprint,
                     _("This Idempotency-Key was used with a different order."))
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while order.status == OrderStatus.PENDING and time.monotonic() < deadline:
        db.session.rollback()  # end the read, so the next one sees the other request's commit
        time.sleep(0.1)
        db.session.refresh(order)
    if order.status == OrderStatus.PENDING and not _settled_after_passed(order, utcnow()):
        raise Conflict(_("This order is still being placed. Ask again in a moment."),
                       code="in_progress")
    if order.status in UNSETTLED_ORDER_STATUSES:
        commit_step()
        try:
            resolve_order(order.id)
        except gateway.PaymentError:
            pass  # Stripe still does not answer: the order stays unknown
        db.session.refresh(order)
        if order.status in UNSETTLED_ORDER_STATUSES:
            raise _unknown_error()
    if order.status == OrderStatus.FAILED:
        if order.failure_message.startswith(RESOLVED_FAILURE):
            raise Conflict(_("This order did not go through and nothing is held on your card. "
                             "Place it again."), code="order_failed")
        raise PaymentDeclined(_("The card was declined. Nothing was held and nothing was "
                                "committed."), code="payment_declined")
    return order


def _hold_metadata(order: Order, pool: Pool) -> dict:
    """What each PaymentIntent of an order is tagged with, so it can be found again."""
    return {"order_id": str(order.id), "pool_id": str(pool.id), "coop_id": str(pool.coop_id)}


def _outcome_unknown(exc: gateway.PaymentError) -> bool:
    """Whether Stripe may have acted on a request that ended in `exc`: no answer (timeout,
    connection lost) or a server error. A decline, a refused request (4xx) or a hold we could
    not even send (not configured) held nothing."""
    if isinstance(exc, gateway.GatewayUnavailable):
        return True
    return exc.http_status is not None and exc.http_status >= 500


def _unknown_error() -> DomainError:
    return DomainError(_("We don't know yet whether your card was held. We check with the "
                         "card network within minutes and tell you; do not order again."),
                       code="payment_unknown", status=503)


def _fault_point(name: str) -> None:
    """A place where tests make the worker die (tests/pools/test_holds.py): runs the hook
    the app's config names under HOLD_FAULT_HOOKS, if any. Nothing in production."""
    from flask import current_app
    hook = (current_app.config.get("HOLD_FAULT_HOOKS") or {}).get(name)
    if hook is not None:
        hook()


def _mark_unknown(order: Order, exc: Exception) -> None:
    db.session.rollback()
    try:
        db.session.execute(update(Order).where(Order.id == order.id,
                                               Order.status == OrderStatus.PENDING)
                           .values(status=OrderStatus.UNKNOWN,
                                   failure_message=str(exc)[:255], updated_at=utcnow())
                           .execution_options(synchronize_session=False))
        commit_step()
    except DBAPIError:
        db.session.rollback()  # the order stays pending: the resolver settles it all the same


def _record_hold(order: Order, hold: gateway.Hold) -> Order:
    """Record the hold Stripe made for a pending (or unknown) order: authorized, with its
    PaymentIntent, and the ledger's pending entry, in one conditional UPDATE. A dropped
    database connection is retried once on a new one. If the resolver settled the order
    first and failed it, this hold is released."""
    order_id = order.id
    for attempt in (1, 2):
        try:
            db.session.rollback()
            _fault_point("record")
            recorded = db.session.execute(
                update(Order).where(Order.id == order_id,
                                    Order.status.in_(UNSETTLED_ORDER_STATUSES),
                                    _in_open_pool(order_id))
                .values(status=OrderStatus.AUTHORIZED, payment_intent_id=hold.id,
                        charge_id=hold.charge_id, failure_message="", updated_at=utcnow())
                .execution_options(synchronize_session=False)).rowcount == 1
            order = db.session.get(Order, order_id)
            db.session.refresh(order)
            if recorded:
                _ledger_hold(order)
            commit_step()
            break
        except DBAPIError:
            db.session.rollback()
            if attempt == 2:
                # The hold stands at Stripe and the order is pending: the resolver records it.
                raise _unknown_error()
    if order.status == OrderStatus.AUTHORIZED and order.payment_intent_id == hold.id:
        return order
    if order.status in UNSETTLED_ORDER_STATUSES:  # its pool was cancelled meanwhile
        _claim_failed(order_id, "hold cancelled: pool closed")
        db.session.refresh(order)
    _cancel_quietly(hold.id)
    if order.status == OrderStatus.AUTHORIZED:
        return order  # recorded by the resolver with the same hold found another way
    raise Conflict(_("This pool closed while your card was being checked. Nothing is held."),
                   code="pool_closed")


def _fail_pending(order: Order, exc: Exception) -> None:
    db.session.rollback()
    values = {"status": "failed", "failure_message": str(exc)[:255]}
    if not isinstance(exc, gateway.CardDeclined):
        # Stripe's certain answer that it held nothing (an unusable card id, a rate limit,
        # not configured): free the key so the buyer can retry with it. A decline keeps it,
        # and a replay answers 402 again. (An unknown outcome is not failed: _mark_unknown.)
        values["idempotency_key"] = None
    # The pool row first (the lock order closing uses), then the order; the grams go back
    # only if this call is the one that failed the order (closing may have expired it).
    db.session.execute(select(Pool.id).where(Pool.id == order.pool_id).with_for_update())
    failed = db.session.execute(update(Order).where(Order.id == order.id,
                                                    Order.status == "pending")
                                .values(**values)
                                .execution_options(synchronize_session=False))
    if failed.rowcount == 1:
        _release(order.pool_id, order.quantity_g)
    commit_step()
    db.session.refresh(order)


def _changeable(user, order_id: int, quantity_kg, now: datetime) -> tuple[Order, Pool, int]:
    """The buyer's own order, its pool and the new grams, refusing an order that is no longer
    authorized or a pool that has closed."""
    order = own_order(user, order_id)
    grams = _grams(quantity_kg, "quantity_kg")
    if order.status != "authorized":
        raise Conflict(_("This order can no longer be changed."), code="order_not_open")
    pool = order.pool
    if pool.status != "open" or pool.closes_at <= now:
        raise Conflict(_("This pool is closed."), code="pool_closed")
    return order, pool, grams


def change_order(user, order_id: int, *, quantity_kg, now: datetime | None = None) -> Order:
    """Change the quantity of an order while its pool is open: a new hold for the new amount,
    then the old one is released. Refuses past max_kg, a closed pool, a declined card."""
    order, pool, grams = _changeable(user, order_id, quantity_kg, now or utcnow())
    delta = grams - order.quantity_g
    if delta == 0:
        return order
    if delta > 0:
        _reserve(pool.id, delta)
    elif not _release(pool.id, -delta):
        raise Conflict(_("This pool is closed."), code="pool_closed")
    commit_step()
    amount = pricing.amount_for(pricing.highest(pool.price).buyer, grams)
    try:
        hold = gateway.hold(amount, order.currency, order.payment_method,
                            _hold_metadata(order, pool),
                            idempotency_key=f"minga-order-{order.id}-change-"
                                            f"{order.payment_intent_id}-{grams}")
    except gateway.PaymentError as exc:
        (_release(pool.id, delta) if delta > 0 else _reserve(pool.id, -delta))
        commit_step()
        if isinstance(exc, gateway.CardDeclined):
            raise PaymentDeclined(_("The card was declined for the new amount; your order is "
                                    "unchanged."), code="payment_declined")
        raise DomainError(_("The card could not be checked right now; your order is unchanged."),
                          code="payment_unavailable", status=503)
    old_intent = order.payment_intent_id
    _ledger_release(order)
    order.quantity_g = grams
    order.amount_authorized_minor = amount
    order.payment_intent_id = hold.id
    order.charge_id = hold.charge_id
    _ledger_hold(order)
    commit_step()
    if old_intent:
        _cancel_quietly(old_intent)
    return order


def _cancel_quietly(intent_id: str) -> None:
    try:
        gateway.cancel(intent_id)
    except gateway.PaymentError:
        # An uncaptured hold lapses by itself after 7 days; the order no longer points at it.
        pass


def withdraw_order(user, order_id: int, now: datetime | None = None) -> Order:
    """Withdraw an order while the pool is open: frees the quantity and releases the hold.
    Withdrawing twice changes nothing; after the pool closed it is refused (409)."""
    now = now or utcnow()
    order = own_order(user, order_id)
    if order.status == "released":
        return order
    if order.status != "authorized":
        raise Conflict(_("This order can no longer be withdrawn."), code="order_not_open")
    if order.pool.closes_at <= now:
        # Past its closing time the pool is closed, even before cron has decided it.
        raise Conflict(_("This pool is closed; the order stands."), code="pool_closed")
    # Pool first (the lock order closing uses), then the order, so the two never deadlock.
    if not _release(order.pool_id, order.quantity_g):
        db.session.rollback()
        raise Conflict(_("This pool is closed; the order stands."), code="pool_closed")
    result = db.session.execute(update(Order).where(Order.id == order.id,
                                                    Order.status == "authorized")
                                .values(status="released", updated_at=utcnow())
                                .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise Conflict(_("This order can no longer be withdrawn."), code="order_not_open")
    _ledger_release(order)
    commit_step()
    _cancel_quietly(order.payment_intent_id)
    db.session.refresh(order)
    return order


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


def _in_open_pool(order_id: int):
    """A condition for an order's UPDATE: its pool is still open, so a hold recorded now is
    captured or cancelled with the pool. On PostgreSQL the pool row is locked FOR KEY SHARE
    first: it waits for a close or cancel (FOR UPDATE) but not for other buyers'
    reservations, nor they for it. SQLite serialises writers, and the UPDATE must be the
    transaction's first statement there (a read first could not be upgraded)."""
    if db.session.get_bind().dialect.name == "postgresql":
        pool_id = select(Order.pool_id).where(Order.id == order_id).scalar_subquery()
        db.session.execute(select(Pool.id).where(Pool.id == pool_id)
                           .with_for_update(read=True, key_share=True))
    return Order.pool_id.in_(select(Pool.id).where(Pool.status == "open"))


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
    unsettled = {o.id for o in orders.values() if o.status in UNSETTLED_ORDER_STATUSES}
    commit_step()
    for hold in holds:
        order_id = int(hold.metadata["order_id"])
        if order_id not in orders:
            continue  # not this database's order (another deployment on the same account)
        if hold.id in owned or order_id in unsettled:
            continue
        _cancel_intent(hold, result.cancelled)


def _decide(pool_id: int, now: datetime, on_demand: bool) -> None:
    """Step 1 of closing, in one transaction with the pool row locked: confirm and allocate,
    or fail. Does nothing if the pool is already decided."""
    pool = db.session.scalar(select(Pool).where(Pool.id == pool_id).with_for_update(of=Pool))
    if pool.status != "open":
        db.session.rollback()
        return
    if not on_demand and pool.closes_at > now:
        db.session.rollback()
        raise Conflict(_("This pool is not due to close yet."), code="not_due")
    if _in_flight(pool):
        db.session.rollback()
        raise Conflict(_("Orders are being placed right now; try closing again in a minute."),
                       code="orders_in_flight")
    pool.decided_at = now
    if pool.committed_g >= pool.min_g and pool.committed_g > 0:
        price = pricing.breakdown(pool.price, pool.committed_g)
        pool.final_price_per_kg_minor = price.buyer
        # One statement for every order: the tier price x quantity, rounded half up as
        # pricing.amount_for does (integer division on both databases), never above the hold.
        due = (Order.quantity_g * price.buyer + 500) // 1000
        db.session.execute(
            update(Order).where(Order.pool_id == pool.id, Order.status == "authorized")
            .values(amount_due_minor=case((due < Order.amount_authorized_minor, due),
                                          else_=Order.amount_authorized_minor))
            .execution_options(synchronize_session=False))
        pool.allocated_g = _allocate(pool, price.farmer)
        pool.status = "confirmed"
    else:
        pool.status = "failed"
    commit_step()


def _split_over_listings(grams: int, listings) -> dict[int, int]:
    """Grams per listing id in proportion to what each has uncommitted (largest remainder,
    so no listing gets more than it has). Refuses (ValueError) more than they hold."""
    weights = [(row.id, row.quantity_g - row.committed_g) for row in listings]
    if grams > sum(w for _, w in weights):
        raise ValueError("cannot allocate more than the listings hold")
    return largest_remainder(grams, weights)


def _allocate(pool: Pool, farmer_price: int) -> int:
    listings = list(db.session.execute(
        select(Listing.id, Listing.farmer_user_id, Listing.quantity_g, Listing.committed_g)
        .where(Listing.coop_id == pool.coop_id, Listing.crop_id == pool.crop_id,
               Listing.grade_id == pool.grade_id,
               Listing.status.in_(SUPPLY_LISTING_STATUSES),
               Listing.quantity_g > Listing.committed_g)
        .order_by(Listing.id).with_for_update()))
    parts = _split_over_listings(pool.committed_g, listings)
    by_id = {row.id: row for row in listings}
    allocations, listing_updates = [], []
    for listing_id, grams in parts.items():
        row = by_id[listing_id]
        allocations.append({
            "pool_id": pool.id, "listing_id": listing_id, "farmer_user_id": row.farmer_user_id,
            "quantity_g": grams, "farmer_price_per_kg_minor": farmer_price,
            "farmer_amount_minor": pricing.amount_for(farmer_price, grams),
            "created_at": utcnow()})
        listing_updates.append((listing_id, row.committed_g + grams, row.quantity_g))
    if allocations:
        db.session.execute(Allocation.__table__.insert(), allocations)
        listing_services.commit_allocations(listing_updates)
    return sum(parts.values())


def _settle(pool_id: int, now: datetime) -> None:
    """Step 2 of closing: capture (confirmed) or cancel (failed, cancelled) every hold still
    authorized, one order at a time, no row lock held while Stripe answers. A rerun continues
    where a crash stopped: capture and cancel of an intent already done are harmless."""
    pool = db.session.get(Pool, pool_id)
    capture, coop_id = pool.status == "confirmed", pool.coop_id
    ids = list(db.session.scalars(select(Order.id).where(Order.pool_id == pool_id,
                                                         Order.status == "authorized")))
    commit_step()
    for order_id in ids:
        order = db.session.get(Order, order_id)
        if order.status != "authorized":
            continue
        try:
            if capture:
                hold = gateway.capture(order.payment_intent_id, order.amount_due_minor,
                                       {"order_id": str(order.id), "pool_id": str(pool_id),
                                        "coop_id": str(coop_id)})
                values = {"status": "captured", "amount_captured_minor": order.amount_due_minor,
                          "charge_id": hold.charge_id or order.charge_id}
            else:
                gateway.cancel(order.payment_intent_id)
                values = {"status": "cancelled"}
        except gateway.PaymentError as exc:
            if exc.code not in ("unexpected_state", "resource_missing"):
                raise  # Stripe did not answer or erred: a rerun of the close finishes it.
            # The hold is gone (expired, or cancelled outside Minga): nothing can be taken.
            values = {"status": "failed", "failure_message": str(exc)[:255]}
        result = db.session.execute(update(Order).where(Order.id == order_id,
                                                        Order.status == "authorized")
                                    .values(updated_at=utcnow(), **values)
                                    .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            if values["status"] == "captured":
                _ledger_capture(order, values["amount_captured_minor"], values["charge_id"])
            else:
                _ledger_release(order)
        commit_step()
    db.session.execute(update(Pool).where(Pool.id == pool_id, Pool.settled_at.is_(None))
                       .values(settled_at=now).execution_options(synchronize_session=False))
    commit_step()


def close_pool(pool_id: int, *, now: datetime | None = None, on_demand: bool = True) -> Pool:
    """Close a pool: at or after its closing time, or on demand by its manager. Confirms it
    (committed >= min_kg) with allocation and captures, or fails it and cancels every hold.
    Closing again, or after a crash, finishes what is left and never does anything twice."""
    now = now or utcnow()
    get_pool(pool_id)
    commit_step()
    try:
        if get_pool(pool_id).status == "open":
            # Orders a crash or an outage left unsettled are settled first (resolve_holds).
            resolve_holds(pool_id=pool_id, now=now)
        _decide(pool_id, now, on_demand)
        pool = get_pool(pool_id)
        if pool.settled_at is None:
            _settle(pool_id, now)
    except gateway.PaymentError as exc:
        if not _outcome_unknown(exc) and exc.code not in ("rate_limited",
                                                          "gateway_not_configured"):
            raise
        db.session.rollback()
        raise DomainError(_("The card network cannot be reached right now. What was done is "
                            "kept; close the pool again in a moment."),
                          code="payment_unavailable", status=503)
    db.session.expire_all()
    return get_pool(pool_id)


def cancel_pool(pool_id: int, now: datetime | None = None) -> Pool:
    """A manager calls off an open pool: every hold is released, nobody pays."""
    now = now or utcnow()
    pool = db.session.scalar(select(Pool).where(Pool.id == pool_id).with_for_update(of=Pool))
    if pool.status != "open":
        db.session.rollback()
        if pool.status == "cancelled" and pool.settled_at is None:
            _settle(pool_id, now)
            return get_pool(pool_id)
        raise Conflict(_("Only an open pool can be cancelled."), code="pool_closed")
    pool.status = "cancelled"
    pool.decided_at = now
    commit_step()
    _settle(pool_id, now)
    return get_pool(pool_id)


def close_due(now: datetime | None = None) -> list[tuple[int, str]]:
    """Close every pool past its closing time, and finish any close a crash interrupted.
    Returns (pool id, status or error code) for each pool it touched."""
    now = now or utcnow()
    due = list(db.session.scalars(select(Pool.id).where(
        ((Pool.status == "open") & (Pool.closes_at <= now))
        | ((Pool.status != "open") & Pool.settled_at.is_(None))).order_by(Pool.id)))
    commit_step()
    done = []
    for pool_id in due:
        try:
            pool = close_pool(pool_id, now=now, on_demand=False)
            done.append((pool_id, pool.status))
        except (DomainError, gateway.PaymentError) as exc:
            db.session.rollback()
            done.append((pool_id, getattr(exc, "code", "error")))
    return done


# ---------------------------------------------------------------- Stripe webhooks

def apply_payment_intent_event(kind: str, intent_id: str) -> str:
    """Apply a verified, first-seen Stripe event about a payment intent to its order (the
    handler create_app registers with coop.payments.webhooks). An event that arrives out of
    order never moves an order backwards (captured and released are final). Returns the
    outcome recorded in the event log."""
    outcome = "ignored"
    order = db.session.scalar(select(Order).where(Order.payment_intent_id == intent_id))
    if order is None:
        outcome = "unknown_intent"
    elif kind == "payment_intent.succeeded":
        if order.status == "authorized" and order.amount_due_minor is not None:
            order.status = "captured"
            order.amount_captured_minor = order.amount_due_minor
            _ledger_capture(order, order.amount_due_minor, order.charge_id)
            outcome = "captured"
        else:
            outcome = f"no_change:{order.status}"
    elif kind == "payment_intent.payment_failed":
        if order.status in LIVE_ORDER_STATUSES and order.pool.status == "open":
            _release(order.pool_id, order.quantity_g)
            order.status = "failed"
            order.failure_message = "payment failed (Stripe)"
            _ledger_release(order)
            outcome = "failed"
        else:
            outcome = f"no_change:{order.status}"
    elif kind == "payment_intent.canceled":
        if order.status == "authorized" and order.pool.status == "open":
            _release(order.pool_id, order.quantity_g)
            order.status = "released"
            _ledger_release(order)
            outcome = "released"
        elif order.status == "authorized" and order.pool.status in UNSOLD_POOL_STATUSES:
            order.status = "cancelled"
            _ledger_release(order)
            outcome = "cancelled"
        else:
            outcome = f"no_change:{order.status}"
    db.session.flush()
    return outcome


# ---------------------------------------------------------------- previews (read-only)
# What an order, a change, a withdrawal, a close or a cancel would do, computed the way the
# acting function does it and writing nothing: the HTML confirmation step shows these figures
# before money moves (coop/common/confirm.py).

@dataclass(frozen=True)
class OrderPreview:
    pool_id: int
    currency: str
    grams: int                   # the new quantity (0 when withdrawing)
    price_per_kg_minor: int      # the highest tier's price: what the hold is sized on
    amount_minor: int            # held on the card (0 when withdrawing)
    old_grams: int = 0           # the order's quantity before (change, withdrawal)
    old_amount_minor: int = 0    # the hold before, released


def preview_order(user, pool_id: int, *, quantity_kg, payment_method,
                  now: datetime | None = None) -> OrderPreview:
    """What place_order would hold; refuses what it would refuse before calling Stripe."""
    now = now or utcnow()
    if not user.buyer_id:
        raise Forbidden(_("Only buyers can order."), code="not_a_buyer")
    grams = _grams(quantity_kg, "quantity_kg")
    _check_payment_method(payment_method)
    pool = get_pool(pool_id)
    if pool.status != "open" or pool.closes_at <= now:
        raise Conflict(_("This pool is closed."), code="pool_closed")
    _check_room(pool, grams)
    price = pricing.highest(pool.price).buyer
    return OrderPreview(pool_id=pool.id, currency=pool.currency, grams=grams,
                        price_per_kg_minor=price, amount_minor=pricing.amount_for(price, grams))


def _check_room(pool: Pool, grams: int) -> None:
    if pool.committed_g + grams > pool.max_g:
        raise Conflict(_("Only %(kg)s kg is left in this pool.",
                         kg=_kg_text(pool.max_g - pool.committed_g)), code="pool_full",
                       fields={"quantity_kg": [_("More than is left.")]})


def preview_change(user, order_id: int, *, quantity_kg,
                   now: datetime | None = None) -> OrderPreview:
    """What change_order would hold instead of the current hold."""
    order, pool, grams = _changeable(user, order_id, quantity_kg, now or utcnow())
    if grams > order.quantity_g:
        _check_room(pool, grams - order.quantity_g)
    price = pricing.highest(pool.price).buyer
    return OrderPreview(pool_id=pool.id, currency=order.currency, grams=grams,
                        price_per_kg_minor=price, amount_minor=pricing.amount_for(price, grams),
                        old_grams=order.quantity_g,
                        old_amount_minor=order.amount_authorized_minor or 0)


def preview_withdraw(user, order_id: int, now: datetime | None = None) -> OrderPreview:
    """What withdraw_order would release."""
    now = now or utcnow()
    order = own_order(user, order_id)
    if order.status == "released":
        raise Conflict(_("This order was withdrawn already."), code="order_released")
    if order.status != "authorized":
        raise Conflict(_("This order can no longer be withdrawn."), code="order_not_open")
    if order.pool.status != "open" or order.pool.closes_at <= now:
        raise Conflict(_("This pool is closed; the order stands."), code="pool_closed")
    return OrderPreview(pool_id=order.pool_id, currency=order.currency, grams=0,
                        price_per_kg_minor=0, amount_minor=0, old_grams=order.quantity_g,
                        old_amount_minor=order.amount_authorized_minor or 0)


@dataclass(frozen=True)
class BuyerEffect:
    order_id: int
    buyer: str
    grams: int
    held_minor: int
    capture_minor: int           # taken from the card
    release_minor: int           # held and not taken


@dataclass(frozen=True)
class FarmerEffect:
    farmer: str
    grams: int
    amount_minor: int            # at the pool's farmer price, before intake


@dataclass(frozen=True)
class ClosePreview:
    pool_id: int
    currency: str
    outcome: str                 # confirmed, failed or cancelled
    committed_g: int
    min_g: int
    price_per_kg_minor: int | None
    buyers: tuple = ()
    farmers: tuple = ()
    in_flight: int = 0           # orders being placed right now: closing must wait

    @property
    def capture_minor(self) -> int:
        return sum(b.capture_minor for b in self.buyers)

    @property
    def release_minor(self) -> int:
        return sum(b.release_minor for b in self.buyers)

    @property
    def farmer_minor(self) -> int:
        return sum(f.amount_minor for f in self.farmers)


def _buyer_names(ids) -> dict[int, str]:
    from ..auth.models import Buyer
    ids = set(ids)
    return dict(db.session.execute(select(Buyer.id, Buyer.organisation)
                                   .where(Buyer.id.in_(ids))).all()) if ids else {}


def preview_close(pool_id: int, now: datetime | None = None) -> ClosePreview:
    """What close_pool would do now (on demand): confirm it, capture each buyer's amount at
    the tier price and allocate the kilograms to farmers pro rata, or fail it and release
    every hold; for a pool decided but not settled, what finishing the close would do."""
    now = now or utcnow()
    pool = get_pool(pool_id)
    if pool.status != "open" and pool.settled_at is not None:
        raise Conflict(_("This pool is closed already."), code="pool_closed")
    orders = list(db.session.execute(
        select(Order.id, Order.buyer_id, Order.quantity_g, Order.status, Order.created_at,
               Order.amount_authorized_minor, Order.amount_due_minor)
        .where(Order.pool_id == pool.id, Order.status.in_(LIVE_ORDER_STATUSES))
        .order_by(Order.id)))
    names = _buyer_names(o.buyer_id for o in orders)
    held = [o for o in orders if o.status == "authorized"]
    # Closing settles unknown and abandoned orders first; the preview cannot know how.
    in_flight = sum(1 for o in orders if o.status in UNSETTLED_ORDER_STATUSES)
    committed = pool.committed_g
    if pool.status == "open":
        outcome = "confirmed" if committed >= pool.min_g and committed > 0 else "failed"
        price = pricing.breakdown(pool.price, committed) if outcome == "confirmed" else None
        buyer_price = price.buyer if price else None
    else:
        outcome, buyer_price, price = pool.status, pool.final_price_per_kg_minor, None
    buyers = []
    for o in held:
        held_minor = o.amount_authorized_minor or 0
        if outcome != "confirmed":
            capture = 0
        elif pool.status == "open":
            capture = min(pricing.amount_for(buyer_price, o.quantity_g), held_minor)
        else:
            capture = o.amount_due_minor or 0
        buyers.append(BuyerEffect(order_id=o.id, buyer=names.get(o.buyer_id, ""),
                                  grams=o.quantity_g, held_minor=held_minor,
                                  capture_minor=capture, release_minor=held_minor - capture))
    farmers = []
    if outcome == "confirmed":
        farmers = (_preview_allocation(pool, committed, price.farmer) if pool.status == "open"
                   else _farmer_effects(pool))
    return ClosePreview(pool_id=pool.id, currency=pool.currency, outcome=outcome,
                        committed_g=committed, min_g=pool.min_g, price_per_kg_minor=buyer_price,
                        buyers=tuple(buyers), farmers=tuple(farmers), in_flight=in_flight)


def _farmer_names(ids) -> dict[int, str]:
    from ..auth.models import User
    ids = set(ids)
    return dict(db.session.execute(select(User.id, User.name)
                                   .where(User.id.in_(ids))).all()) if ids else {}


def _merge_farmers(rows) -> list[FarmerEffect]:
    """(farmer id, grams, amount) rows -> one effect per farmer, in first-seen order."""
    totals: dict[int, list[int]] = {}
    for uid, grams, amount in rows:
        got = totals.setdefault(uid, [0, 0])
        got[0] += grams
        got[1] += amount
    names = _farmer_names(totals)
    return [FarmerEffect(farmer=names.get(uid, ""), grams=g, amount_minor=a)
            for uid, (g, a) in totals.items()]


def _preview_allocation(pool: Pool, committed_g: int, farmer_price: int) -> list[FarmerEffect]:
    listings = list(db.session.execute(
        select(Listing.id, Listing.farmer_user_id, Listing.quantity_g, Listing.committed_g)
        .where(Listing.coop_id == pool.coop_id, Listing.crop_id == pool.crop_id,
               Listing.grade_id == pool.grade_id,
               Listing.status.in_(SUPPLY_LISTING_STATUSES),
               Listing.quantity_g > Listing.committed_g)
        .order_by(Listing.id)))
    parts = _split_over_listings(committed_g, listings)
    owner = {r.id: r.farmer_user_id for r in listings}
    return _merge_farmers((owner[lid], grams, pricing.amount_for(farmer_price, grams))
                          for lid, grams in parts.items() if grams)


def _farmer_effects(pool: Pool) -> list[FarmerEffect]:
    return _merge_farmers(db.session.execute(
        select(Allocation.farmer_user_id, Allocation.quantity_g, Allocation.farmer_amount_minor)
        .where(Allocation.pool_id == pool.id).order_by(Allocation.id)))


def preview_cancel(pool_id: int) -> ClosePreview:
    """What cancel_pool would do: release every hold; nobody pays, no farmer sells."""
    pool = get_pool(pool_id)
    if pool.status != "open" and not (pool.status == "cancelled" and pool.settled_at is None):
        raise Conflict(_("Only an open pool can be cancelled."), code="pool_closed")
    held = list(db.session.execute(
        select(Order.id, Order.buyer_id, Order.quantity_g, Order.amount_authorized_minor)
        .where(Order.pool_id == pool.id, Order.status == "authorized").order_by(Order.id)))
    names = _buyer_names(o.buyer_id for o in held)
    return ClosePreview(
        pool_id=pool.id, currency=pool.currency, outcome="cancelled",
        committed_g=pool.committed_g, min_g=pool.min_g, price_per_kg_minor=None,
        buyers=tuple(BuyerEffect(order_id=o.id, buyer=names.get(o.buyer_id, ""),
                                 grams=o.quantity_g, held_minor=o.amount_authorized_minor or 0,
                                 capture_minor=0, release_minor=o.amount_authorized_minor or 0)
                     for o in held))
