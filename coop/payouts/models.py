from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import PayoutBatchStatus, PayoutLineStatus, status_check
from ..extensions import db
from ..common import statuses


class PayoutBatch(db.Model):
    """One run of payments to farmers, for one rail or all of them. `open` while any line
    waits for the bank's confirmation, `closed` once every line is paid or failed."""

    __tablename__ = "payout_batches"
    __table_args__ = (
        UniqueConstraint("coop_id", "idempotency_key"),
        status_check(PayoutBatchStatus),
        CheckConstraint("total_minor >= 0", name="total_nonneg"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    rail: Mapped[str | None] = mapped_column(String(16))  # None: every rail
    status: Mapped[str] = mapped_column(String(8), default="open")
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    lines: Mapped[list["PayoutLine"]] = relationship(
        back_populates="batch", lazy="select", order_by="PayoutLine.id")
    exclusions: Mapped[list["PayoutExclusion"]] = relationship(
        lazy="select", order_by="PayoutExclusion.id")


class PayoutLine(db.Model):
    """A payment to one farmer by one rail. The payee's details are copied from the member
    record when the batch is made, so the file sent to the bank can always be shown again.
    `pending` until the bank confirms: `paid` posts to the ledger once, `failed` returns the
    amount to what is due."""

    __tablename__ = "payout_lines"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        status_check(PayoutLineStatus),
        CheckConstraint(
            "rail IN ('bank', 'breb', 'nequi', 'daviplata', 'yape', 'plin', 'spei', 'cash')",
            name="rail"),
        Index("ix_payout_lines_coop_farmer_status", "coop_id", "farmer_user_id", "status"),
        Index("ix_payout_lines_batch_id_keyset", "batch_id", "id"),  # a batch a page at a time
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    farmer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rail: Mapped[str] = mapped_column(String(16))
    payee_name: Mapped[str] = mapped_column(String(160))
    national_id: Mapped[str] = mapped_column(String(32), default="")
    account: Mapped[str] = mapped_column(String(64), default="")
    bank_name: Mapped[str] = mapped_column(String(80), default="")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Why the treasurer should look at this line (a Yape monthly cap, a split Bre-B transfer).
    flag: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(8), default="pending")
    reference: Mapped[str | None] = mapped_column(String(255))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    batch: Mapped[PayoutBatch] = relationship(back_populates="lines")


class PayoutExclusion(db.Model):
    """A farmer who was owed money but left out of a batch, and why (an account that cannot
    be right for the rail, a monthly cap reached). Their amount stays due."""

    __tablename__ = "payout_exclusions"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    farmer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    payee_name: Mapped[str] = mapped_column(String(160))
    rail: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(255))


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(PayoutBatch.status, statuses.PayoutBatchStatus)
statuses.guard(PayoutLine.status, statuses.PayoutLineStatus)

