from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, CheckConstraint, Date, ForeignKey, Index, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import OrderStatus, PoolStatus, status_check
from ..extensions import db
from ..common import statuses


class Pool(db.Model):
    """A pooled lot of one crop and grade from one cooperative, in grams."""

    __tablename__ = "pools"
    __table_args__ = (
        CheckConstraint("min_g > 0 AND min_g <= max_g", name="min_max"),
        CheckConstraint("committed_g >= 0 AND committed_g <= max_g", name="committed_range"),
        status_check(PoolStatus),
        Index("ix_pools_open", "coop_id", "crop_id", "grade_id", "status"),
        Index("ix_pools_due", "status", "closes_at"),
        # keyset pages: a coop's pools, the pools of a status, newest first
        Index("ix_pools_coop_id_keyset", "coop_id", "id"),
        Index("ix_pools_status_id_keyset", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id"))
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"))
    price_version_id: Mapped[int] = mapped_column(ForeignKey("price_versions.id"))
    currency: Mapped[str] = mapped_column(String(3))
    min_g: Mapped[int] = mapped_column(BigInteger)
    max_g: Mapped[int] = mapped_column(BigInteger)
    committed_g: Mapped[int] = mapped_column(BigInteger, default=0)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(12), default="open")
    # Set when the pool is decided (confirmed/failed/cancelled), in the same transaction.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    final_price_per_kg_minor: Mapped[int | None] = mapped_column(BigInteger)
    allocated_g: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set when every hold has been captured or cancelled at Stripe.
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How many card holds the close left to capture or cancel (settlement's progress: that
    # many less the orders still authorized).
    settle_total: Mapped[int] = mapped_column(default=0, server_default="0")
    # Delivery terms (coop/pools/terms.py): picked up at the collection point (EXW) or handed
    # to a carrier or exporter at a named place (FCA), expected on a day (None: not said).
    delivery_terms: Mapped[str] = mapped_column(String(3), default="EXW", server_default="EXW")
    delivery_place: Mapped[str] = mapped_column(String(200), default="", server_default="")
    delivery_expected_on: Mapped[date | None] = mapped_column(Date)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    crop: Mapped["Crop"] = relationship(lazy="joined")  # noqa: F821
    grade: Mapped["Grade"] = relationship(lazy="joined")  # noqa: F821
    coop: Mapped["Cooperative"] = relationship(lazy="joined")  # noqa: F821
    price: Mapped["PriceVersion"] = relationship(lazy="joined")  # noqa: F821


class Order(db.Model):
    """A buyer's commitment to a pool, backed by a card hold (manual-capture PaymentIntent)."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("quantity_g > 0", name="quantity_positive"),
        status_check(OrderStatus),
        CheckConstraint("amount_captured_minor <= amount_authorized_minor", name="capture_le_hold"),
        CheckConstraint("amount_refunded_minor <= amount_captured_minor", name="refund_le_capture"),
        UniqueConstraint("buyer_id", "idempotency_key"),
        UniqueConstraint("payment_intent_id"),
        Index("ix_orders_pool_status", "pool_id", "status"),
        Index("ix_orders_buyer_id_keyset", "buyer_id", "id"),  # a buyer's orders a page at a time
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    quantity_g: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(255))
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    charge_id: Mapped[str | None] = mapped_column(String(255))
    # Card entry in the browser (status authorizing): the SetupIntent that turns the typed card
    # into a PaymentMethod where the page saves it or the sandbox's Stripe.js needs it.
    setup_intent_id: Mapped[str | None] = mapped_column(String(255))
    amount_authorized_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # What closing decided to take (the tier price x quantity); captured is what Stripe took.
    amount_due_minor: Mapped[int | None] = mapped_column(BigInteger)
    amount_captured_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str] = mapped_column(String(255), default="")
    # Settlement (coop/pools/settlement.py): the run of a chunk job that is capturing or
    # cancelling this hold at Stripe, and until when; past it, another run may claim it.
    settle_claim: Mapped[str | None] = mapped_column(String(32))
    settle_claim_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    pool: Mapped[Pool] = relationship(lazy="joined")


class Allocation(db.Model):
    """Grams of a farmer's listing sold in a confirmed pool (largest-remainder pro rata)."""

    __tablename__ = "allocations"
    __table_args__ = (
        UniqueConstraint("pool_id", "listing_id"),
        CheckConstraint("quantity_g > 0", name="quantity_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), index=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), index=True)
    farmer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    quantity_g: Mapped[int] = mapped_column(BigInteger)
    farmer_price_per_kg_minor: Mapped[int] = mapped_column(BigInteger)
    farmer_amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    pool: Mapped[Pool] = relationship(lazy="joined")
    listing: Mapped["Listing"] = relationship(lazy="joined")  # noqa: F821


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(Pool.status, statuses.PoolStatus)
statuses.guard(Order.status, statuses.OrderStatus)

