"""Lots: the writing domain of lots, lot_sequences, lot_sources and lot_source_plots.

A pool's lot is made by the first delivery its intake records (in that delivery's transaction,
under the pool's lock), and every delivery with accepted kilograms adds one source to it: a
copy of the weights, grade and harvest date, the plots of its listing at their current
versions, and the farmer's consent as it stands."""
from __future__ import annotations

from sqlalchemy import select, update

from ..cooperatives.models import Cooperative, FarmerProfile
from ..extensions import db
from ..listings import services as listings
from ..listings.models import Listing
from ..plots import services as plots
from .models import EUDR_HS_HEADINGS, Lot, LotSequence, LotSource, LotSourcePlot


def lot_code(coop: Cooperative, number: int, year: int) -> str:
    """The code printed on the bags: the coop's country, the coop's id, the year, the number
    (e.g. CO-7-2026-0042): short enough to write by hand, unique across coops."""
    return f"{coop.country}-{coop.id}-{year}-{number:04d}"


def _next_number(coop_id: int) -> int:
    """The coop's next lot number, taken under the sequence row's lock (no gap, no duplicate:
    the number is only used by the transaction that commits the lot)."""
    if db.session.get(LotSequence, coop_id) is None:
        db.session.add(LotSequence(coop_id=coop_id, last_number=0))
        db.session.flush()
    number = db.session.execute(
        update(LotSequence).where(LotSequence.coop_id == coop_id)
        .values(last_number=LotSequence.last_number + 1)
        .returning(LotSequence.last_number)).scalar_one()
    return int(number)


def lot_of_pool(pool_id: int) -> Lot | None:
    return db.session.scalar(select(Lot).where(Lot.pool_id == pool_id))


def _lot_for(pool, coop: Cooperative, crop_slug: str) -> Lot:
    lot = lot_of_pool(pool.id)
    if lot is None:
        number = _next_number(coop.id)
        year = pool.decided_at.year if pool.decided_at else pool.created_at.year
        lot = Lot(coop_id=coop.id, pool_id=pool.id, crop_id=pool.crop_id, number=number,
                  code=lot_code(coop, number, year), eudr=crop_slug in EUDR_HS_HEADINGS)
        db.session.add(lot)
        db.session.flush()
    return lot


def add_delivery(intake, allocation, pool, coop: Cooperative, crop_slug: str
                 ) -> LotSource | None:
    """Add a delivery recorded at intake to its pool's lot (made on the first). Called by
    intake in the delivery's own transaction, with the pool locked. A delivery of nothing adds
    nothing. Returns the source, or None."""
    if intake.accepted_g <= 0:
        return None
    lot = _lot_for(pool, coop, crop_slug)
    listing = db.session.get(Listing, allocation.listing_id)
    profile = db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == coop.id, FarmerProfile.user_id == intake.farmer_user_id))
    consent = plots.current_consent(profile.id)
    source = LotSource(lot_id=lot.id, intake_id=intake.id, listing_id=listing.id,
                       farmer_id=profile.id, farmer_user_id=intake.farmer_user_id,
                       grade_id=intake.grade_id, accepted_g=intake.accepted_g,
                       harvested_on=listing.harvested_on,
                       consent_id=consent.id if consent is not None else None)
    db.session.add(source)
    db.session.flush()
    plot_ids = listings.plots_of([listing.id])[listing.id]
    current = plots.current_versions(plot_ids)
    for plot_id in plot_ids:
        version = current.get(plot_id)
        db.session.add(LotSourcePlot(source_id=source.id, plot_id=plot_id,
                                     plot_version_id=version.id if version else None))
    db.session.flush()
    return source
