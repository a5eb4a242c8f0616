"""Card entry in the buyer's browser (issue 14): the two-step hold with strong customer
authentication.

1. place_card_order reserves the grams and records the order as *authorizing*, then (no
   transaction open) creates a manual-capture PaymentIntent without a card; the page gets
   its client_secret. With a saved card the PaymentIntent is confirmed at once instead (one
   step), and only a bank that asks for 3-D Secure sends the buyer to the page.
2. The page confirms it with Stripe.js (confirmCardPayment, or confirmCardSetup first where
   the card is saved or the sandbox's stand-in needs it: use_setup_card), running 3-D Secure
   where the bank asks.
3. confirm_card_order retrieves the PaymentIntent from Stripe and marks the order authorized
   only if it is requires_capture for the order's amount, currency and order id, in one
   conditional UPDATE from authorizing: the page's return, the webhook's job and the expiry
   job may all try it, one wins. The browser's word is never proof.
4. expire_card_orders: an order still authorizing after CARD_AUTH_TIMEOUT_SECONDS is failed,
   its grams go back to the pool and its PaymentIntent is cancelled (the same conditional
   UPDATE decides between it and a late confirmation)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..common.errors import Conflict, DomainError, Forbidden, PaymentDeclined
from ..common.models import utcnow
from ..common.statuses import OrderStatus
from ..common.web import commit_step
from ..extensions import db
from ..payments import cards as saved_cards
from ..payments import gateway
from ..pricing import services as pricing
from .models import Order, Pool
from . import notices
from .core import (_grams, _ledger_hold, _release, _reserve, own_order, pool_facts,
                   require_orderable)
from .orders import (_by_key, _cancel_quietly, _fingerprint, _outcome_unknown, _replay,
                     _unknown_error, _write_order)
from .resolver import _in_open_pool

AUTHORIZING = OrderStatus.AUTHORIZING
EXPIRED = "expired: the card was not confirmed in time"
REFUSED = "the buyer's bank did not confirm the card"


def card_entry_enabled(config=None) -> bool:
    """Whether buyers type their card in the page (Stripe.js): a publishable key is set."""
    config = config if config is not None else current_app.config
    return bool(config.get("STRIPE_PUBLISHABLE_KEY"))


def auth_timeout(config=None) -> timedelta:
    """How long an order may wait for its card to be confirmed: CARD_AUTH_TIMEOUT_SECONDS."""
    config = config if config is not None else current_app.config
    return timedelta(seconds=float(config.get("CARD_AUTH_TIMEOUT_SECONDS") or 900))


@dataclass(frozen=True)
class CardStep:
    """What the buyer's page (or an API client) needs next: the order, and while it waits
    for the card, the PaymentIntent's client_secret."""
    order: Order
    client_secret: str | None


# ---------------------------------------------------------------- step 1

def place_card_order(user, pool_id: int, *, quantity_kg, saved_card_id: int | None = None,
                     idempotency_key: str | None = None, now: datetime | None = None
                     ) -> tuple[CardStep, bool]:
    """Reserve a quantity of an open pool for a card to be confirmed in the buyer's page.
    Returns (step, created): the order *authorizing* with the PaymentIntent's client_secret,
    or authorized at once (a saved card its bank did not question). Refuses what place_order
    refuses (403 not a buyer, 409 pool_closed / pool_full, 402 a saved card declined: nothing
    held, nothing reserved); a saved card of another buyer is 404; Stripe not answering is
    503 (the order, if it got that far, is left for the expiry job). The same
    Idempotency-Key with the same body answers the first order again."""
    now = now or utcnow()
    if not user.buyer_id:
        raise Forbidden(_("Only buyers can order."), code="not_a_buyer")
    buyer_id, user_id = user.buyer_id, user.id
    card = None
    if saved_card_id is not None:
        card = saved_cards.saved_card(buyer_id, saved_card_id)
    method = card.payment_method_id if card else ""
    fingerprint = _fingerprint(pool_id, quantity_kg, method or "card-entry")
    if idempotency_key is not None:
        earlier = _by_key(buyer_id, idempotency_key)
        if earlier is not None:
            return _step_of(_replay(earlier, fingerprint)), False
    grams = _grams(quantity_kg, "quantity_kg")
    pool = pool_facts(pool_id, buyer_id)
    require_orderable(pool, buyer_id, now)  # open, and the buyer's billing details given
    amount = pricing.amount_for(pool.buyer_price_per_kg_minor, grams)
    try:
        customer = saved_cards.ensure_customer(buyer_id)
    except gateway.PaymentError:
        raise DomainError(_("The card could not be checked right now. Nothing was held; try "
                            "again in a moment."), code="payment_unavailable", status=503)
    if db.session.get_bind().dialect.name != "postgresql":
        commit_step()
    _reserve(pool.id, grams)
    order, order_id, earlier = _write_order(
        pool, buyer_id=buyer_id, user_id=user_id, grams=grams, status=AUTHORIZING,
        payment_method=method, amount=amount, idempotency_key=idempotency_key,
        fingerprint=fingerprint)
    if earlier is not None:
        return _step_of(_replay(earlier, fingerprint)), False
    metadata = {"order_id": str(order_id), "pool_id": str(pool.id), "coop_id": str(pool.coop_id)}
    try:
        intent = gateway.card_intent(amount, pool.currency, metadata, customer=customer,
                                     payment_method=method or None,
                                     idempotency_key=f"minga-order-{order_id}-card")
    except gateway.PaymentError as exc:
        if _outcome_unknown(exc):
            raise _unknown_error()  # still authorizing: the expiry job finds and cancels it
        _end_authorizing(order_id, f"card: {exc}")
        if isinstance(exc, gateway.CardDeclined):
            raise PaymentDeclined(_("The card was declined. Nothing was held and nothing was "
                                    "committed."), code="payment_declined")
        raise DomainError(_("The card could not be checked right now. Nothing was held; try "
                            "again in a moment."), code="payment_unavailable", status=503)
    db.session.execute(update(Order).where(Order.id == order_id, Order.status == AUTHORIZING)
                       .values(payment_intent_id=intent.id, updated_at=utcnow())
                       .execution_options(synchronize_session=False))
    commit_step()
    if intent.status == "requires_capture":
        _authorize(order_id, intent)
    elif intent.status not in ("requires_payment_method", "requires_action",
                               "requires_confirmation"):
        _end_authorizing(order_id, f"card: unexpected state {intent.status}")
        _cancel_quietly(intent.id)
        raise PaymentDeclined(_("The card was declined. Nothing was held and nothing was "
                                "committed."), code="payment_declined")
    order = db.session.get(Order, order_id)
    db.session.refresh(order)
    return CardStep(order, intent.client_secret if order.status == AUTHORIZING else None), True


def _step_of(order: Order) -> CardStep:
    """An order replayed: while it waits for its card, its client_secret again (from
    Stripe: Minga does not store it)."""
    if order.status != AUTHORIZING or not order.payment_intent_id:
        return CardStep(order, None)
    commit_step()
    try:
        return CardStep(order, gateway.retrieve(order.payment_intent_id).client_secret)
    except gateway.PaymentError:
        return CardStep(order, None)


# ---------------------------------------------------------------- the page

@dataclass(frozen=True)
class CardPage:
    order: Order
    client_secret: str          # the PaymentIntent's
    setup_secret: str | None    # the SetupIntent's (confirmCardSetup), if one could be made
    needs_action: bool          # a saved card the bank questions: only 3-D Secure is left


def card_page(user, order_id: int) -> CardPage:
    """What the buyer's card page needs for one of their own orders that waits for its card
    (another buyer's is 404; one no longer waiting is 409 order_not_authorizing). The
    SetupIntent is made on the first visit (no transaction open during the calls)."""
    order = _own_authorizing(user, order_id)
    intent_id, setup_id = order.payment_intent_id, order.setup_intent_id
    commit_step()
    if not intent_id:
        raise _unavailable()
    try:
        intent = gateway.retrieve(intent_id)
        setup_secret = None
        if not order.payment_method:
            if setup_id:
                setup_secret = gateway.retrieve_setup_intent(setup_id)["client_secret"]
            else:
                customer = saved_cards.customer_of(order.buyer_id)
                commit_step()
                setup_id, setup_secret = gateway.setup_intent(
                    customer, {"order_id": str(order_id)})
                db.session.execute(update(Order).where(Order.id == order_id)
                                   .values(setup_intent_id=setup_id)
                                   .execution_options(synchronize_session=False))
                commit_step()
    except gateway.PaymentError:
        raise _unavailable()
    if intent.status == "requires_capture" or intent.status == "canceled":
        confirm_card_order(order_id)  # it was confirmed (or ended) meanwhile
        db.session.refresh(order)
        raise Conflict(_("This order no longer waits for a card."), code="order_not_authorizing")
    db.session.refresh(order)
    return CardPage(order=order, client_secret=intent.client_secret, setup_secret=setup_secret,
                    needs_action=intent.status == "requires_action" and bool(order.payment_method))


def _own_authorizing(user, order_id: int) -> Order:
    order = own_order(user, order_id)
    if order.status != AUTHORIZING:
        raise Conflict(_("This order no longer waits for a card."), code="order_not_authorizing")
    return order


def _unavailable() -> DomainError:
    return DomainError(_("The card could not be checked right now; try again in a moment."),
                       code="payment_unavailable", status=503)


def use_setup_card(user, order_id: int, *, save: bool = False) -> CardStep:
    """The page confirmed the order's SetupIntent (Stripe.js confirmCardSetup): the card it
    made is checked with Stripe (the SetupIntent succeeded and is this order's), saved for
    later pools if the buyer ticked it, and given to the PaymentIntent, confirmed here.
    Returns the step: authorized, or still authorizing with the client_secret when the bank
    asks for 3-D Secure. A declined card is 402 (the order keeps waiting: another card may
    be typed)."""
    order = _own_authorizing(user, order_id)
    buyer_id, setup_id, intent_id = order.buyer_id, order.setup_intent_id, order.payment_intent_id
    commit_step()
    if not setup_id or not intent_id:
        raise Conflict(_("Type the card first."), code="card_not_confirmed")
    try:
        setup = gateway.retrieve_setup_intent(setup_id)
    except gateway.PaymentError:
        raise _unavailable()
    if setup["status"] != "succeeded" or not setup["payment_method"] \
            or setup["metadata"].get("order_id") != str(order_id):
        raise Conflict(_("Your bank did not confirm the card. Nothing is held."),
                       code="card_not_confirmed")
    method = setup["payment_method"]
    try:
        if save:
            saved_cards.save_card(buyer_id, method)
        intent = gateway.confirm_card(intent_id, method)
    except gateway.CardDeclined:
        raise PaymentDeclined(_("The card was declined. Nothing was held; try another card."),
                              code="payment_declined")
    except gateway.PaymentError:
        raise _unavailable()
    if intent.status == "requires_capture":
        _authorize(order_id, intent)
    order = db.session.get(Order, order_id)
    db.session.refresh(order)
    return CardStep(order, intent.client_secret if order.status == AUTHORIZING else None)


# ---------------------------------------------------------------- step 3: checked with Stripe

def confirm_card_order(order_id: int, user=None) -> Order:
    """Bring an order that waits for its card together with its PaymentIntent at Stripe
    (retrieved here, whatever the caller says): authorized if it is requires_capture for the
    order's amount, currency and id (once: a conditional UPDATE from authorizing); ended
    (failed, grams back) if Stripe cancelled it; otherwise left waiting. With `user`, only
    the buyer's own order (404 otherwise). An order not waiting is returned as it stands.
    Stripe not answering: 503, nothing changed."""
    order = own_order(user, order_id) if user is not None else db.session.get(Order, order_id)
    if order is None:
        return None
    if order.status != AUTHORIZING or not order.payment_intent_id:
        return order
    intent_id = order.payment_intent_id
    commit_step()
    try:
        intent = gateway.retrieve(intent_id)
    except gateway.PaymentError:
        raise _unavailable()
    if intent.status == "requires_capture":
        _authorize(order_id, intent)
    elif intent.status == "canceled":
        _end_authorizing(order_id, "card: the payment was cancelled at Stripe")
    order = db.session.get(Order, order_id)
    db.session.refresh(order)
    return order


def _matches(order_id: int, amount: int, currency: str, hold: gateway.Hold) -> bool:
    return (hold.status == "requires_capture" and hold.amount == amount
            and hold.currency == currency.upper()
            and hold.metadata.get("order_id") == str(order_id))


def _authorize(order_id: int, hold: gateway.Hold) -> bool:
    """Record a hold Stripe showed us for an authorizing order: authorized with its
    PaymentIntent, card and charge, and the ledger's pending entry, in one conditional UPDATE
    (from authorizing, in a pool still open). A hold for another amount, currency or order
    is cancelled and the order ended. True if this call authorized it."""
    facts = db.session.execute(select(Order.amount_authorized_minor, Order.currency,
                                      Order.payment_intent_id, Order.status)
                               .where(Order.id == order_id)).one()
    commit_step()
    if facts.status != AUTHORIZING:
        if not (facts.status == OrderStatus.AUTHORIZED and facts.payment_intent_id == hold.id):
            _cancel_quietly(hold.id)  # ended meanwhile (expired, pool closed): hold nothing
        return False
    if not _matches(order_id, facts.amount_authorized_minor, facts.currency, hold) or \
            (facts.payment_intent_id and facts.payment_intent_id != hold.id):
        if _end_authorizing(order_id, "card: not held for the order's amount"):
            _cancel_quietly(hold.id)
        return False
    row = db.session.execute(
        update(Order).where(Order.id == order_id, Order.status == AUTHORIZING,
                            _in_open_pool(order_id))
        .values(status=OrderStatus.AUTHORIZED, payment_intent_id=hold.id,
                charge_id=hold.charge_id, failure_message="", updated_at=utcnow(),
                **({"payment_method": hold.payment_method} if hold.payment_method else {}))
        .returning(*Order.__table__.columns)
        .execution_options(synchronize_session=False)).mappings().first()
    if row is None:
        commit_step()
        status = db.session.scalar(select(Order.status).where(Order.id == order_id))
        commit_step()
        if status == AUTHORIZING:  # its pool closed meanwhile
            _end_authorizing(order_id, "card: the pool closed meanwhile")
            status = OrderStatus.FAILED
        if status != OrderStatus.AUTHORIZED:
            _cancel_quietly(hold.id)
        return False
    order = db.session.get(Order, order_id)
    for column, value in row.items():
        set_committed_value(order, column, value)
    _ledger_hold(order)
    notices.hold_placed(order)
    commit_step()
    return True


def _end_authorizing(order_id: int, why: str, status: str = OrderStatus.FAILED) -> bool:
    """End an order that waits for its card (nothing is held): failed (or released, the
    buyer gave up) and its grams back to the pool, in one transaction, the pool row first
    (the lock order closing uses). False if it was authorized or ended first. The caller
    cancels the PaymentIntent afterwards (no transaction open)."""
    pool_id = db.session.scalar(select(Order.pool_id).where(Order.id == order_id))
    db.session.execute(select(Pool.id).where(Pool.id == pool_id).with_for_update())
    result = db.session.execute(
        update(Order).where(Order.id == order_id, Order.status == AUTHORIZING)
        .values(status=status, failure_message=why[:255], updated_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        grams = db.session.scalar(select(Order.quantity_g).where(Order.id == order_id))
        _release(pool_id, grams)
    commit_step()
    return result.rowcount == 1


def abandon_card_order(user, order_id: int, *, refused: bool = False) -> Order:
    """The buyer gives up an order that waits for its card (or the bank refused 3-D Secure):
    checked with Stripe first (a hold that is in place makes the order authorized instead),
    then ended, its grams back in the pool and its PaymentIntent cancelled. Only the buyer's
    own order (404). An order not waiting is returned as it stands."""
    order = confirm_card_order(order_id, user=user)
    if order.status != AUTHORIZING:
        return order
    intent_id = order.payment_intent_id
    if _end_authorizing(order_id, REFUSED if refused else "the buyer gave up the card entry",
                        status=OrderStatus.FAILED if refused else OrderStatus.RELEASED):
        if intent_id:
            _cancel_quietly(intent_id)
    db.session.refresh(order)
    return order


# ---------------------------------------------------------------- step 4: expiry

def expire_card_orders(now: datetime | None = None) -> list[int]:
    """Every order still waiting for its card past CARD_AUTH_TIMEOUT_SECONDS: checked with
    Stripe once more (a hold in place is recorded: its page's return and the webhook were
    lost), else failed, its grams back in the pool and every PaymentIntent of it cancelled.
    Returns the ids it ended. Idempotent and safe beside a confirmation: one conditional
    UPDATE from authorizing decides. Stripe not answering raises PaymentError (what was done
    stays done)."""
    now = now or utcnow()
    due = list(db.session.execute(select(Order.id, Order.payment_intent_id).where(
        Order.status == AUTHORIZING, Order.created_at < now - auth_timeout())
        .order_by(Order.id)))
    commit_step()
    ended = []
    for order_id, intent_id in due:
        intents = ([gateway.retrieve(intent_id)] if intent_id
                   else gateway.find_intents("order_id", str(order_id)))
        standing = [h for h in intents if h.status == "requires_capture"]
        if standing and _authorize(order_id, standing[0]):
            continue
        if _end_authorizing(order_id, EXPIRED):
            ended.append(order_id)
            for hold in intents:
                if hold.status not in ("canceled", "succeeded"):
                    _cancel_quietly(hold.id)
    return ended


def drop_authorizing(pool: Pool) -> list[str]:
    """In closing's transaction (the pool row locked): every order of the pool still waiting
    for its card ends failed and its grams leave the committed total, so the decision counts
    only cards that hold. Returns their PaymentIntent ids, for the caller to cancel after its
    commit."""
    rows = list(db.session.execute(
        update(Order).where(Order.pool_id == pool.id, Order.status == AUTHORIZING)
        .values(status=OrderStatus.FAILED, failure_message="card: the pool closed first",
                updated_at=utcnow())
        .returning(Order.quantity_g, Order.payment_intent_id)
        .execution_options(synchronize_session=False)))
    if rows:
        pool.committed_g = pool.committed_g - sum(r.quantity_g for r in rows)
    return [r.payment_intent_id for r in rows if r.payment_intent_id]


def setup_card_choices(buyer_id: int) -> list[tuple[str, str]]:
    """The buyer's saved cards as form choices ("card:<id>", "Visa •••• 4242, 12/2030")."""
    return [(f"card:{c.id}", _("%(brand)s ending %(last4)s, expires %(month)02d/%(year)d (saved)",
                               brand=(c.brand or _("Card")).capitalize(), last4=c.last4,
                               month=c.exp_month, year=c.exp_year))
            for c in saved_cards.saved_cards(buyer_id)]
