"""Invoices, credit notes and the farmers' weekly purchase documents (documento soporte in
Colombia, liquidación de compra in Peru), their numbering counters, the coop's invoice
settings and the buyers' billing details. Documents are never edited or deleted: database
triggers refuse it (coop/invoices/ddl.py); the authority's acceptance code is a row of its
own (InvoiceAcceptance), recorded once."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..extensions import db

# The kinds of document a coop numbers, each in its own sequence.
KINDS = ("invoice", "credit_note", "support_doc")


class InvoiceSettings(db.Model):
    """What a coop's documents say about it, and the numbering its tax authority authorised
    (per kind: prefix, range from..to, resolution text and date). Tax rates per crop in basis
    points (0 allowed) as JSON {"coffee": 0, "cacao": 1900}."""

    __tablename__ = "invoice_settings"
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    tax_id: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(300))
    numbering_json: Mapped[str] = mapped_column(Text, default="{}")
    tax_rates_json: Mapped[str] = mapped_column(Text, default="{}")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BuyerBilling(db.Model):
    """A buying organisation's billing details, asked before its first order; editable (an
    issued invoice keeps a copy of what it was issued with)."""

    __tablename__ = "buyer_billing"
    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), unique=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    tax_id: Mapped[str] = mapped_column(String(40))
    country: Mapped[str] = mapped_column(String(2))
    address: Mapped[str] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DocumentCounter(db.Model):
    """The next number of one kind of document of one coop. Taken only by a conditional
    UPDATE ... RETURNING in the transaction that inserts the documents (coop/invoices/
    numbering.py): the row lock orders concurrent issuers, a rollback gives the numbers back,
    and `range_to` is never passed."""

    __tablename__ = "document_counters"
    __table_args__ = (
        UniqueConstraint("coop_id", "kind"),
        CheckConstraint("next_number >= 1", name="next_positive"),
        CheckConstraint("range_to IS NULL OR next_number <= range_to + 1", name="in_range"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    kind: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(10), default="")
    next_number: Mapped[int] = mapped_column(BigInteger, default=1)
    range_from: Mapped[int] = mapped_column(BigInteger, default=1)
    range_to: Mapped[int | None] = mapped_column(BigInteger)
    resolution: Mapped[str] = mapped_column(String(200), default="")
    resolution_on: Mapped[date | None] = mapped_column(Date)


class Invoice(db.Model):
    """One numbered document: an invoice for a captured order, a credit note for a refund
    (pointing at its invoice), or a farmer's weekly purchase document. Parties and lines are
    stored as issued (JSON snapshots), the numbering range and resolution with them."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("coop_id", "kind", "number"),
        UniqueConstraint("coop_id", "source_key"),
        CheckConstraint("kind IN ('invoice', 'credit_note', 'support_doc')", name="kind"),
        CheckConstraint("total_minor >= 0 AND tax_minor >= 0", name="amounts"),
        Index("ix_invoices_coop_keyset", "coop_id", "id"),
        Index("ix_invoices_buyer_keyset", "buyer_id", "id"),
        Index("ix_invoices_farmer", "farmer_user_id", "id"),
        Index("ix_invoices_order", "order_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    kind: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(10), default="")
    number: Mapped[int] = mapped_column(BigInteger)
    # What makes the document once only: "order:<id>", "refund:<id>", "week:<farmer>:<date>".
    source_key: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    total_minor: Mapped[int] = mapped_column(BigInteger)
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"))
    farmer_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id"))
    refund_id: Mapped[int | None] = mapped_column(BigInteger)
    credits_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    week_start: Mapped[date | None] = mapped_column(Date)
    payment: Mapped[str] = mapped_column(String(200), default="")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    range_from: Mapped[int] = mapped_column(BigInteger, default=1)
    range_to: Mapped[int | None] = mapped_column(BigInteger)
    resolution: Mapped[str] = mapped_column(String(200), default="")
    resolution_on: Mapped[date | None] = mapped_column(Date)
    seller_json: Mapped[str] = mapped_column(Text)
    customer_json: Mapped[str] = mapped_column(Text)
    lines_json: Mapped[str] = mapped_column(Text)

    @property
    def full_number(self) -> str:
        return f"{self.prefix}{self.number}"


class InvoiceAcceptance(db.Model):
    """The tax authority's acceptance of a document (Colombia's CUFE, Peru's CDR code), as
    the coop recorded it by hand or by file: once per document."""

    __tablename__ = "invoice_acceptances"
    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), unique=True)
    code: Mapped[str] = mapped_column(String(200))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
