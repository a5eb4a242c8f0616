"""The webhook event log: every Stripe event id, recorded once (coop/payments/webhooks.py)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
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
