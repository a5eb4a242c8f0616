"""Buyers' Stripe Customers and saved cards (issue 14). Payments owns these rows; the pools
domain asks for a buyer's customer before a card order and saves a card the buyer ticked.

Stripe calls are made with no transaction open: the customer is created at Stripe first, then
recorded (the unique buyer_id makes a concurrent second one lose; its customer stays unused)."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from ..common.errors import NotFound
from ..common.idempotency import write_or_find
from ..extensions import db
from . import gateway
from .models import SavedCard, StripeCustomer


def customer_of(buyer_id: int) -> str | None:
    """The buyer's Stripe Customer id, if one was made."""
    return db.session.scalar(select(StripeCustomer.customer_id)
                             .where(StripeCustomer.buyer_id == buyer_id))


def ensure_customer(buyer_id: int) -> str:
    """The buyer's Stripe Customer id, made at Stripe (once) if there is none yet. Commits
    (its own short step, before and after the call to Stripe). PaymentError if Stripe
    refuses or does not answer."""
    found = customer_of(buyer_id)
    db.session.commit()
    if found:
        return found
    customer_id = gateway.create_customer({"buyer_id": str(buyer_id)})

    def write():
        db.session.add(StripeCustomer(buyer_id=buyer_id, customer_id=customer_id))
        db.session.flush()
        return customer_id

    made, earlier = write_or_find(write, lambda: customer_of(buyer_id))
    return made or earlier


def saved_cards(buyer_id: int) -> list[SavedCard]:
    """The buyer's saved cards, oldest first."""
    return list(db.session.scalars(select(SavedCard).where(SavedCard.buyer_id == buyer_id)
                                   .order_by(SavedCard.id)))


def saved_card(buyer_id: int, card_id: int) -> SavedCard:
    """One of the buyer's saved cards; another buyer's (or none) is 404."""
    card = db.session.get(SavedCard, card_id)
    if card is None or card.buyer_id != buyer_id:
        raise NotFound(_("No such card."))
    return card


def save_card(buyer_id: int, payment_method: str) -> SavedCard:
    """Keep a card for the buyer's later pools: attached to the buyer's Customer at Stripe
    (if it is not already) and recorded with what the buyer recognises it by. Saving the
    same card twice records it once. Commits."""
    db.session.commit()
    existing = db.session.scalar(select(SavedCard).where(
        SavedCard.payment_method_id == payment_method))
    if existing is not None:
        return existing
    customer = ensure_customer(buyer_id)
    details = gateway.card_details(payment_method)
    if details["customer"] != customer:
        gateway.attach_card(payment_method, customer)
    card = SavedCard(buyer_id=buyer_id, payment_method_id=payment_method,
                     brand=details["brand"], last4=details["last4"],
                     exp_month=details["exp_month"], exp_year=details["exp_year"])

    def write():
        db.session.add(card)
        db.session.flush()
        return card

    made, earlier = write_or_find(write, lambda: db.session.scalar(select(SavedCard).where(
        SavedCard.payment_method_id == payment_method)))
    return made or earlier


def remove_card(buyer_id: int, card_id: int) -> None:
    """Forget a saved card: detached from the Customer at Stripe (it can no longer be
    charged for a new order; holds already made stay), then deleted here. Another buyer's
    card is 404. Commits."""
    card = saved_card(buyer_id, card_id)
    payment_method = card.payment_method_id
    db.session.commit()
    gateway.detach_card(payment_method)
    db.session.delete(db.session.get(SavedCard, card_id))
    db.session.commit()


def customer_for(buyer_id: int, payment_method: str, typed: bool) -> str | None:
    """The Customer a new hold on this card must name: the buyer's, for a card typed in the
    page (`typed`) or saved; None for a payment method given by id (the API, the sandbox's
    test cards)."""
    if not typed and db.session.scalar(select(SavedCard.id).where(
            SavedCard.buyer_id == buyer_id,
            SavedCard.payment_method_id == payment_method)) is None:
        return None
    return customer_of(buyer_id)
