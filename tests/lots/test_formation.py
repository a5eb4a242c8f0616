"""A pool's intake forms its lot: one lot per pool, numbered per coop without gaps, a source
per delivery with accepted kilograms, the listing's plots at the versions they had, the
farmer's consent as it stood; a plot redrawn later leaves the lot as it was."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.intake import services as intake
from coop.listings.models import ListingPlot
from coop.lots import services as lots
from coop.lots.models import Lot, LotSource, LotSourcePlot
from coop.plots import geometry as geo
from coop.plots import services as plots

pytestmark = pytest.mark.usefixtures("stripe_clean", "ledger_sound")

SQUARE = geo.loads('{"type": "Polygon", "coordinates": [[[-76.600000, 2.440000], '
                   '[-76.599000, 2.440000], [-76.599000, 2.441000], [-76.600000, 2.441000], '
                   '[-76.600000, 2.440000]]]}')
MOVED = geo.loads('{"type": "Polygon", "coordinates": [[[-76.610000, 2.440000], '
                  '[-76.609000, 2.440000], [-76.609000, 2.441000], [-76.610000, 2.441000], '
                  '[-76.610000, 2.440000]]]}')


def _unlinked(m):
    """The market's listings name no plot (each farmer's default plot is unlinked): each test
    links the plots it draws."""
    from sqlalchemy import delete
    db.session.execute(delete(ListingPlot).where(
        ListingPlot.listing_id.in_([a.listing_id for a in m.alloc])))
    db.session.commit()
    return m


def _profile(m, user):
    return db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == m.coop.id, FarmerProfile.user_id == user.id))


def test_intake_forms_one_lot_with_the_plot_versions_and_consents(sold):
    m = _unlinked(sold)
    profile = _profile(m, m.farmers[0])
    plot = plots.add_plot(profile, name="La Loma", hectares="1.2", replaced_crop=None,
                          illicit_hectares="0")
    db.session.flush()
    plots.record_geometry(plot, SQUARE, country="CO", source="typed", by=m.manager)
    db.session.add(ListingPlot(listing_id=m.alloc[0].listing_id, plot_id=plot.id))
    plots.record_consent(profile, by=m.farmers[0], locale="es")
    db.session.commit()
    version = plot.current_version_id

    first = intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")[0]
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="0", grade="sca85",
                         not_delivered=True)
    intake.record_intake(m.manager, m.alloc[2].id, received_kg="140", grade="sca85")

    lot = lots.lot_of_pool(m.alloc[0].pool_id)
    assert lot is not None and lot.number == 1 and lot.eudr is True
    assert lot.code.startswith(f"{m.coop.country}-{m.coop.id}-") and lot.code.endswith("-0001")
    sources = db.session.scalars(select(LotSource).where(LotSource.lot_id == lot.id)
                                 .order_by(LotSource.id)).all()
    # the farmer who delivered nothing adds no source; the others their accepted kilograms
    assert [(s.farmer_user_id, s.accepted_g) for s in sources] == [
        (m.farmers[0].id, 50_000), (m.farmers[2].id, 140_000)]
    assert sources[0].intake_id == first.id and sources[0].consent_id is not None
    assert sources[1].consent_id is None
    pinned = db.session.scalars(select(LotSourcePlot).where(
        LotSourcePlot.source_id == sources[0].id)).all()
    assert [(p.plot_id, p.plot_version_id) for p in pinned] == [(plot.id, version)]

    # redrawn later: the plot moves on, the lot keeps the version it was built from
    plots.record_geometry(plot, MOVED, country="CO", source="typed", by=m.manager)
    db.session.commit()
    assert plot.current_version_id != version
    db.session.expire_all()
    assert db.session.scalar(select(LotSourcePlot.plot_version_id).where(
        LotSourcePlot.source_id == sources[0].id)) == version
    assert db.session.scalar(select(Lot.id).where(Lot.pool_id == m.alloc[0].pool_id)) == lot.id


def test_detail_gaps_shares_and_who_sees_the_lot(sold, make_buyer, make_coop):
    from coop.common.errors import NotFound
    m = _unlinked(sold)
    profile = _profile(m, m.farmers[0])
    plot = plots.add_plot(profile, name="La Loma", hectares="1.2", replaced_crop=None,
                          illicit_hectares="0")
    db.session.flush()
    plots.record_geometry(plot, SQUARE, country="CO", source="typed", by=m.manager)
    db.session.add(ListingPlot(listing_id=m.alloc[0].listing_id, plot_id=plot.id))
    db.session.commit()
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="99", grade="sca85")
    lot = lots.lot_of_pool(m.alloc[0].pool_id)
    d = lots.detail(lot)
    assert d.net_g == 149_000 and d.farmer_count == 2 and d.crop_slug == "coffee"
    assert [len(s.plots) for s in d.sources] == [1, 0]
    codes = {(g.farmer_id, g.plot_id, g.code) for g in lots.gaps(d)}
    other = m.alloc[1]
    other_profile = _profile(m, m.farmers[1]).id
    assert codes == {(profile.id, plot.id, "no_cutoff"), (profile.id, plot.id, "no_tenure"),
                     (profile.id, None, "no_consent"), (other_profile, None, "no_plot"),
                     (other_profile, None, "no_consent")}
    assert all(g.text for g in lots.gaps(d))
    assert [s.source.farmer_id for s in lots.farmers_to_ask(d)] == [profile.id, other_profile]
    assert other.quantity_g == 100_000
    # the buyers' shares add up to the net mass, pro rata to what they ordered (200 and 100)
    shares = lots.buyer_shares(lot)
    assert sum(shares.values()) == 149_000 and sorted(shares.values()) == [49_667, 99_333]
    # a buyer of the pool sees it; another buyer, another coop's manager, a visitor do not
    assert lots.bought_lot(m.buyers[0], lot.id)[0].id == lot.id
    stranger = make_buyer()
    with pytest.raises(NotFound):
        lots.bought_lot(stranger, lot.id)
    outsider = next(x.user for x in make_coop(name="Otra").memberships if x.role == "manager")
    with pytest.raises(NotFound):
        lots.managed_lot(outsider, lot.id)
    assert lots.managed_lot(m.manager, lot.id).id == lot.id
    assert lots.farmer_sources(m.farmers[0], lot.id)[1][0].accepted_g == 50_000
    with pytest.raises(NotFound):
        lots.farmer_sources(m.farmers[2], lot.id)


def test_a_consent_given_after_the_lot_formed_makes_its_deliveries_consented(sold):
    """The manager asks the farmers the lot names; their consent goes to those deliveries
    (and only to those without one: a consent pinned earlier is kept after a withdrawal)."""
    m = _unlinked(sold)
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    lot = lots.lot_of_pool(m.alloc[0].pool_id)
    assert [s.source.consent_id for s in lots.detail(lot).sources] == [None, None]
    first, second = _profile(m, m.farmers[0]), _profile(m, m.farmers[1])
    given = plots.record_consent(first, by=m.manager, locale="es")
    db.session.commit()
    db.session.expire_all()
    d = lots.detail(lot)
    assert [s.source.consent_id for s in d.sources] == [given.id, None]
    assert [s.source.farmer_id for s in lots.farmers_to_ask(d)] == [second.id]
    # withdrawn, then given again: the delivery keeps the consent it was given
    plots.withdraw_consent(first, by=m.manager)
    again = plots.record_consent(first, by=m.manager, locale="es")
    db.session.commit()
    db.session.expire_all()
    assert again.id != given.id
    assert lots.detail(lot).sources[0].source.consent_id == given.id
