from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import LedgerEntryStatus, status_check
from ..extensions import db
from ..common import statuses


class LedgerAccount(db.Model):
    """An account of one cooperative. `balance_minor` is debits minus credits of posted
    entries, kept in step by the ledger service and re-checked by `flask ledger check`."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("coop_id", "code"),
        CheckConstraint("kind IN ('asset', 'liability', 'equity', 'income', 'expense')",
                        name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    may_go_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    # The person a per-farmer payable or a per-member share capital account belongs to.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def debit_normal(self) -> bool:
        return self.kind in ("asset", "expense")

    @property
    def normal_balance(self) -> int:
        """The balance on the account's normal side (positive when it holds money)."""
        return self.balance_minor if self.debit_normal else -self.balance_minor


class LedgerEntry(db.Model):
    """A balanced set of postings. Posted entries are never edited or deleted (database
    triggers refuse it); a mistake is corrected by a reversal entry, at most one per entry.
    A pending entry (a card hold) becomes posted or voided once."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("coop_id", "idempotency_key"),
        UniqueConstraint("reverses_id"),
        status_check(LedgerEntryStatus),
        Index("ix_ledger_entries_source", "source_type", "source_id"),
        Index("ix_ledger_entries_external", "coop_id", "external_ref"),
        Index("ix_ledger_entries_coop_id_keyset", "coop_id", "id"),  # a coop's entries, newest first
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    memo: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(8), default="posted")
    currency: Mapped[str] = mapped_column(String(3))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    pending_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    source_type: Mapped[str | None] = mapped_column(String(32))
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    external_ref: Mapped[str | None] = mapped_column(String(255))
    # The invoice or credit note (coop/invoices) a capture or refund entry belongs to.
    document_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    effective_on: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    postings: Mapped[list["LedgerPosting"]] = relationship(
        back_populates="entry", lazy="selectin", order_by="LedgerPosting.id",
        foreign_keys="LedgerPosting.entry_id")


class LedgerPosting(db.Model):
    """One line of an entry: amount_minor > 0 debits the account, < 0 credits it."""

    __tablename__ = "ledger_postings"
    __table_args__ = (CheckConstraint("amount_minor <> 0", name="nonzero"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)

    entry: Mapped[LedgerEntry] = relationship(back_populates="postings",
                                              foreign_keys=[entry_id])
    account: Mapped[LedgerAccount] = relationship(lazy="joined")


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(LedgerEntry.status, statuses.LedgerEntryStatus)

