"""Outside statements the treasurer reconciles the ledger against: Stripe's balance
transactions and the bank's statement lines; and the year-end closes."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, CheckConstraint, Date, ForeignKey, Index, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import BankLineStatus, StripeTxnStatus, status_check
from ..extensions import db
from ..common import statuses


class StripeBalanceTxn(db.Model):
    """One Stripe balance transaction (from the API or the dashboard's CSV export), amounts
    in minor units, signed as Stripe signs them (a charge is positive, a refund or a payout
    negative). `status` is the last reconciliation's verdict; `ledger_amount_minor` what the
    ledger moved through stripe_clearing for the same source id."""

    __tablename__ = "stripe_balance_txns"
    __table_args__ = (
        UniqueConstraint("coop_id", "txn_id"),
        UniqueConstraint("matched_entry_id"),
        status_check(StripeTxnStatus),
        CheckConstraint("origin IN ('api', 'csv')", name="origin"),
        CheckConstraint("fee_minor >= 0", name="fee_nonneg"),
        Index("ix_stripe_balance_txns_source", "coop_id", "source"),
        Index("ix_stripe_balance_txns_created", "coop_id", "created"),
        Index("ix_stripe_balance_txns_charge", "coop_id", "charge_ref"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    txn_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(255))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created: Mapped[datetime] = mapped_column(UTCDateTime())
    available_on: Mapped[datetime | None] = mapped_column(UTCDateTime())
    origin: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="unmatched")
    ledger_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    # A match the treasurer confirmed by hand (no source id in the ledger), and a suggestion.
    matched_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    suggested_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    fee_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    # For a refund: the charge it gives money back on (from the API's expanded source or
    # the CSV's charge column), so a partial capture's released rest is known for what it is.
    charge_ref: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str] = mapped_column(String(255), default="", server_default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BankStatementLine(db.Model):
    """One line of the bank's statement, amount signed (money in > 0). `line_key` makes a
    statement imported twice (or two overlapping statements) add each line once."""

    __tablename__ = "bank_statement_lines"
    __table_args__ = (
        UniqueConstraint("coop_id", "line_key"),
        UniqueConstraint("matched_entry_id"),
        UniqueConstraint("stripe_txn_id"),
        status_check(BankLineStatus),
        CheckConstraint("amount_minor <> 0", name="nonzero"),
        Index("ix_bank_statement_lines_coop_date", "coop_id", "booked_on"),
        Index("ix_bank_statement_lines_reference", "coop_id", "reference"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    line_key: Mapped[str] = mapped_column(String(64))
    booked_on: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(255), default="")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(12), default="unmatched")
    # What it was matched to: a ledger entry that moved the bank account (a farmer payout
    # line, an operating cost, a confirmed Stripe payout) and, for a payout, the Stripe row.
    matched_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    stripe_txn_id: Mapped[int | None] = mapped_column(ForeignKey("stripe_balance_txns.id"))
    note: Mapped[str] = mapped_column(String(255), default="")
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class YearEndClose(db.Model):
    """A closed financial year: the figures as approved and the entries that posted them."""

    __tablename__ = "year_end_closes"
    __table_args__ = (UniqueConstraint("coop_id", "year"),
                      CheckConstraint("year BETWEEN 2000 AND 2200", name="year_range"))
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    year: Mapped[int] = mapped_column()
    surplus_minor: Mapped[int] = mapped_column(BigInteger)
    close_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    distribution_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    summary_json: Mapped[str] = mapped_column(Text, default="{}")
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(StripeBalanceTxn.status, statuses.StripeTxnStatus)
statuses.guard(BankStatementLine.status, statuses.BankLineStatus)

