"""The demo's pools through intake form lots whose deliveries name their farmers' plots
(issue 13: the demo's listings are linked to the demo's plots), and show both EUDR states."""
from sqlalchemy import select

from coop.demo.season import run_season
from coop.demo.seed import seed_demo
from coop.extensions import db
from coop.listings.models import Listing, ListingPlot
from coop.lots import pages
from coop.lots import services as lots
from coop.lots.models import Lot


def test_every_demo_listing_names_a_plot_and_the_season_forms_lots(app, stripe_clean):
    assert seed_demo() is True
    listed = set(db.session.scalars(select(Listing.id)))
    linked = set(db.session.scalars(select(ListingPlot.listing_id)))
    assert listed and listed == linked
    run_season(say=lambda *_: None)
    found = list(db.session.scalars(select(Lot).order_by(Lot.id)))
    assert {lot.coop_id for lot in found} and all(lot.eudr for lot in found)
    for lot in found:
        d = lots.detail(lot)
        assert d.sources and all(s.plots for s in d.sources)
        assert d.net_g == sum(s.source.accepted_g for s in d.sources) > 0
        state = pages.readiness([lot.id])[lot.id]
        assert state[0] == len(lots.gaps(d))
