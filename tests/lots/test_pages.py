"""The lot pages (issue 13 part 2): the manager's list and lot page with the EUDR state and the
farmers to ask for consent, the buyers' page (names and exact plots only with consent), the
labels with their QR code of the lot's page, a farmer's lots, the dashboard's ask; each role
against each route."""
from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.intake import services as intake
from coop.lots import pages, qr
from coop.lots import services as lots
from coop.plots import geometry as geo
from coop.plots import services as plots
from coop.plots.models import Plot

pytestmark = pytest.mark.usefixtures("stripe_clean", "ledger_sound")

SQUARE = ('{"type": "Polygon", "coordinates": [[[-76.600000, 2.440000], [-76.599000, 2.440000], '
          '[-76.599000, 2.441000], [-76.600000, 2.441000], [-76.600000, 2.440000]]]}')
POINT = '{"type": "Point", "coordinates": [-76.612345, 2.451234]}'


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def _profile(m, user):
    return db.session.scalar(select(FarmerProfile).where(
        FarmerProfile.coop_id == m.coop.id, FarmerProfile.user_id == user.id))


def _complete(m, user, geometry, name, consent=True):
    """The farmer's default plot (linked to their listing) drawn, declared and, with
    `consent`, the farmer's consent recorded."""
    profile = _profile(m, user)
    plot = db.session.scalar(select(Plot).where(Plot.farmer_id == profile.id))
    plot.name = name
    plots.record_geometry(plot, geo.loads(geometry), country="CO", source="typed", by=m.manager)
    plots.declare_cutoff(plot, land_use="not_forest", evidence_kind="satellite",
                         evidence_ref="Hansen GFC 2020", by=m.manager)
    plots.declare_legality(plot, tenure_type="title", reference="Matrícula 123", by=m.manager)
    if consent:
        plots.record_consent(profile, by=user, locale="es")
    db.session.commit()
    return profile, plot


@pytest.fixture
def lot(sold):
    """Farmer 0 complete with consent (a polygon), farmer 1 complete without consent (a point),
    farmer 2 not delivered yet; 50 and 100 kg recorded."""
    m = sold
    m.p0, m.plot0 = _complete(m, m.farmers[0], SQUARE, "La Loma")
    m.p1, m.plot1 = _complete(m, m.farmers[1], POINT, "El Guayabo", consent=False)
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="52", grade="sca85")
    intake.record_intake(m.manager, m.alloc[1].id, received_kg="100", grade="sca85")
    db.session.commit()
    m.lot = lots.lot_of_pool(m.pool.id)
    return m


@pytest.fixture
def as_(login, client):
    def do(user):
        login(user)
        client.get("/lang/en")
        return client
    return do


def test_manager_list_and_lot_page_say_who_to_ask(lot, as_):
    m = lot
    client = as_(m.manager)
    listing = text(client.get(f"/manage/coops/{m.coop.id}/lots"))
    assert m.lot.code in listing and "Incomplete" in listing
    assert "1 farmer to ask for consent" in listing
    page = client.get(f"/manage/lots/{m.lot.id}")
    assert page.status_code == 200
    body = text(page)
    f0, f1 = m.farmers[0].name, m.farmers[1].name
    assert f0 in body and f1 in body and m.p0.member_number in body
    assert re.search(r">La Loma</a> \(version 3\)", body)
    assert re.search(r">El Guayabo</a> \(version 3\)", body)
    assert "Incomplete for the EUDR" in body
    for gap in lots.gaps(lots.detail(m.lot)):
        assert gap.text in body
    ask = body.split("Farmers to ask for consent")[1].split("</ul>")[0]
    assert f1 in ask and f0 not in ask
    assert f"/manage/coops/{m.coop.id}/farmers/{m.p1.id}/plots/{m.plot1.id}#consent" in ask
    assert "<svg" in body and "52" in body      # the map, the kilograms received
    # the pool's page links the lot
    assert f"/manage/lots/{m.lot.id}" in text(client.get(f"/manage/pools/{m.pool.id}"))
    # the dashboard's next thing to do
    dash = text(client.get(f"/manage/coops/{m.coop.id}"))
    assert "1 farmer to ask for consent" in dash and f"/manage/lots/{m.lot.id}" in dash
    # consent recorded since: the lot's delivery takes it, nobody is asked any more
    plots.record_consent(m.p1, by=m.manager, locale="en")
    db.session.commit()
    assert "farmer to ask for consent" not in text(client.get(f"/manage/coops/{m.coop.id}"))
    assert "Farmers to ask for consent" not in text(client.get(f"/manage/lots/{m.lot.id}"))


def test_ready_when_gaps_are_empty(sold, as_):
    m = sold
    _complete(m, m.farmers[0], SQUARE, "La Loma")
    intake.record_intake(m.manager, m.alloc[0].id, received_kg="50", grade="sca85")
    db.session.commit()
    lot = lots.lot_of_pool(m.pool.id)
    assert lots.gaps(lots.detail(lot)) == []
    client = as_(m.manager)
    assert "EUDR-ready" in text(client.get(f"/manage/coops/{m.coop.id}/lots"))
    body = text(client.get(f"/manage/lots/{lot.id}"))
    assert "EUDR-ready" in body and "Incomplete for the EUDR" not in body
    assert "Farmers to ask" not in body
    buyer = text(as_(m.buyers[0]).get(f"/lots/{lot.id}"))
    assert "EUDR-ready" in buyer and "Not EUDR-ready" not in buyer


def test_buyer_page_hides_who_did_not_consent(lot, as_):
    m = lot
    client = as_(m.buyers[0])
    response = client.get(f"/lots/{m.lot.id}")
    assert response.status_code == 200
    body = text(response)
    # origin, counts, women's share (both farmers are women), harvest, grade, intake, share
    assert "Cauca" in body and "Colombia" in body
    assert re.search(r"Farmers</dt><dd>2<", body)
    assert "100%" in body
    assert "150" in body and "152" in body          # accepted and received kg
    shares = lots.buyer_shares(m.lot)
    mine = shares[m.orders[0].id]
    assert f"{mine // 1000:,} kg of this lot" in body
    assert "Not EUDR-ready yet" in body
    # the consented farmer is named with their plot; the other is "farmer 2" and undrawn
    assert m.farmers[0].name in body and "La Loma" in body
    assert m.farmers[1].name not in body and "El Guayabo" not in body
    assert "farmer 2, consent not given" in body
    assert m.p1.member_number not in body
    assert "2.451234" not in body and "-76.612345" not in body
    # the map draws the consented farmer's polygon and lists only that plot
    plotmap = body.split('class="plotmap', 1)[1]
    assert "<svg" in plotmap and "La Loma" in plotmap and "El Guayabo" not in plotmap
    # the order page links the lot
    assert f"/lots/{m.lot.id}" in text(client.get("/my/orders"))


def test_who_sees_which_lot_page(lot, as_, client, make_buyer, make_coop, make_farmer):
    m = lot
    lot_id = m.lot.id
    manage, labels, buyer = (f"/manage/lots/{lot_id}", f"/manage/lots/{lot_id}/labels",
                             f"/lots/{lot_id}")
    listing = f"/manage/coops/{m.coop.id}/lots"
    # the visitor: the login page
    client.post("/logout")
    for url in (manage, labels, buyer, listing, "/my/lots"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    # another buyer, another coop's manager: 404 everywhere
    for user in (make_buyer(), next(x.user for x in make_coop(name="Otra").memberships
                                    if x.role == "manager")):
        c = as_(user)
        for url in (manage, labels, buyer, listing):
            assert c.get(url).status_code == 404, (user, url)
    # a farmer of the coop who did not deliver into it: 403 on the manager's pages, 404 buyer's
    c = as_(m.farmers[2])
    assert c.get(buyer).status_code == 404
    assert c.get(manage).status_code == 403 and c.get(listing).status_code == 403
    # a buyer of the lot: its page; not the manager's
    c = as_(m.buyers[1])
    assert c.get(buyer).status_code == 200
    assert c.get(manage).status_code == 404 and c.get(labels).status_code == 404
    # the coop's treasurer sees the manager's pages; the QR address sends staff there
    c = as_(m.treasurer)
    assert c.get(manage).status_code == 200
    assert c.get(buyer).headers["Location"].endswith(manage)
    # a farmer who delivered: the QR address sends them to their lots
    c = as_(m.farmers[0])
    assert c.get(buyer).headers["Location"].endswith("/my/lots")
    mine = text(c.get("/my/lots"))
    assert m.lot.code in mine and "50" in mine
    assert m.lot.code not in text(as_(m.farmers[2]).get("/my/lots"))
    assert as_(m.buyers[0]).get("/my/lots").status_code == 403
    assert client.get("/lots/999999").status_code == 404


def test_labels_page_with_a_qr_of_the_lot_url(lot, as_, app):
    m = lot
    client = as_(m.manager)
    response = client.get(f"/manage/lots/{m.lot.id}/labels")
    assert response.status_code == 200
    body = text(response)
    # 150 kg: three 60 kg bags
    assert body.count('class="label"') == 3 and m.lot.code in body
    assert "Bag 3 of 3" in body and "150" in body and m.coop.name in body
    assert "labels.css" in body and "http" not in body.split("<body", 1)[1].replace(
        "http://www.w3.org/2000/svg", "").replace("http://localhost", "")
    # the QR code is segno's drawing of the absolute address of the lot's page
    url = f"http://localhost/lots/{m.lot.id}"
    symbol, view_box = qr.qr_symbol(url, "lot-qr")
    assert str(symbol) in response.get_data(as_text=True)
    assert f'viewBox="{view_box}"' in body and body.count('<use href="#lot-qr"/>') == 3
    inner = re.search(r'<path[^>]*d="([^"]+)"', qr.qr_svg(url)).group(1)
    assert inner in body
    other = re.search(r'<path[^>]*d="([^"]+)"', qr.qr_svg(url + "0")).group(1)
    assert other not in body
    # N typed; bad N refused on the field, the default kept
    assert text(client.get(f"/manage/lots/{m.lot.id}/labels?n=7&size=label")).count(
        'class="label"') == 7
    bad = client.get(f"/manage/lots/{m.lot.id}/labels?n=abc")
    assert bad.status_code == 422 and 'id="n-err"' in text(bad) and 'value="abc"' in text(bad)
    assert client.get(f"/manage/lots/{m.lot.id}/labels?n=100000").status_code == 422
    assert pages.default_labels(1) == 1 and pages.default_labels(60_001) == 2
    assert pages.default_labels(10**12) == pages.MAX_LABELS


def test_spanish_pages(lot, login, client):
    m = lot
    login(m.manager)
    client.get("/lang/es")
    body = text(client.get(f"/manage/lots/{m.lot.id}"))
    assert "Agricultores a quienes pedir el consentimiento" in body
    assert "Incompleto para el EUDR" in body
    login(m.buyers[0])
    client.get("/lang/es")
    body = text(client.get(f"/lots/{m.lot.id}"))
    from babel.numbers import format_percent
    assert "agricultor 2, sin consentimiento" in body
    assert f"Proporción de mujeres</dt><dd>{format_percent(1, '#,##0%', locale='es_CO')}" in body


def test_the_lot_pages_link_the_dispatch_and_the_eudr_pack(lot, as_, client):
    """Each audience reaches the lot's other pages from its own: the manager the dispatch and
    the pack, the buyer the delivery and the pack, the farmer the lot's journey; and back."""
    m = lot
    manager = text(as_(m.manager).get(f"/manage/lots/{m.lot.id}"))
    assert f'href="/manage/lots/{m.lot.id}/dispatch"' in manager
    assert f'href="/lots/{m.lot.id}/eudr"' in manager
    dispatch = text(client.get(f"/manage/lots/{m.lot.id}/dispatch"))
    assert f'href="/manage/lots/{m.lot.id}"' in dispatch
    client.post("/logout")
    buyer = text(as_(m.buyers[0]).get(f"/lots/{m.lot.id}"))
    assert f'href="/lots/{m.lot.id}/delivery"' in buyer
    assert f'href="/lots/{m.lot.id}/eudr"' in buyer
    assert f'href="/lots/{m.lot.id}"' in text(client.get(f"/lots/{m.lot.id}/delivery"))
    assert f'href="/lots/{m.lot.id}"' in text(client.get(f"/lots/{m.lot.id}/eudr"))
    client.post("/logout")
    farmer = text(as_(m.farmers[0]).get("/my/lots"))
    assert f'href="/my/lots/{m.lot.id}/journey"' in farmer


def test_the_deliveries_and_their_plots_come_a_page_at_a_time(lot, as_, client,
                                                                monkeypatch):
    """A lot of thousands of farmers is a page of the usual size: the deliveries table and
    the map are paged (a bad `after` is the first page), the totals stay the lot's."""
    from coop.lots import pages
    from coop.lots.models import LotSource
    m = lot
    monkeypatch.setattr(pages, "DELIVERIES_PER_PAGE", 1)
    first_id, second_id = db.session.scalars(select(LotSource.id).where(
        LotSource.lot_id == m.lot.id).order_by(LotSource.id)).all()
    for who, base in ((m.manager, f"/manage/lots/{m.lot.id}"),
                      (m.buyers[0], f"/lots/{m.lot.id}")):
        c = as_(who)
        first = text(c.get(base))
        assert "1 of the lot's 2 deliveries" in first
        assert f'href="{base}?after={first_id}"' in first
        second = text(c.get(f"{base}?after={first_id}"))
        assert f'href="{base}?after=' not in second and f'href="{base}"' in second
        assert "1 of the lot's 2 deliveries" in second
        def main(page):
            return page.split("<main")[1].split("</main>")[0]
        assert main(text(c.get(f"{base}?after=nonsense"))) == main(first)
        c.post("/logout")
    # the manager's table shows one farmer a page; the map only that page's plots
    c = as_(m.manager)
    first, second = text(c.get(f"/manage/lots/{m.lot.id}")), \
        text(c.get(f"/manage/lots/{m.lot.id}?after={first_id}"))
    assert "La Loma" in first and "El Guayabo" not in first.split("<h2>Map</h2>")[-1]
    assert "El Guayabo" in second.split("Deliveries (2)")[-1]
    assert second_id > first_id
