"""The webhook event log: every Stripe event id, recorded once (coop/payments/webhooks.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class StripeEvent(db.Model):
    """Every webhook event id, recorded once: a replay finds it here and changes nothing."""

    __tablename__ = "stripe_events"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    object_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    outcome: Mapped[str] = mapped_column(Text, default="")


class StripeSlot(db.Model):
    """One of the SETTLE_CONCURRENCY_PER_ACCOUNT places of a Stripe account: a settlement
    chunk job holds one while it calls Stripe (a lease, not a lock: no transaction stays open),
    so that however many workers run, no more than that many call one account at once."""

    __tablename__ = "stripe_slots"
    account: Mapped[str] = mapped_column(String(40), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    holder: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StripeThrottle(db.Model):
    """A Stripe account that answered 429 (rate limited): nobody calls it before `until`;
    `level` doubles the wait at each 429 in a row and is cleared by a chunk that went through."""

    __tablename__ = "stripe_throttles"
    account: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=0)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StripeCustomer(db.Model):
    """The Stripe Customer of a buyer, made once at the buyer's first card entry: the cards
    typed in the browser are attached to it, so that a change of quantity can hold again."""

    __tablename__ = "stripe_customers"
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), primary_key=True,
                                          autoincrement=False)
    customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SavedCard(db.Model):
    """A card the buyer chose to keep for later pools (a PaymentMethod attached to the
    buyer's Stripe Customer). Only Stripe's id and what the buyer recognises it by."""

    __tablename__ = "saved_cards"
    __table_args__ = (UniqueConstraint("payment_method_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    payment_method_id: Mapped[str] = mapped_column(String(255))
    brand: Mapped[str] = mapped_column(String(20), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    exp_month: Mapped[int] = mapped_column(Integer, default=0)
    exp_year: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
