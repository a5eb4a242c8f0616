"""Exchange rates, one per day and currency pair, as the platform's source gave them."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class ExchangeRate(db.Model):
    """1 `base` = `rate` `quote` on `day` (ECB: 1 EUR = 1.0512 USD). The rate is kept as the
    exact decimal text the source published, never a float: money is converted with Decimal."""

    __tablename__ = "fx_rates"
    __table_args__ = (
        UniqueConstraint("day", "base", "quote"),
        CheckConstraint("base <> quote", name="pair"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(300), default="")
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
