"""The webhook event log: every Stripe event id, recorded once (coop/payments/webhooks.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
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
