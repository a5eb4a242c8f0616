"""Lots: the writing domain of lots, lot_sequences, lot_sources and lot_source_plots.

A pool's lot is made by the first delivery its intake records (in that delivery's transaction,
under the pool's lock), and every delivery with accepted kilograms adds one source to it: a
copy of the weights, grade and harvest date, the plots of its listing at their current
versions, and the farmer's consent as it stands."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from ..auth.models import User
from ..catalog.models import Crop, Grade
from ..common.access import require_member
from ..common.apportion import largest_remainder
from ..common.errors import NotFound
from ..cooperatives.models import Cooperative, FarmerProfile
from ..extensions import db
from ..listings import services as listings
from ..listings.models import Listing
from ..plots import services as plots
from ..plots.models import Plot, PlotVersion, TraceConsent
from ..pools.models import Order
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


def _take_consent(consent: TraceConsent) -> None:
    """A farmer's new consent goes to their deliveries that lots took without one (asked by
    the manager because of those lots); a delivery that has a consent keeps it, withdrawn or
    not."""
    db.session.execute(update(LotSource).where(
        LotSource.farmer_id == consent.farmer_id, LotSource.consent_id.is_(None))
        .values(consent_id=consent.id))


if _take_consent not in plots.consent_listeners:
    plots.consent_listeners.append(_take_consent)


# ---------------------------------------------------------------- who sees a lot

def get_lot(lot_id: int) -> Lot:
    lot = db.session.get(Lot, lot_id)
    if lot is None:
        raise NotFound(_("Not found."))
    return lot


def managed_lot(user, lot_id: int, *roles: str) -> Lot:
    """The lot, for a member of its coop with one of `roles` (default manager or treasurer);
    anyone else: 404 (another coop's lot is never a hint)."""
    lot = get_lot(lot_id)
    require_member(lot.coop_id, *(roles or ("manager", "treasurer")), user=user)
    return lot


def buyer_orders_in(user, lot: Lot) -> list[Order]:
    """The user's buyer's captured orders in the lot's pool (none: not a buyer of it)."""
    buyer_id = getattr(user, "buyer_id", None) if getattr(user, "is_authenticated", False) \
        else None
    if buyer_id is None:
        return []
    return list(db.session.scalars(select(Order).where(
        Order.pool_id == lot.pool_id, Order.buyer_id == buyer_id,
        Order.status == "captured").order_by(Order.id)))


def bought_lot(user, lot_id: int) -> tuple[Lot, list[Order]]:
    """The lot and the user's captured orders in it, for its buyers only (others: 404)."""
    lot = get_lot(lot_id)
    orders = buyer_orders_in(user, lot)
    if not orders:
        raise NotFound(_("Not found."))
    return lot, orders


def farmer_sources(user, lot_id: int) -> tuple[Lot, list[LotSource]]:
    """The lot and the user's own deliveries in it, for a farmer who delivered into it."""
    lot = get_lot(lot_id)
    uid = user.id if getattr(user, "is_authenticated", False) else None
    rows = list(db.session.scalars(select(LotSource).where(
        LotSource.lot_id == lot.id, LotSource.farmer_user_id == uid).order_by(LotSource.id))) \
        if uid is not None else []
    if not rows:
        raise NotFound(_("Not found."))
    return lot, rows


# ---------------------------------------------------------------- what a lot holds

@dataclass(frozen=True)
class SourceView:
    """A delivery in a lot with what the pages and the EUDR pack need of it."""
    source: LotSource
    farmer_name: str
    member_number: str
    gender: str | None
    grade_code: str
    consent: TraceConsent | None
    plots: tuple[tuple[Plot, PlotVersion | None], ...]   # the pinned versions


@dataclass(frozen=True)
class LotDetail:
    lot: Lot
    coop: Cooperative
    crop_slug: str
    sources: tuple[SourceView, ...]

    @property
    def net_g(self) -> int:
        return sum(s.source.accepted_g for s in self.sources)

    @property
    def farmer_count(self) -> int:
        return len({s.source.farmer_id for s in self.sources})

    @property
    def women_share_bps(self) -> int | None:
        """Women's share of the lot's farmers, in basis points (None: no farmers)."""
        farmers = {s.source.farmer_id: s.gender for s in self.sources}
        if not farmers:
            return None
        women = sum(1 for g in farmers.values() if g == "female")
        return women * 10000 // len(farmers)

    @property
    def harvest_period(self) -> tuple[date, date] | None:
        days = [s.source.harvested_on for s in self.sources]
        return (min(days), max(days)) if days else None


def detail(lot: Lot) -> LotDetail:
    """Everything a lot's pages and pack show, in a constant number of queries: its sources,
    their farmers (name, member number, gender), grades, consents as the lot took them, and
    each plot at its pinned version."""
    coop = db.session.get(Cooperative, lot.coop_id)
    crop_slug = db.session.scalar(select(Crop.slug).where(Crop.id == lot.crop_id))
    rows = db.session.execute(
        select(LotSource, User.name, FarmerProfile.member_number, FarmerProfile.gender,
               Grade.code)
        .join(FarmerProfile, FarmerProfile.id == LotSource.farmer_id)
        .join(User, User.id == LotSource.farmer_user_id)
        .join(Grade, Grade.id == LotSource.grade_id)
        .where(LotSource.lot_id == lot.id).order_by(LotSource.id)).all()
    source_ids = [r[0].id for r in rows]
    consent_ids = [r[0].consent_id for r in rows if r[0].consent_id is not None]
    consents = {c.id: c for c in db.session.scalars(
        select(TraceConsent).where(TraceConsent.id.in_(consent_ids)))} if consent_ids else {}
    pinned: dict[int, list[tuple[Plot, PlotVersion | None]]] = {i: [] for i in source_ids}
    if source_ids:
        for link, plot, version in db.session.execute(
                select(LotSourcePlot, Plot, PlotVersion)
                .join(Plot, Plot.id == LotSourcePlot.plot_id)
                .outerjoin(PlotVersion, PlotVersion.id == LotSourcePlot.plot_version_id)
                .where(LotSourcePlot.source_id.in_(source_ids))
                .order_by(LotSourcePlot.source_id, LotSourcePlot.plot_id)):
            pinned[link.source_id].append((plot, version))
    views = tuple(SourceView(
        source=s, farmer_name=name, member_number=number, gender=gender, grade_code=grade,
        consent=consents.get(s.consent_id) if s.consent_id else None,
        plots=tuple(pinned[s.id])) for s, name, number, gender, grade in rows)
    return LotDetail(lot=lot, coop=coop, crop_slug=crop_slug, sources=views)


# ---------------------------------------------------------------- EUDR readiness

@dataclass(frozen=True)
class Gap:
    """One thing keeping a lot from being EUDR-ready: `code` is a key of
    plots.services.GAP_TEXT or "no_plot" (a delivery that names no plot)."""
    source_id: int
    farmer_id: int
    farmer_name: str
    plot_id: int | None
    plot_name: str | None
    code: str

    @property
    def text(self) -> str:
        if self.code == "no_plot":
            return str(NO_PLOT_TEXT)
        return str(plots.GAP_TEXT[self.code])


NO_PLOT_TEXT = _l("the delivery names no plot it came from")


def gaps(d: LotDetail) -> list[Gap]:
    """What the lot lacks to be EUDR-ready, per delivery and plot, from the versions and
    consents the lot was built with (empty: ready). Each delivery needs at least one plot,
    each plot a geometry (a point only up to 4 ha), the cut-off declaration and the tenure,
    and its farmer's consent."""
    found: list[Gap] = []
    for s in d.sources:
        base = dict(source_id=s.source.id, farmer_id=s.source.farmer_id,
                    farmer_name=s.farmer_name)
        if not s.plots:
            found.append(Gap(**base, plot_id=None, plot_name=None, code="no_plot"))
        for plot, version in s.plots:
            for code in plots.gaps(version):
                found.append(Gap(**base, plot_id=plot.id, plot_name=plot.name, code=code))
        if s.consent is None:
            found.append(Gap(**base, plot_id=None, plot_name=None, code="no_consent"))
    return found


def farmers_to_ask(d: LotDetail) -> list[SourceView]:
    """The lot's farmers whose consent is missing (one entry per farmer), for the manager."""
    seen, ask = set(), []
    for s in d.sources:
        if s.consent is None and s.source.farmer_id not in seen:
            seen.add(s.source.farmer_id)
            ask.append(s)
    return ask


# ---------------------------------------------------------------- the buyers' shares

def buyer_shares(lot: Lot, net_g: int | None = None) -> dict[int, int]:
    """Each captured order's share of the lot's net mass (grams accepted at intake), pro rata
    to the quantity ordered, largest remainder: the parts add up to the lot exactly. Keyed by
    order id."""
    if net_g is None:
        net_g = int(db.session.scalar(select(func.coalesce(func.sum(LotSource.accepted_g), 0))
                                      .where(LotSource.lot_id == lot.id)))
    weights = list(db.session.execute(select(Order.id, Order.quantity_g).where(
        Order.pool_id == lot.pool_id, Order.status == "captured").order_by(Order.id)))
    if net_g <= 0 or not weights:
        return {}
    return largest_remainder(net_g, [(oid, int(q)) for oid, q in weights])
