"""What the lot pages show, read in a constant number of queries: the coop's lots a page at a
time with their EUDR state, a lot's deliveries with their intake record, the buyers' view of a
lot (names and exact plots only of the farmers who consented), a farmer's lots, the labels'
count. Reads only; the lots tables are written by coop.lots.services."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..catalog.models import Crop, Grade
from ..common.paging import PER_PAGE, KeysetPage, keyset
from ..cooperatives.models import Cooperative
from ..extensions import db
from ..intake.models import Intake
from ..plots import services as plots
from ..plots.models import Plot, PlotVersion
from . import services
from .models import Lot, LotSource, LotSourcePlot

BAG_KG = 60          # a bag of green coffee or dry cacao: one label per bag, rounded up
MAX_LABELS = 300     # labels typed or counted: at most this many on one page
DELIVERIES_PER_PAGE = 50  # a lot's deliveries (and their plots on the map) a page at a time
GAPS_SHOWN = 50      # what a lot lacks, listed up to this many (the rest counted)


@dataclass(frozen=True)
class Window:
    """A page of a lot's deliveries: `items` after the delivery `after` (None: the first
    page), `next_after` the cursor of the next page (None: the last), `total` of the lot."""
    items: list
    after: int | None
    next_after: int | None
    total: int


def window(items: list, key, after_arg: str | None, size: int | None = None) -> Window:
    """The deliveries after the one whose key is `after_arg` (a delivery's id, as the page's
    `after` argument; anything else: the first page), `size` of them. The lot's totals and
    EUDR state are of the whole lot; only the table and the map are paged, so a lot of
    thousands of farmers is a page of the usual size."""
    size = size or DELIVERIES_PER_PAGE
    after = int(after_arg) if after_arg and after_arg.isdigit() and len(after_arg) < 19 \
        else None
    rest = [x for x in items if after is None or key(x) > after]
    shown = rest[:size]
    return Window(items=shown, after=after,
                  next_after=key(shown[-1]) if len(rest) > size else None, total=len(items))


# ---------------------------------------------------------------- a coop's lots

@dataclass(frozen=True)
class LotRow:
    lot: Lot
    crop: Crop
    net_g: int
    farmers: int
    gap_count: int          # what keeps it from EUDR-ready (0: ready)
    to_ask: int             # farmers to ask for consent

    @property
    def ready(self) -> bool:
        return self.lot.eudr and self.gap_count == 0


def readiness(lot_ids) -> dict[int, tuple[int, int]]:
    """(gaps, farmers to ask) of each lot, by the rules of services.gaps, in two queries."""
    ids = list(set(lot_ids))
    found = {i: [0, set()] for i in ids}
    if not ids:
        return {}
    sources = db.session.execute(select(LotSource.id, LotSource.lot_id, LotSource.farmer_id,
                                        LotSource.consent_id)
                                 .where(LotSource.lot_id.in_(ids))).all()
    lot_of = {sid: lot_id for sid, lot_id, _f, _c in sources}
    with_plot = set()
    for source_id, version in db.session.execute(
            select(LotSourcePlot.source_id, PlotVersion)
            .outerjoin(PlotVersion, PlotVersion.id == LotSourcePlot.plot_version_id)
            .join(LotSource, LotSource.id == LotSourcePlot.source_id)
            .where(LotSource.lot_id.in_(ids))):
        with_plot.add(source_id)
        found[lot_of[source_id]][0] += len(plots.gaps(version))
    for sid, lot_id, farmer_id, consent_id in sources:
        if sid not in with_plot:
            found[lot_id][0] += 1
        if consent_id is None:
            found[lot_id][0] += 1
            found[lot_id][1].add(farmer_id)
    return {i: (gaps, len(ask)) for i, (gaps, ask) in found.items()}


def coop_lots_page(coop_id: int, cursor: str | None, limit: int = PER_PAGE) -> KeysetPage:
    """The coop's lots, newest first (keyset on the id), each as a LotRow."""
    page = keyset(select(Lot).where(Lot.coop_id == coop_id), [(Lot.id, "desc")], cursor, limit)
    ids = [lot.id for lot in page.items]
    crops = {c.id: c for c in db.session.scalars(select(Crop).where(
        Crop.id.in_({lot.crop_id for lot in page.items})))} if ids else {}
    sums = {lot_id: (int(g or 0), int(n or 0)) for lot_id, g, n in db.session.execute(
        select(LotSource.lot_id, func.sum(LotSource.accepted_g),
               func.count(func.distinct(LotSource.farmer_id)))
        .where(LotSource.lot_id.in_(ids)).group_by(LotSource.lot_id))} if ids else {}
    states = readiness(ids)
    page.items = [LotRow(lot=lot, crop=crops[lot.crop_id], net_g=sums.get(lot.id, (0, 0))[0],
                         farmers=sums.get(lot.id, (0, 0))[1],
                         gap_count=states.get(lot.id, (0, 0))[0],
                         to_ask=states.get(lot.id, (0, 0))[1]) for lot in page.items]
    return page


# ---------------------------------------------------------------- one lot

@dataclass(frozen=True)
class Delivery:
    view: services.SourceView
    received_g: int
    recorded_at: datetime | None


@dataclass(frozen=True)
class LotPage:
    detail: services.LotDetail
    crop: Crop
    grades: tuple[Grade, ...]
    deliveries: tuple[Delivery, ...]
    received_g: int
    first_intake: datetime | None
    last_intake: datetime | None

    @property
    def lot(self) -> Lot:
        return self.detail.lot

    @property
    def coop(self) -> Cooperative:
        return self.detail.coop


def lot_page(lot: Lot) -> LotPage:
    """A lot with its deliveries' intake record, its crop and grades: services.detail and
    three more queries."""
    d = services.detail(lot)
    crop = db.session.get(Crop, lot.crop_id)
    grade_ids = {s.source.grade_id for s in d.sources}
    grades = tuple(db.session.scalars(select(Grade).where(Grade.id.in_(grade_ids))
                                      .order_by(Grade.sort_order))) if grade_ids else ()
    intake_ids = [s.source.intake_id for s in d.sources]
    intakes = {i: (int(r), at) for i, r, at in db.session.execute(
        select(Intake.id, Intake.received_g, Intake.recorded_at)
        .where(Intake.id.in_(intake_ids)))} if intake_ids else {}
    deliveries = tuple(Delivery(view=s, received_g=intakes.get(s.source.intake_id, (0, None))[0],
                                recorded_at=intakes.get(s.source.intake_id, (0, None))[1])
                       for s in d.sources)
    days = [x.recorded_at for x in deliveries if x.recorded_at is not None]
    return LotPage(detail=d, crop=crop, grades=grades, deliveries=deliveries,
                   received_g=sum(x.received_g for x in deliveries),
                   first_intake=min(days) if days else None,
                   last_intake=max(days) if days else None)


@dataclass(frozen=True)
class Ask:
    """A farmer to ask for consent: where the manager records it (a plot page of theirs, or
    their member page when they have no plot). A consent recorded goes to the lot's
    deliveries (services._take_consent): the farmer is then no longer asked."""
    view: services.SourceView
    plot_id: int | None


def asks(d: services.LotDetail) -> list[Ask]:
    """services.farmers_to_ask with the plot page to record each consent on: two queries."""
    ask = services.farmers_to_ask(d)
    ids = [s.source.farmer_id for s in ask]
    if not ids:
        return []
    first_plot = dict(db.session.execute(select(Plot.farmer_id, func.min(Plot.id))
                                         .where(Plot.farmer_id.in_(ids))
                                         .group_by(Plot.farmer_id)).all())
    return [Ask(view=s, plot_id=s.plots[0][0].id if s.plots else first_plot.get(
        s.source.farmer_id)) for s in ask]


# ---------------------------------------------------------------- the buyers' view

def reader_of(user, lot_id: int) -> tuple[str, Lot, list]:
    """Who opens the lot's address (the QR code on its bags): ("buyer", lot, their captured
    orders), its coop's staff ("staff", lot, []), a farmer who delivered into it ("farmer",
    lot, []); anyone else: NotFound."""
    from ..common.access import roles_in
    lot = services.get_lot(lot_id)
    orders = services.buyer_orders_in(user, lot)
    if orders:
        return "buyer", lot, orders
    if roles_in(user, lot.coop_id) & {"manager", "treasurer"}:
        return "staff", lot, []
    services.farmer_sources(user, lot_id)       # NotFound unless they delivered into it
    return "farmer", lot, []

@dataclass(frozen=True)
class BuyerSource:
    """A delivery as the lot's buyers see it: the farmer's name and plots only with consent;
    otherwise "farmer N" and no plot."""
    source_id: int
    number: int
    consented: bool
    farmer_name: str | None
    plots: tuple[tuple[Plot, PlotVersion | None], ...]
    grade_code: str
    accepted_g: int
    harvested_on: object


def buyer_sources(d: services.LotDetail) -> list[BuyerSource]:
    """One entry per farmer (numbered in the order they delivered): the consented ones named,
    with their plots at the pinned versions; the others anonymous, their plots left out."""
    numbers: dict[int, int] = {}
    rows = []
    for s in d.sources:
        n = numbers.setdefault(s.source.farmer_id, len(numbers) + 1)
        consented = s.consent is not None
        rows.append(BuyerSource(source_id=s.source.id, number=n, consented=consented,
                                farmer_name=s.farmer_name if consented else None,
                                plots=s.plots if consented else (),
                                grade_code=s.grade_code, accepted_g=s.source.accepted_g,
                                harvested_on=s.source.harvested_on))
    return rows


# ---------------------------------------------------------------- a farmer's lots

@dataclass(frozen=True)
class FarmerLot:
    source: LotSource
    lot: Lot
    crop: Crop
    grade: Grade
    coop_name: str


def farmer_lots_page(user, cursor: str | None, limit: int = PER_PAGE) -> KeysetPage:
    """The lots the farmer's kilograms went into, one row per delivery, newest first."""
    stmt = (select(LotSource, Lot, Crop, Grade, Cooperative.name)
            .join(Lot, Lot.id == LotSource.lot_id)
            .join(Crop, Crop.id == Lot.crop_id)
            .join(Grade, Grade.id == LotSource.grade_id)
            .join(Cooperative, Cooperative.id == Lot.coop_id)
            .where(LotSource.farmer_user_id == user.id))
    page = keyset(stmt, [(LotSource.id, "desc")], cursor, limit, scalars=False,
                  key=lambda row: (row[0].id,))
    page.items = [FarmerLot(source=s, lot=lot, crop=crop, grade=grade, coop_name=name)
                  for s, lot, crop, grade, name in page.items]
    return page


# ---------------------------------------------------------------- labels

def default_labels(net_g: int) -> int:
    """One label per 60 kg bag, rounded up (at least one, at most MAX_LABELS)."""
    bags = -(-int(net_g) // (BAG_KG * 1000))
    return max(1, min(MAX_LABELS, bags))
