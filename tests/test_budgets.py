"""Page-weight budgets for a phone on a slow network: the farmer pages and the buyer catalog
transfer at most 30 KB each on first load (HTML and every same-origin CSS, JS and icon they
reference, compressed, headers included; listing photos apart, lazy-loaded), nothing comes
from another site, and fingerprinted static files are cached for a year."""
from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from PIL import Image
from sqlalchemy import select

from coop.auth.models import User
from coop.extensions import db
from coop.listings import services as listing_services
from tests.support.pages import ACCEPT, BUDGET, References, log_in, weigh

def _png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (40 + n, 90, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def demo(app):
    """The demo data of `flask seed-demo`, and a farmer with a long history: 25 listings,
    every fifth with a photo."""
    from coop.demo.seed import seed_demo
    seed_demo()
    farmer = db.session.scalar(select(User).where(User.email == "farmer1@example.org"))
    coop_id = next(m.coop_id for m in farmer.memberships if m.role == "farmer")
    plot_ids = [listing_services.farmer_plots(farmer, coop_id)[0].id]   # of the two
    for n in range(25):
        listing_services.create_listing(
            farmer, crop="coffee" if n % 2 else "cacao", grade="sca85" if n % 2 else "export",
            quantity_kg=f"{100 + n * 37}.5", harvested_on=date.today() - timedelta(days=n + 1),
            collection_point="Vereda El Tambo", notes="Secado en marquesina",
            photo=_png(n) if n % 5 == 0 else None, plot_ids=plot_ids)
    db.session.commit()
    return farmer




PAGES = [
    ("/login", None),
    ("/my/listings", "farmer1@example.org"),
    ("/my/listings/new", "farmer1@example.org"),
    ("/my/payments", "farmer1@example.org"),
    ("/my/plots", "farmer1@example.org"),
    ("/supply", "buyer1@example.org"),
    ("/supply", None),
]


@pytest.mark.parametrize("path,who", PAGES, ids=[f"{p} as {w or 'visitor'}" for p, w in PAGES])
def test_first_load_is_at_most_30_kb_and_all_from_minga(app, client, demo, path, who):
    if who:
        log_in(client, who)
    total, sizes = weigh(client, path)
    print(f"\n{path} as {who or 'visitor'}: {total} bytes", sizes)
    assert total <= BUDGET, (path, total, sizes)
    # The page must really be measured: its CSS and script are part of the sum.
    assert any("/static/minga.css" in u for u in sizes) and any("outbox.js" in u for u in sizes)


def test_a_farmers_plot_page_with_its_capture_script_is_at_most_30_kb(client, demo):
    from coop.cooperatives.models import FarmerProfile
    from coop.plots.models import Plot
    plot_id = db.session.scalar(select(Plot.id).join(FarmerProfile).where(
        FarmerProfile.user_id == demo.id).order_by(Plot.id))
    log_in(client, "farmer1@example.org")
    total, sizes = weigh(client, f"/my/plots/{plot_id}")
    assert total <= BUDGET, (total, sizes)
    assert any("plotcapture.js" in u for u in sizes)


def test_the_farmers_listing_photos_are_lazy_and_apart(client, demo):
    log_in(client, "farmer1@example.org")
    page = client.get("/my/listings").get_data(as_text=True)
    photos = re.findall(r"<img [^>]*src=\"/listings/\d+/photo[^>]*>", page)
    assert len(photos) == 5
    assert all('loading="lazy"' in tag and "width=" in tag and "height=" in tag for tag in photos)


def test_pages_are_compressed_with_brotli_or_gzip(client, demo):
    for headers, expected in (({"Accept-Encoding": "gzip, br"}, "br"),
                              ({"Accept-Encoding": "gzip"}, "gzip")):
        for path in ("/login", "/supply"):
            response = client.get(path, headers=headers)
            assert response.headers.get("Content-Encoding") == expected, (path, headers)
            assert "Accept-Encoding" in response.headers.get("Vary", "")
    plain = client.get("/supply", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and b"<html" in plain.data


def test_fingerprinted_static_files_are_cached_for_a_year(client, demo):
    log_in(client, "farmer1@example.org")
    refs = References()
    refs.feed(client.get("/my/listings").get_data(as_text=True))
    static = [u for u in refs.loads if u.startswith("/static/")]
    assert len(static) >= 3, static
    for url in static:
        assert re.search(r"\?v=[0-9a-f]{12}$", url), url
        response = client.get(url, headers=ACCEPT)
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
        assert "Expires" not in response.headers, url
        # A file that caches keep for a year never carries the visitor's session.
        assert "Set-Cookie" not in response.headers, url
    # Without the fingerprint a file may change under the same URL: no year-long cache then.
    bare = client.get("/static/minga.css")
    assert "immutable" not in bare.headers.get("Cache-Control", "")


def test_the_security_policy_allows_no_other_site(client):
    policy = client.get("/login").headers["Content-Security-Policy"]
    for directive in policy.split(";"):
        sources = directive.split()[1:]
        assert all(s in ("'self'", "'none'", "data:") for s in sources), directive
