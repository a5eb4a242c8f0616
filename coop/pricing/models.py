from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class PriceVersion(db.Model):
    """One version of a crop and grade's prices in a cooperative. Never edited: a change is a
    new version, so history keeps who changed what and when, and a pool keeps the version it
    opened with."""

    __tablename__ = "price_versions"
    __table_args__ = (
        UniqueConstraint("coop_id", "crop_id", "grade_id", "version"),
        CheckConstraint("floor_per_kg_minor >= 0", name="floor_nonneg"),
        CheckConstraint("farmer_price_per_kg_minor >= floor_per_kg_minor", name="above_floor"),
        CheckConstraint("commission_value >= 0", name="commission_nonneg"),
        CheckConstraint("premium_per_kg_minor >= 0", name="premium_nonneg"),
        CheckConstraint("commission_kind IN ('bps', 'per_kg')", name="commission_kind"),
        Index("ix_price_versions_current", "coop_id", "crop_id", "grade_id", "version"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id"))
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"))
    version: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    floor_per_kg_minor: Mapped[int] = mapped_column(BigInteger)
    farmer_price_per_kg_minor: Mapped[int] = mapped_column(BigInteger)
    commission_kind: Mapped[str] = mapped_column(String(8))
    commission_value: Mapped[int] = mapped_column(BigInteger)
    premium_per_kg_minor: Mapped[int] = mapped_column(BigInteger)
    # JSON list of [min_grams, commission_value] in ascending min_grams.
    tiers_json: Mapped[str] = mapped_column(Text, default="[]")
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")

    # Loaded when read (a pool's own crop and grade are in the session already); pages that
    # list versions load what they show (pricing.services.history, current_prices).
    crop: Mapped["Crop"] = relationship(lazy="select")  # noqa: F821
    grade: Mapped["Grade"] = relationship(lazy="select")  # noqa: F821
    changed_by: Mapped["User"] = relationship(lazy="select")  # noqa: F821
