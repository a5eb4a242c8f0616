"""The buyer catalog and a farmer's listing page cost the same number of SQL queries with
10 listings as with 1,000: nothing is loaded row by row."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from coop.extensions import db
from coop.listings.models import Listing
from tests.support.rows import add_listings


@pytest.fixture
def world(make_coop, make_farmer, make_buyer):
    first = make_coop(name="Cooperativa Nuevo Horizonte")
    second = make_coop(name="Cooperativa Valle Verde", country="PE", currency="PEN")
    farmer = make_farmer(first)
    others = [make_farmer(first), make_farmer(second)]
    return {"coops": [first.id, second.id], "farmer": farmer, "others": others,
            "buyer": make_buyer()}


def queries_for(client, count_queries, url: str) -> tuple[int, str]:
    client.get(url)  # warm up what is cached per process (translations, static hashes)
    # The test and its requests share one session: expire it, so that nothing a request needs
    # comes for free from the identity map (a lazy load per row would be counted).
    db.session.expire_all()
    with count_queries() as counter:
        response = client.get(url)
    assert response.status_code == 200
    return counter.count, response.get_data(as_text=True)


def test_listing_counts_used_here_are_real(world):
    add_listings([world["farmer"]] + world["others"], world["coops"], 30)
    assert db.session.scalar(select(func.count()).select_from(Listing)) == 30


@pytest.mark.parametrize("who", ["visitor", "buyer", "farmer"])
def test_supply_page_queries_do_not_grow_with_listings(client, login, count_queries, world, who):
    if who != "visitor":
        login(world[who])
    farmers = [world["farmer"]] + world["others"]
    add_listings(farmers, world["coops"], 10)
    few, few_html = queries_for(client, count_queries, "/supply")
    add_listings(farmers, world["coops"], 990)
    many, many_html = queries_for(client, count_queries, "/supply")
    assert db.session.scalar(select(func.count()).select_from(Listing)) == 1000
    assert many == few, f"/supply: {few} queries with 10 listings, {many} with 1,000"
    assert few <= 6
    assert many_html.count("<tr>") > few_html.count("<tr>")  # the rows really are there
    filtered, _ = queries_for(client, count_queries, "/supply?crop=cacao")
    assert filtered == few


def test_coop_page_queries_do_not_grow_with_listings(client, count_queries, world, make_coop):
    farmers = [world["farmer"]] + world["others"]
    add_listings(farmers, world["coops"], 10)
    slug = db.session.scalar(select(Listing.coop.property.mapper.class_.slug)
                             .where(Listing.coop.property.mapper.class_.id == world["coops"][0]))
    few, _ = queries_for(client, count_queries, f"/coops/{slug}")
    add_listings(farmers, world["coops"], 990)
    many, _ = queries_for(client, count_queries, f"/coops/{slug}")
    assert many == few


def test_farmer_listing_page_queries_do_not_grow_with_listings(client, login, count_queries,
                                                               world):
    farmer = world["farmer"]
    login(farmer)
    add_listings([farmer], world["coops"][:1], 10)
    few, few_html = queries_for(client, count_queries, "/my/listings")
    assert few_html.count('class="status status-') == 10
    add_listings([farmer], world["coops"][:1], 990)
    add_listings(world["others"], world["coops"], 200)  # other farmers' rows change nothing
    many, many_html = queries_for(client, count_queries, "/my/listings")
    assert many_html.count('class="status status-') == 50  # a page at a time
    assert 'rel="next"' in many_html and 'rel="next"' not in few_html
    assert many == few, f"/my/listings: {few} queries with 10 listings, {many} with 1,000"
    assert few <= 6


def test_api_listing_page_queries_do_not_grow_with_listings(client, token, count_queries,
                                                            world):
    farmer = world["farmer"]
    headers = token(farmer)
    add_listings([farmer], world["coops"][:1], 10)
    client.get("/api/v1/listings?limit=200", headers=headers)
    db.session.expire_all()
    with count_queries() as few:
        assert len(client.get("/api/v1/listings?limit=200",
                              headers=headers).get_json()["items"]) == 10
    add_listings([farmer], world["coops"][:1], 990)
    client.get("/api/v1/listings?limit=200", headers=headers)
    db.session.expire_all()
    with count_queries() as many:
        assert len(client.get("/api/v1/listings?limit=200",
                              headers=headers).get_json()["items"]) == 200
    assert many.count == few.count, (few.statements, many.statements)
