"""Every long list is a keyset page (coop.common.paging.keyset): page 2 follows page 1 with no
row repeated or missed, the links keep the filters, a cursor nobody made shows page 1, and a
page costs the same queries with 60 rows as with 600."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from coop.common.models import utcnow
from coop.extensions import db
from coop.listings.models import Listing
from coop.pools.models import Order, Pool
from tests.support.rows import add_listings, add_members


def next_link(html: str) -> str | None:
    found = re.search(r'href="([^"]+)" rel="next"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def walk(client, url: str, pattern: str) -> list[list[int]]:
    """The ids on each page, following the "next" links from `url`."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert len(html.encode()) < 60_000, (url, len(html.encode()))
        pages.append([int(i) for i in re.findall(pattern, html)])
        url = next_link(html)
    return pages


def count(client, count_queries, url: str) -> int:
    client.get(url)
    db.session.expire_all()
    with count_queries() as counter:
        assert client.get(url).status_code == 200
    return counter.count


def check_list(client, count_queries, url, pattern, add, *, expected_order=None):
    """60 rows then 600: the same queries for page 1 and for page 2; every row on exactly
    one page, in the list's order."""
    add(60)
    few = (count(client, count_queries, url),
           count(client, count_queries, next_link(client.get(url).get_data(as_text=True))))
    add(540)
    second = next_link(client.get(url).get_data(as_text=True))
    many = (count(client, count_queries, url), count(client, count_queries, second))
    assert few == many, f"{url}: {few} queries with 60 rows, {many} with 600"
    pages = walk(client, url, pattern)
    ids = [i for page in pages for i in page]
    assert len(pages) == 12 and all(len(p) == 50 for p in pages)
    assert len(ids) == len(set(ids)) == 600
    if expected_order:
        assert ids == expected_order()
    # A cursor nobody made is page 1, never an error.
    for bad in ("x", "W1siYSJdXQ", "eyJ4IjoxfQ", "WzEuNV0", "A" * 900):
        sep = "&" if "?" in url else "?"
        html = client.get(f"{url}{sep}cursor={bad}").get_data(as_text=True)
        assert [int(i) for i in re.findall(pattern, html)] == pages[0], bad


@pytest.fixture
def farmer_world(make_coop, make_farmer):
    coop = make_coop()
    return coop, make_farmer(coop)


def test_my_listings(client, login, count_queries, farmer_world):
    coop, farmer = farmer_world
    login(farmer)

    def add(n):
        add_listings([farmer], [coop.id], n)
        db.session.execute(Listing.__table__.update().values(status="available", committed_g=0))
        db.session.commit()
    check_list(client, count_queries, "/my/listings", r'/my/listings/(\d+)/edit', add,
               expected_order=lambda: list(db.session.scalars(
                   select(Listing.id).where(Listing.farmer_user_id == farmer.id)
                   .order_by(Listing.id.desc()))))
    # The status filter stays in the links.
    html = client.get("/my/listings?status=available").get_data(as_text=True)
    assert "status=available" in next_link(html)


def _more_pools(pool, n):
    row = {c.key: getattr(pool, c.key) for c in Pool.__table__.columns if c.key != "id"}
    db.session.execute(insert(Pool), [dict(row) for _ in range(n)])
    db.session.commit()


def test_coop_pools_and_open_pools(client, login, count_queries, market):
    pool = market.open_pool()
    login(market.manager)
    first = {"done": False}

    def add(n):
        # the pool opened by the fixture is one of the 60
        _more_pools(pool, n - 1 if not first["done"] else n)
        first["done"] = True
    url = f"/manage/coops/{market.coop.id}/pools"
    check_list(client, count_queries, url, r'href="/manage/pools/(\d+)"', add,
               expected_order=lambda: list(db.session.scalars(
                   select(Pool.id).where(Pool.coop_id == market.coop.id)
                   .order_by(Pool.id.desc()))))
    pages = walk(client, "/pools", r'<h2><a href="/pools/(\d+)"')
    assert sum(len(p) for p in pages) == 600 and len(pages) == 12
    assert "status=open" in next_link(client.get(url + "?status=open").get_data(as_text=True))


def test_my_orders(client, login, count_queries, market):
    pool = market.open_pool(max_kg="600")
    buyer = market.buyers[0]
    login(buyer)
    now = utcnow()

    def add(n):
        db.session.execute(insert(Order), [{
            "pool_id": pool.id, "buyer_id": buyer.buyer_id, "user_id": buyer.id,
            "quantity_g": 1000, "status": "authorized", "currency": pool.currency,
            "payment_method": "pm_card_visa", "amount_authorized_minor": 100,
            "created_at": now, "updated_at": now} for _ in range(n)])
        db.session.commit()
    check_list(client, count_queries, "/my/orders", r'id="q(\d+)"', add,
               expected_order=lambda: list(db.session.scalars(
                   select(Order.id).where(Order.buyer_id == buyer.buyer_id)
                   .order_by(Order.id.desc()))))


def test_share_register(client, login, count_queries, make_coop, make_user):
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    login(treasurer)
    start = {"n": 0}

    def add(n):
        add_members(coop, n, start=start["n"])
        start["n"] += n
    url = f"/manage/coops/{coop.id}/shares"
    check_list(client, count_queries, url, r'/shares/(\d+)/redeem"', add)
    html = client.get(url + "?q=Socia 0123").get_data(as_text=True)
    assert len(re.findall(r'/shares/(\d+)/redeem"', html)) == 1 and next_link(html) is None
    # the payment form offers the members of the page shown
    assert html.count('<option value="') >= 1


def test_members(client, login, count_queries, make_coop):
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    login(manager)
    start = {"n": 0}

    def add(n):
        add_members(coop, n, start=start["n"])
        start["n"] += n
    check_list(client, count_queries, f"/manage/coops/{coop.id}",
               rf'href="/manage/coops/{coop.id}/farmers/(\d+)"', add)


def test_ledger_entries_filters_keep_in_links(client, login, make_coop, make_user):
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    login(treasurer)
    url = f"/manage/coops/{coop.id}/ledger?account=bank&kind=manual&from=2026-01-01&to=2026-12-31"
    html = client.get(url).get_data(as_text=True)
    assert 'value="bank" selected' in html and 'value="2026-01-01"' in html
    for bad in ("?cursor=zz", "?from=2026-13-45", "?account=nope", "?kind=%", "?before=abc"):
        assert client.get(f"/manage/coops/{coop.id}/ledger{bad}").status_code == 200, bad


def test_api_lists_page(client, token, make_coop, make_user):
    coops = [make_coop(name=f"Cooperativa {i}") for i in range(3)]
    body = client.get("/api/v1/coops?limit=2").get_json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    rest = client.get(f"/api/v1/coops?limit=2&cursor={body['next_cursor']}").get_json()
    ids = [c["id"] for c in body["items"] + rest["items"]]
    assert sorted(ids) == sorted(c.id for c in coops) and rest["next_cursor"] is None
    for bad in ("limit=0", "limit=201", "limit=x", "cursor=!!", "cursor=" + "A" * 40):
        response = client.get(f"/api/v1/coops?{bad}")
        assert response.status_code == 422 and response.get_json()["error"]["fields"], bad


def test_my_sales_and_deliveries(client, login, count_queries, market):
    from coop.pools.models import Allocation
    pool = market.open_pool()
    farmer, listing = market.farmers[0], market.listings[0]
    login(farmer)
    now = utcnow()  # (the farmer reads Spanish)

    def add(n):
        _more_pools(pool, n)
        fresh = list(db.session.scalars(select(Pool.id).where(
            Pool.id.not_in(select(Allocation.pool_id)), Pool.id != pool.id)))
        db.session.execute(insert(Allocation), [{
            "pool_id": pid, "listing_id": listing.id, "farmer_user_id": farmer.id,
            "quantity_g": 1000, "farmer_price_per_kg_minor": 100, "farmer_amount_minor": 100,
            "created_at": now} for pid in fresh])
        db.session.commit()
    order = lambda: list(db.session.scalars(  # noqa: E731
        select(Allocation.pool_id).where(Allocation.farmer_user_id == farmer.id)
        .order_by(Allocation.id.desc())))
    check_list(client, count_queries, "/my/sales", r"Pedido conjunto #(\d+) · Oferta", add,
               expected_order=order)
    pages = walk(client, "/my/deliveries", r"Pedido conjunto #(\d+)<br>")
    assert sorted(i for p in pages for i in p) == sorted(order())
    assert "Por entregar (50+)" in client.get("/my/deliveries").get_data(as_text=True)


def test_parked_tasks(client, login, count_queries, make_coop, make_user):
    from coop.jobs.models import Job
    treasurer = make_user()
    coop = make_coop(treasurer=treasurer)
    login(treasurer)
    now = utcnow()

    def add(n):
        db.session.execute(insert(Job), [{
            "task": "pools.close", "payload": "{}", "status": "parked", "coop_id": coop.id,
            "attempts": 5, "last_error": "boom", "run_at": now, "finished_at": now,
            "created_at": now, "key": f"k{now.timestamp()}-{i}-{n}-{id(add)}"}
            for i in range(n)])
        db.session.commit()
    check_list(client, count_queries, f"/manage/coops/{coop.id}/jobs",
               rf"/manage/coops/{coop.id}/jobs/(\d+)/retry", add,
               expected_order=lambda: list(db.session.scalars(
                   select(Job.id).where(Job.coop_id == coop.id).order_by(Job.id.desc()))))
