"""The EUDR data packs issued for a lot (kept five years, byte for byte) and the due
diligence statement (DDS) reference numbers its buyers record. Written by coop/lots/eudr.py
only (the lots domain)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..extensions import db

PACK_FORMATS = ("geojson", "geojson_b64", "json", "csv")


class EudrPack(db.Model):
    """A pack as first issued to its audience (a buyer of the lot, or the lot's coop: the
    whole lot) in one format, with the DDS reference it carried: later downloads return these
    bytes, never a new rendering. `audience` is "coop" or "buyer:<buyers.id>"; an empty
    `dds_reference` is none recorded."""

    __tablename__ = "eudr_packs"
    __table_args__ = (
        UniqueConstraint("lot_id", "audience", "format", "dds_reference"),
        CheckConstraint("format IN ('geojson', 'geojson_b64', 'json', 'csv')", name="format"),
        CheckConstraint("size >= 0", name="size_nonneg"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    audience: Mapped[str] = mapped_column(String(24))
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"))
    format: Mapped[str] = mapped_column(String(16))
    dds_reference: Mapped[str] = mapped_column(String(64), default="")
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column()
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DdsReference(db.Model):
    """The reference number TRACES gave a buyer's due diligence statement for a lot. Changed
    only through coop/lots/eudr.py, which writes each change to the audit log."""

    __tablename__ = "eudr_dds_references"
    __table_args__ = (
        UniqueConstraint("lot_id", "buyer_id"),
        Index("ix_eudr_dds_references_lot", "lot_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"))
    reference: Mapped[str] = mapped_column(String(64))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changes: Mapped[int] = mapped_column(default=0)
