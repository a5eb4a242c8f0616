from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, ForeignKey, Index, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import RefundStatus, status_check
from ..extensions import db
from ..common import statuses


class Intake(db.Model):
    """What a farmer delivered against an allocation, weighed and graded at the collection
    point: one per allocation. Grams received; accepted up to the allocation (the excess is
    not sold); the farmer is owed the farmer price of the grade received for the grams
    accepted. Every amount is fixed here when it is recorded and never recomputed."""

    __tablename__ = "intakes"
    __table_args__ = (
        UniqueConstraint("allocation_id"),
        UniqueConstraint("coop_id", "idempotency_key"),
        CheckConstraint("received_g >= 0 AND accepted_g >= 0 AND excess_g >= 0"
                        " AND shortfall_g >= 0 AND accepted_g + excess_g = received_g",
                        name="grams"),
        CheckConstraint("farmer_amount_minor >= 0 AND sale_minor >= 0 AND premium_minor >= 0"
                        " AND commission_minor >= 0 AND coop_cost_minor >= 0"
                        " AND refund_minor >= 0", name="amounts_nonneg"),
        CheckConstraint("advance_minor >= 0 AND share_withholding_minor >= 0"
                        " AND advance_minor + share_withholding_minor <= farmer_amount_minor",
                        name="deductions"),
        Index("ix_intakes_farmer", "farmer_user_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), index=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id"))
    farmer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"))
    price_version_id: Mapped[int] = mapped_column(ForeignKey("price_versions.id"))
    currency: Mapped[str] = mapped_column(String(3))
    received_g: Mapped[int] = mapped_column(BigInteger)
    accepted_g: Mapped[int] = mapped_column(BigInteger)
    excess_g: Mapped[int] = mapped_column(BigInteger)
    shortfall_g: Mapped[int] = mapped_column(BigInteger)
    farmer_price_per_kg_minor: Mapped[int] = mapped_column(BigInteger)
    buyer_price_per_kg_minor: Mapped[int] = mapped_column(BigInteger)
    farmer_amount_minor: Mapped[int] = mapped_column(BigInteger)
    # Taken from buyer deposits for the accepted grams (the pool's price less a downgrade).
    sale_minor: Mapped[int] = mapped_column(BigInteger)
    premium_minor: Mapped[int] = mapped_column(BigInteger)
    commission_minor: Mapped[int] = mapped_column(BigInteger)
    # Paid from the coop's own funds: a better grade than the pool's beyond this delivery's
    # commission, or buyers' money that never arrived (a hold that could not be captured).
    coop_cost_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Shortfall plus any downgrade difference, refunded to the pool's buyers.
    refund_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    advance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    share_withholding_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    pool: Mapped["Pool"] = relationship(lazy="joined")  # noqa: F821
    allocation: Mapped["Allocation"] = relationship(lazy="joined")  # noqa: F821
    grade: Mapped["Grade"] = relationship(lazy="joined")  # noqa: F821
    farmer: Mapped["User"] = relationship(lazy="joined",  # noqa: F821
                                          foreign_keys=[farmer_user_id])

    @property
    def net_minor(self) -> int:
        """What settlement still pays the farmer for this delivery."""
        return self.farmer_amount_minor - self.advance_minor - self.share_withholding_minor


class Refund(db.Model):
    """Part of an intake's shortfall given back to one buyer: a partial Stripe refund of the
    order's captured payment, recorded pending before Stripe is called, once per order and
    intake."""

    __tablename__ = "buyer_refunds"
    __table_args__ = (
        UniqueConstraint("order_id", "intake_id"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        status_check(RefundStatus),
        Index("ix_buyer_refunds_status", "status", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    intake_id: Mapped[int] = mapped_column(ForeignKey("intakes.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255))
    failure_message: Mapped[str] = mapped_column(String(255), default="")
    attempts: Mapped[int] = mapped_column(default=0)
    # A worker calling Stripe for this refund holds it until then, so two never both refund.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    order: Mapped["Order"] = relationship(lazy="joined")  # noqa: F821


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(Refund.status, statuses.RefundStatus)

