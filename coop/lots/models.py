"""Lots: the kilograms a confirmed pool received at intake, kept together from the farms to
the buyers. A pool has one lot; each delivery recorded at intake adds a source (which farmer,
from which listing and plots, harvest date, grade, accepted weight), and each source keeps the
versions of its plots it was built from and the farmer's consent as it stood, so what the lot
says of its origin never changes after a plot is redrawn or a consent withdrawn."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, Boolean, CheckConstraint, Date, ForeignKey, Index, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db

# Crops whose lots need the EUDR data pack (HS heading by crop slug); the others get the lot
# and its traceability, not the pack.
EUDR_HS_HEADINGS = {"coffee": "0901", "cacao": "1801"}


class LotSequence(db.Model):
    """The last lot number a coop gave: numbers follow each other without gaps, taken under
    the row's lock in the transaction that creates the lot."""

    __tablename__ = "lot_sequences"
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Lot(db.Model):
    """A pool's received kilograms under one code (printed on the bags' labels). `eudr` says
    whether the crop falls under the EU Deforestation Regulation (coffee, cacao)."""

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("coop_id", "number"),
        UniqueConstraint("code"),
        CheckConstraint("number > 0", name="number_positive"),
        Index("ix_lots_coop_keyset", "coop_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id"), unique=True)
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id"))
    number: Mapped[int] = mapped_column()
    code: Mapped[str] = mapped_column(String(32))
    eudr: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    sources: Mapped[list["LotSource"]] = relationship(
        back_populates="lot", lazy="noload", order_by="LotSource.id")


class LotSource(db.Model):
    """One delivery in a lot: a copy of what intake accepted (never edited), with the
    farmer's consent to share name and plot location as it stood when the lot took it."""

    __tablename__ = "lot_sources"
    __table_args__ = (
        CheckConstraint("accepted_g > 0", name="accepted_positive"),
        Index("ix_lot_sources_lot", "lot_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    intake_id: Mapped[int] = mapped_column(ForeignKey("intakes.id"), unique=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"))
    farmer_id: Mapped[int] = mapped_column(ForeignKey("farmer_profiles.id"), index=True)
    farmer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"))
    accepted_g: Mapped[int] = mapped_column(BigInteger)
    harvested_on: Mapped[date] = mapped_column(Date)
    consent_id: Mapped[int | None] = mapped_column(ForeignKey("trace_consents.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    lot: Mapped[Lot] = relationship(back_populates="sources")
    plots: Mapped[list["LotSourcePlot"]] = relationship(
        lazy="noload", order_by="LotSourcePlot.plot_id")


class LotSourcePlot(db.Model):
    """A plot a delivery came from, at the version it had when the lot took the delivery
    (None: the plot had no EUDR data yet, and the lot says so)."""

    __tablename__ = "lot_source_plots"
    __table_args__ = (
        UniqueConstraint("source_id", "plot_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("lot_sources.id"))
    plot_id: Mapped[int] = mapped_column(ForeignKey("plots.id"), index=True)
    plot_version_id: Mapped[int | None] = mapped_column(ForeignKey("plot_versions.id"))
