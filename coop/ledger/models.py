from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import LedgerEntryStatus, status_check
from ..extensions import db


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


class AuditEvent(db.Model):
    """Who did what to money, when, with the state before and after (JSON)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_coop_time", "coop_id", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    before_json: Mapped[str] = mapped_column(String(4000), default="{}")
    after_json: Mapped[str] = mapped_column(String(4000), default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user: Mapped["User | None"] = relationship(lazy="joined")  # noqa: F821


class FinanceSettings(db.Model):
    """A cooperative's money policy: advance at intake, member shares, surplus distribution
    (defaults: Ley 79 de 1988, arts. 54-55). Percentages in basis points (2000 = 20%)."""

    __tablename__ = "finance_settings"
    __table_args__ = (
        CheckConstraint("advance_bps BETWEEN 0 AND 10000", name="advance_range"),
        CheckConstraint("share_withholding_bps BETWEEN 0 AND 10000", name="withholding_range"),
        CheckConstraint("share_par_minor >= 0 AND share_min_shares >= 0", name="shares_nonneg"),
        CheckConstraint("reserve_bps >= 2000 AND education_bps >= 2000 AND solidarity_bps >= 1000"
                        " AND reserve_bps + education_bps + solidarity_bps <= 10000",
                        name="ley79_minimums"),
        CheckConstraint("patronage_cash_bps BETWEEN 0 AND 10000", name="cash_range"),
    )
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), primary_key=True)
    advance_bps: Mapped[int] = mapped_column(default=0)
    share_par_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    share_min_shares: Mapped[int] = mapped_column(default=0)
    share_withholding_bps: Mapped[int] = mapped_column(default=0)
    reserve_bps: Mapped[int] = mapped_column(default=2000)
    education_bps: Mapped[int] = mapped_column(default=2000)
    solidarity_bps: Mapped[int] = mapped_column(default=1000)
    patronage_cash_bps: Mapped[int] = mapped_column(default=5000)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
