"""Orders: a buyer places, changes or withdraws one, each backed by a card hold.

Commit points. A card hold lives at Stripe and must never be awaited inside a database
transaction (row locks would be held for the length of a network call): placing an order runs
as short steps, each committed and recorded, so that a crash and a rerun finish the work
without holding twice (see resolver.py for the attempts whose outcome is unknown)."""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from ..auth import organisations
from ..common.errors import Conflict, DomainError, PaymentDeclined, ValidationFailed
from ..common.idempotency import (fingerprint as request_fingerprint, replay_or_refuse,
                                  write_or_find)
from ..common.models import utcnow
from ..common.statuses import (LIVE_ORDER_STATUSES, UNSETTLED_ORDER_STATUSES, UNSOLD_POOL_STATUSES,
                               OrderStatus)
from ..common.web import commit_step
from ..extensions import db
from ..ledger import services as ledger
from ..payments import gateway
from ..pricing import services as pricing
from .models import Order, Pool
from . import notices
from .core import (PoolFacts, _grams, _kg_text, _ledger_capture, _ledger_hold, _ledger_release,
                   _release, _reserve, get_pool, own_order, pool_facts,
                   require_orderable)
from .resolver import (RESOLVED_FAILURE, _claim_failed, _in_open_pool, _settled_after_passed,
                       resolve_order)


# Events after which an order waiting for its card is checked with Stripe: Stripe's for a
# manual-capture hold in place, and what the sandbox sends (it sends none for a hold).
CARD_CONFIRMED_EVENTS = ("payment_intent.amount_capturable_updated",
                         "payment_intent.succeeded", "payment_intent.requires_capture",
                         "payment_intent.canceled")

REPLAY_WAIT_SECONDS = 3.0  # a replay of an order still being placed waits this long for it


# ---------------------------------------------------------------- orders

def _fingerprint(pool_id, quantity_kg, payment_method) -> str:
    return request_fingerprint(
        {"pool": pool_id, "quantity_kg": str(quantity_kg), "pm": payment_method})


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
    organisations.require_purchaser(user)  # an accounts user sees orders, never places one
    # Plain values from here on: each commit expires the session's objects, and touching one
    # afterwards would load it again (the user, the pool and all it joins).
    buyer_id, user_id = user.buyer_id, user.id
    fingerprint = _fingerprint(pool_id, quantity_kg, payment_method)
    if idempotency_key is not None:
        earlier = _by_key(buyer_id, idempotency_key)
        if earlier is not None:
            return _replay(earlier, fingerprint), False
    grams = _grams(quantity_kg, "quantity_kg")
    payment_method = _check_payment_method(payment_method)
    pool = pool_facts(pool_id, buyer_id)
    require_orderable(pool, buyer_id, now)  # open, and the buyer's billing details given
    amount = pricing.amount_for(pool.buyer_price_per_kg_minor, grams)
    # Step 1: reserve the quantity and record the order as pending. On SQLite the reads
    # above end first, so the write starts its own transaction (SQLite cannot upgrade a
    # stale read); PostgreSQL writes in the same transaction (one commit less).
    if db.session.get_bind().dialect.name != "postgresql":
        commit_step()
    committed_g = _reserve(pool.id, grams)
    order, order_id, earlier = _write_order(
        pool, buyer_id=buyer_id, user_id=user_id, grams=grams, status="pending",
        payment_method=payment_method, amount=amount, idempotency_key=idempotency_key,
        fingerprint=fingerprint)
    if earlier is not None:  # the same key raced in from another request: its order answers
        return _replay(earlier, fingerprint), False
    # Step 2: the hold, with no database lock held. The PaymentIntent carries the order, so
    # the resolver finds it whatever happens next, and Stripe's own idempotency key, so a
    # retry of this attempt (stripe-python's, or Stripe's) returns the same PaymentIntent.
    try:
        hold = gateway.hold(amount, pool.currency, payment_method,
                            {"order_id": str(order_id), "pool_id": str(pool.id),
                             "coop_id": str(pool.coop_id)},
                            idempotency_key=f"minga-order-{order_id}-hold")
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
    placed = _Placed(order_id=order_id, user_id=user_id, pool=pool, grams=grams,
                     amount=amount, committed_g=committed_g)
    return _record_hold(order, hold, placed), True


def _write_order(pool: PoolFacts, *, buyer_id: int, user_id: int, grams: int, status: str,
                 payment_method: str, amount: int, idempotency_key: str | None,
                 fingerprint: str) -> tuple[Order, int | None, Order | None]:
    """Write a new order (its grams reserved already) and commit: (order, its id, None); when
    the buyer's Idempotency-Key raced in from another request, (order, None, that request's
    order)."""
    order = Order(pool_id=pool.id, buyer_id=buyer_id, user_id=user_id, quantity_g=grams,
                  status=status, currency=pool.currency, payment_method=payment_method,
                  amount_authorized_minor=amount, idempotency_key=idempotency_key,
                  request_hash=fingerprint if idempotency_key else None)

    def write():
        db.session.add(order)
        db.session.flush()
        return order.id

    order_id, earlier = write_or_find(write, lambda: _by_key(buyer_id, idempotency_key))
    return order, order_id, earlier


def _by_key(buyer_id: int, idempotency_key: str | None) -> Order | None:
    """The buyer's order made with this Idempotency-Key (its columns only: the pool and all
    it joins load only if asked for)."""
    return db.session.scalar(_by_key_statement(), {"buyer_id": buyer_id,
                                                   "key": idempotency_key})


@functools.cache
def _by_key_statement():
    """Built once per process (its cache key too): every order asks it."""
    return select(Order).options(lazyload("*")).where(
        Order.buyer_id == bindparam("buyer_id"), Order.idempotency_key == bindparam("key"))


@dataclass(frozen=True)
class _Placed:
    """What recording a new order's hold needs, known without reading it back."""
    order_id: int
    user_id: int
    pool: PoolFacts
    grams: int
    amount: int
    committed_g: int  # the pool's total once the order's grams were reserved


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


def _record_hold(order: Order, hold: gateway.Hold, placed: _Placed | None = None) -> Order:
    """Record the hold Stripe made for a pending (or unknown) order: authorized, with its
    PaymentIntent, and the ledger's pending entry, in one conditional UPDATE. A dropped
    database connection is retried once on a new one. If the resolver settled the order
    first and failed it, this hold is released. `placed`: what place_order knows of the
    new order, so that nothing is read back (the ledger entry and the messages are written
    from it)."""
    order_id = placed.order_id if placed else order.id
    for attempt in (1, 2):
        try:
            db.session.rollback()
            _fault_point("record")
            row = db.session.execute(
                _recorded_statement(db.session.get_bind().dialect.name, placed is not None),
                {"b_order_id": order_id, "b_pool_id": placed.pool.id if placed else None,
                 "b_intent_id": hold.id, "b_charge_id": hold.charge_id, "b_now": utcnow()}
            ).mappings().first()
            recorded = row is not None
            if recorded and placed is not None:
                _ledger_hold_placed(placed, hold.id)
                notices.hold_told(
                    order_id=order_id, user_id=placed.user_id, payment_intent_id=hold.id,
                    amount_minor=placed.amount, currency=placed.pool.currency,
                    grams=placed.grams, pool_id=placed.pool.id, coop_id=placed.pool.coop_id,
                    closes_at=placed.pool.closes_at, min_g=placed.pool.min_g,
                    committed_g=placed.committed_g)
            elif recorded:
                order = db.session.get(Order, order_id)
                db.session.refresh(order)
                _ledger_hold(order)
                notices.hold_placed(order)
            commit_step()
            break
        except DBAPIError:
            db.session.rollback()
            if attempt == 2:
                # The hold stands at Stripe and the order is pending: the resolver records it.
                raise _unknown_error()
    if recorded:
        # Only this call moved the order from pending, and the row was locked until the
        # commit: it stands as the UPDATE returned it (no read back).
        for column, value in row.items():
            set_committed_value(order, column, value)
        return order
    order = db.session.get(Order, order_id)
    db.session.refresh(order)
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


@functools.cache
def _recorded_statement(dialect: str, pool_known: bool):
    """The UPDATE recording a hold (see _record_hold), built once per dialect and per
    whether the pool's id is passed (`b_pool_id`) or looked up from the order's row: every
    order runs it, and a built statement keeps its cache key."""
    order_id = bindparam("b_order_id")
    table = Order.__table__  # Core: no ORM layer per execution, the cache key kept
    return (update(table).where(table.c.id == order_id,
                                table.c.status.in_(UNSETTLED_ORDER_STATUSES),
                                _in_open_pool(order_id, bindparam("b_pool_id") if pool_known
                                              else None, dialect))
            .values(status=OrderStatus.AUTHORIZED, payment_intent_id=bindparam("b_intent_id"),
                    charge_id=bindparam("b_charge_id"), failure_message="",
                    updated_at=bindparam("b_now"))
            .returning(*table.columns))


def _ledger_hold_placed(placed: _Placed, intent_id: str) -> None:
    """The new order's hold as the ledger's pending entry (core._ledger_hold, from plain
    values)."""
    from types import SimpleNamespace
    coop = SimpleNamespace(id=placed.pool.coop_id, currency=placed.pool.coop_currency)
    ledger.hold_entry(coop, key=f"order:{placed.order_id}:hold:{intent_id}",
                      amount=placed.amount, source=("order", placed.order_id),
                      memo=f"card hold, order {placed.order_id}")


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
    order = own_order(user, order_id)  # another buyer's order: 404 first
    organisations.require_purchaser(user)
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
    from ..payments import cards as saved_cards
    customer = saved_cards.customer_for(order.buyer_id, order.payment_method,
                                        typed=bool(order.setup_intent_id))
    commit_step()
    amount = pricing.amount_for(pricing.highest(pool.price).buyer, grams)
    try:
        hold = gateway.hold(amount, order.currency, order.payment_method,
                            _hold_metadata(order, pool),
                            idempotency_key=f"minga-order-{order.id}-change-"
                                            f"{order.payment_intent_id}-{grams}",
                            customer=customer)
    except gateway.PaymentError as exc:
        (_release(pool.id, delta) if delta > 0 else _reserve(pool.id, -delta))
        commit_step()
        if isinstance(exc, gateway.CardDeclined):
            raise PaymentDeclined(_("The card was declined for the new amount; your order is "
                                    "unchanged."), code="payment_declined")
        if exc.code == "authentication_required":
            # The bank wants the buyer to confirm each new amount (3-D Secure), which only
            # the card page can do: the order stands as it was.
            raise Conflict(_("Your bank asks you to confirm every new amount on this card. "
                             "Your order is unchanged; to change it, withdraw it and join "
                             "the pool again."), code="authentication_required")
        raise DomainError(_("The card could not be checked right now; your order is unchanged."),
                          code="payment_unavailable", status=503)
    old_intent = order.payment_intent_id
    _ledger_release(order)
    order.quantity_g = grams
    order.amount_authorized_minor = amount
    order.payment_intent_id = hold.id
    order.charge_id = hold.charge_id
    _ledger_hold(order)
    notices.hold_placed(order)
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
    order = own_order(user, order_id)  # another buyer's order: 404 first
    organisations.require_purchaser(user)
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
    elif order.status == OrderStatus.AUTHORIZING:
        # A card confirmed in the buyer's page: the event only says "look". The job checks
        # with Stripe itself, after this commit (no call to Stripe inside the transaction).
        if kind in CARD_CONFIRMED_EVENTS:
            from ..jobs import services as jobs
            # No key: each event looks again (an early one may find nothing held yet); the
            # check itself is once-only.
            jobs.enqueue("pools.confirm_card", coop_id=order.pool.coop_id, order_id=order.id)
            outcome = "card_check"
        else:
            outcome = f"no_change:{order.status}"  # a decline: the buyer may try another card
    elif kind == "payment_intent.succeeded":
        if order.status == "authorized" and order.amount_due_minor is not None:
            order.status = "captured"
            order.amount_captured_minor = order.amount_due_minor
            _ledger_capture(order, order.amount_due_minor, order.charge_id)
            notices.captured(order, order.amount_due_minor)
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
            notices.released(order)
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
    organisations.require_purchaser(user)  # an accounts user sees orders, never places one
    grams = _grams(quantity_kg, "quantity_kg")
    _check_payment_method(payment_method)
    pool = get_pool(pool_id)
    if pool.status != "open" or pool.closes_at <= now:
        raise Conflict(_("This pool is closed."), code="pool_closed")
    from ..invoices import services as invoices
    invoices.require_billing(user.buyer_id)  # as require_orderable: an invoice needs them
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
    order = own_order(user, order_id)  # another buyer's order: 404 first
    organisations.require_purchaser(user)
    if order.status == "released":
        raise Conflict(_("This order was withdrawn already."), code="order_released")
    if order.status != "authorized":
        raise Conflict(_("This order can no longer be withdrawn."), code="order_not_open")
    if order.pool.status != "open" or order.pool.closes_at <= now:
        raise Conflict(_("This pool is closed; the order stands."), code="pool_closed")
    return OrderPreview(pool_id=order.pool_id, currency=order.currency, grams=0,
                        price_per_kg_minor=0, amount_minor=0, old_grams=order.quantity_g,
                        old_amount_minor=order.amount_authorized_minor or 0)
