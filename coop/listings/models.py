from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, CheckConstraint, Date, ForeignKey, Index, LargeBinary,
                        String, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db
from ..common import statuses


class Listing(db.Model):
    """A farmer's harvest on offer, in grams. `committed_g` is what pools have taken of it."""

    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint("quantity_g > 0", name="quantity_positive"),
        CheckConstraint("committed_g >= 0 AND committed_g <= quantity_g", name="committed_range"),
        CheckConstraint(
            "status IN ('available', 'committed', 'sold', 'withdrawn')", name="status"
        ),
        UniqueConstraint("farmer_user_id", "idempotency_key"),
        Index("ix_listings_supply", "coop_id", "crop_id", "grade_id", "status"),
        Index("ix_listings_farmer_id_keyset", "farmer_user_id", "id"),  # a farmer's, a page at a time
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    farmer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id"))
    grade_id: Mapped[int] = mapped_column(ForeignKey("grades.id"))
    quantity_g: Mapped[int] = mapped_column(BigInteger)
    committed_g: Mapped[int] = mapped_column(BigInteger, default=0)
    harvested_on: Mapped[date] = mapped_column(Date)
    collection_point: Mapped[str] = mapped_column(String(160), default="")
    notes: Mapped[str] = mapped_column(String(500), default="")
    photo_digest: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="available")
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    crop: Mapped["Crop"] = relationship(lazy="joined")  # noqa: F821
    grade: Mapped["Grade"] = relationship(lazy="joined")  # noqa: F821
    coop: Mapped["Cooperative"] = relationship(lazy="joined")  # noqa: F821
    photo: Mapped["ListingPhoto | None"] = relationship(
        back_populates="listing", uselist=False, lazy="noload"
    )

    @property
    def available_g(self) -> int:
        return 0 if self.status == "withdrawn" else self.quantity_g - self.committed_g


class ListingPhoto(db.Model):
    """The re-encoded photo, kept in the database so every app server behind a balancer sees it."""

    __tablename__ = "listing_photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(
        ForeignKey("listings.id", ondelete="CASCADE"), unique=True
    )
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column()
    height: Mapped[int] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    listing: Mapped[Listing] = relationship(back_populates="photo")


class ListingPlot(db.Model):
    """A plot a harvest listing came from (required for coffee and cacao, which the EU traces
    to their plots)."""

    __tablename__ = "listing_plots"
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id"), primary_key=True)
    plot_id: Mapped[int] = mapped_column(ForeignKey("plots.id"), primary_key=True, index=True)


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(Listing.status, statuses.ListingStatus)

