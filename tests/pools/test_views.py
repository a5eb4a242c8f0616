"""The HTML pages of pools, orders, sales and prices, through the real gateway against the local
Stripe sandbox; and who gets what on every route of the pools and pricing blueprints."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from sqlalchemy import func, select

from coop.common.models import utcnow
from coop.extensions import db
from coop.payments import gateway
from coop.pools import services as pools
from coop.pools.models import Allocation, Order, Pool
from coop.pricing import services as pricing
from coop.pricing.models import PriceVersion
from tests.support import KEEP
from tests.support.confirm import confirm, confirmation, is_confirmation, post_confirmed
from tests.support.settle import cancel_and_settle, close_and_settle

pytestmark = pytest.mark.usefixtures("stripe_clean")
VISA, DECLINE = "pm_card_visa", "pm_card_chargeCustomerFail"


def money(minor: int, currency: str = "COP") -> str:
    return format_currency(Decimal(minor) / 100, currency, locale="en")


def client_as(app, user):
    """A client logged in as `user` (None: anonymous), reading English."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    with client.session_transaction() as session:
        session["lang"] = "en"
        if user is not None:
            session["_user_id"] = user.get_id()  # "<id>:<session version>"
            session["login_factor"] = "password"
            session["_fresh"] = True
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def _committed(pool_id) -> int:
    db.session.expire_all()
    return db.session.get(Pool, pool_id).committed_g


def _order(m, pool, kg, buyer=0, pm=VISA):
    return pools.place_order(m.buyers[buyer], pool.id, quantity_kg=kg, payment_method=pm)[0]


def _local_input(hours=48) -> str:
    """A datetime-local value in the app's zone (America/Bogota), as a browser sends it."""
    from zoneinfo import ZoneInfo
    return (utcnow() + timedelta(hours=hours)).astimezone(ZoneInfo("America/Bogota")) \
        .strftime("%Y-%m-%dT%H:%M")


# ---------------------------------------------------------------- buyers

def test_open_pools_show_progress_price_breakdown_and_time_left(app, market):
    pool = market.open_pool(min_kg="100", max_kg="500", days=3)
    _order(market, pool, "120.5")
    closed = market.open_pool(min_kg="10", max_kg="50")
    cancel_and_settle(closed.id)
    price = pricing.highest(pool.price)
    for user in (None, market.buyers[1]):
        client = client_as(app, user)
        for url in ("/pools", f"/pools/{pool.id}"):
            page = text(client.get(url))
            assert '<progress max="500000" value="120500"' in page, url
            assert "120.5 kg committed of 500 kg (goes ahead at 100 kg)" in page, url
            for amount in (price.farmer, price.commission, price.premium, price.buyer):
                assert money(amount) in page, (url, money(amount))
            for label in ("Farmer price", "Cooperative commission", "Social premium",
                          "Buyer price"):
                assert label in page, (url, label)
            assert re.search(r"Closes in (2|3) days", page), url
        index = text(client.get("/pools"))
        assert f"/pools/{pool.id}" in index and f"/pools/{closed.id}" not in index


def test_pool_page_shows_the_tier_prices_and_the_hold_price(app, market):
    pool = market.open_pool()
    page = text(client_as(app, market.buyers[0]).get(f"/pools/{pool.id}"))
    tier = pricing.breakdown(pool.price, 400_000)
    assert "from 400 kg" in page and money(tier.buyer) in page
    assert money(pricing.highest(pool.price).buyer) in page
    assert 'name="quantity_kg"' in page and VISA in page


def test_pool_page_for_a_past_pool_and_a_missing_one(app, market):
    pool = market.open_pool()
    cancel_and_settle(pool.id)
    client = client_as(app, market.buyers[0])
    page = text(client.get(f"/pools/{pool.id}"))
    assert "Closed" in page and 'name="quantity_kg"' not in page
    assert client.get("/pools/999999").status_code == 404


def test_buyer_joins_through_the_form_and_sees_the_hold(app, market):
    pool = market.open_pool()
    client = client_as(app, market.buyers[0])
    response = post_confirmed(client, f"/pools/{pool.id}", data={"quantity_kg": "120.5",
                                                      "payment_method": VISA})
    assert response.status_code == 302 and response.headers["Location"].endswith("/my/orders")
    order = db.session.scalar(select(Order))
    held = pricing.amount_for(pricing.highest(pool.price).buyer, 120_500)
    assert (order.status, order.quantity_g, order.amount_authorized_minor) == (
        "authorized", 120_500, held)
    assert gateway.retrieve(order.payment_intent_id).status == "requires_capture"
    assert _committed(pool.id) == 120_500
    page = text(client.get("/my/orders"))
    assert "Held on card" in page and "120.5 kg" in page and money(held) in page
    assert f"/my/orders/{order.id}/withdraw" in page


def test_declined_card_rerenders_the_form_402_and_commits_nothing(app, market):
    pool = market.open_pool()
    client = client_as(app, market.buyers[0])
    response = post_confirmed(client, f"/pools/{pool.id}", data={"quantity_kg": "77.25",
                                                      "payment_method": DECLINE})
    assert response.status_code == 402
    page = text(response)
    assert "The card was declined" in page and "nothing was committed" in page
    assert 'value="77.25"' in page
    assert _committed(pool.id) == 0
    assert db.session.scalar(select(func.count()).select_from(Order).where(
        Order.status.in_(["authorized", "pending"]))) == 0
    assert "Held on card" not in text(client.get("/my/orders"))


@pytest.mark.parametrize("quantity,status,message", [
    ("", 422, None), ("abc", 422, "Give kilograms"), ("1.0001", 422, "at most 3 decimals"),
    ("600", 409, "Only 500 kg is left"),
])
def test_bad_quantities_rerender_the_form(app, market, quantity, status, message):
    pool = market.open_pool()
    response = client_as(app, market.buyers[0]).post(
        f"/pools/{pool.id}", data={"quantity_kg": quantity, "payment_method": VISA})
    assert response.status_code == status
    if message:
        assert message in text(response).replace("500.000", "500")
    assert f'value="{quantity}"' in text(response) or not quantity
    assert _committed(pool.id) == 0


def test_change_and_withdraw_from_my_orders(app, market):
    pool = market.open_pool()
    client = client_as(app, market.buyers[0])
    post_confirmed(client, f"/pools/{pool.id}", data={"quantity_kg": "100", "payment_method": VISA})
    order = db.session.scalar(select(Order))
    first_intent = order.payment_intent_id
    response = post_confirmed(client, f"/my/orders/{order.id}/change", data={"quantity_kg": "150"})
    assert response.status_code == 302
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert order.quantity_g == 150_000 and _committed(pool.id) == 150_000
    assert gateway.retrieve(first_intent).status == "canceled"
    page = text(client.get("/my/orders"))
    assert "hold on your card was adjusted" in page and money(order.amount_authorized_minor) in page
    # More than is left: refused with a message, nothing changes.
    # The page comes back with the message on that order's field and what was typed.
    refused = client.post(f"/my/orders/{order.id}/change", data={"quantity_kg": "500.001"})
    assert refused.status_code >= 400
    assert "left in this pool" in text(refused) and 'value="500.001"' in text(refused)
    assert "Only 350 kg is left in this pool." in text(refused)  # written the reader's way
    assert _committed(pool.id) == 150_000
    refused = client.post(f"/my/orders/{order.id}/change", data={"quantity_kg": "x"})
    assert refused.status_code == 422 and 'value="x"' in text(refused)
    assert "Write it like 1,200.5 or 1200.5." in text(refused)
    assert _committed(pool.id) == 150_000
    response = post_confirmed(client, f"/my/orders/{order.id}/withdraw")
    assert response.status_code == 302
    db.session.expire_all()
    order = db.session.get(Order, order.id)
    assert order.status == "released" and _committed(pool.id) == 0
    assert gateway.retrieve(order.payment_intent_id).status == "canceled"
    page = text(client.get("/my/orders"))
    assert "Withdrawn, hold released" in page
    assert f"/my/orders/{order.id}/withdraw" not in page


def test_my_orders_after_closing_shows_what_was_paid(app, market):
    pool = market.open_pool(min_kg="100")
    order = _order(market, pool, "420")
    close_and_settle(pool.id)
    order = db.session.get(Order, order.id)
    page = text(client_as(app, market.buyers[0]).get("/my/orders"))
    assert "Paid" in page and money(order.amount_captured_minor) in page
    assert f"/my/orders/{order.id}/change" not in page
    response = post_confirmed(client_as(app, market.buyers[0]), f"/my/orders/{order.id}/withdraw")
    assert response.status_code == 302
    assert db.session.get(Order, order.id).status == "captured"


# ---------------------------------------------------------------- farmers

def test_farmer_sees_which_listing_went_into_which_pool(app, market):
    pool = market.open_pool(min_kg="100", max_kg="500")
    _order(market, pool, "250")
    _order(market, pool, "200.001", buyer=1)
    client = client_as(app, market.farmers[2])
    assert "None of your harvests" in text(client.get("/my/sales"))
    close_and_settle(pool.id)
    page = text(client.get("/my/sales"))
    listing = market.listings[2]
    assert f"Pool #{pool.id}" in page and f"Listing #{listing.id}" in page
    assert "225.001 kg sold at" in page and money(2_800_000) in page
    owed = pricing.amount_for(2_800_000, 225_001)
    assert money(owed) in page and "You will be owed" in page
    # Not another farmer's sale.
    assert f"Listing #{market.listings[0].id}" not in page
    other = text(client_as(app, market.farmers[0]).get("/my/sales"))
    assert "75 kg sold at" in other and f"Listing #{market.listings[2].id}" not in other


# ---------------------------------------------------------------- managers

def test_manager_sees_every_pool_with_orders_and_allocations(app, market):
    pool = market.open_pool(min_kg="100", max_kg="500")
    a = _order(market, pool, "250")
    _order(market, pool, "200.001", buyer=1)
    failed = market.open_pool(min_kg="50", max_kg="100")
    client = client_as(app, market.manager)
    listing_page = text(client.get(f"/manage/coops/{market.coop.id}/pools"))
    assert f"/manage/pools/{pool.id}" in listing_page and f"/manage/pools/{failed.id}" in listing_page
    page = text(client.get(f"/manage/pools/{pool.id}"))
    assert "Orders (2)" in page and "Buyer 0" in page and money(a.amount_authorized_minor) in page
    assert "Close now" in page and "Cancel pool" in page
    response = post_confirmed(client, f"/manage/pools/{pool.id}/close")
    assert response.status_code == 302
    page = text(client.get(f"/manage/pools/{pool.id}"))
    assert "Pool closed: confirmed" in page
    assert "Allocations (3)" in page and "225.001" in page
    for farmer in market.farmers:
        assert farmer.name in page
    for allocation in pools.pool_allocations(pool.id):
        assert money(allocation.farmer_amount_minor) in page
    captured = db.session.get(Order, a.id).amount_captured_minor
    assert captured and money(captured) in page and "Close now" not in page
    # The treasurer reads the same page, without the buttons mattering.
    assert client_as(app, market.treasurer).get(f"/manage/pools/{pool.id}").status_code == 200
    # Closing again changes nothing.
    count = db.session.scalar(select(func.count()).select_from(Allocation))
    post_confirmed(client, f"/manage/pools/{pool.id}/close")
    assert db.session.scalar(select(func.count()).select_from(Allocation)) == count


def test_manager_opens_a_pool_from_the_form(app, market):
    client = client_as(app, market.manager)
    page = text(client.get(f"/manage/coops/{market.coop.id}/pools"))
    assert 'name="closes_at"' in page and "coffee/sca85" in page
    response = client.post(f"/manage/coops/{market.coop.id}/pools", data={
        "product": "coffee/sca85", "min_kg": "100", "max_kg": "450.5",
        "closes_at": _local_input(48)})
    assert response.status_code == 302, text(response)[:2000]
    pool = db.session.scalar(select(Pool))
    assert response.headers["Location"].endswith(f"/manage/pools/{pool.id}")
    assert (pool.min_g, pool.max_g, pool.status) == (100_000, 450_500, "open")
    assert timedelta(hours=47, minutes=58) < pool.closes_at - utcnow() <= timedelta(hours=48)


@pytest.mark.parametrize("change,message", [
    ({"max_kg": "9999"}, "kg of this crop and grade is listed"),
    ({"min_kg": "600", "max_kg": "500"}, "cannot be above the maximum"),
    ({"closes_at": "PAST"}, "in the past"),
    ({"closes_at": "8DAYS"}, "within 7 days"),
    ({"closes_at": "someday"}, "date and time"),
    ({"min_kg": "lots"}, "Give kilograms"),
    ({"product": "cacao/fine"}, "Set a price"),
    ({"product": "coca/leaf"}, None),
    ({"max_kg": ""}, None),
])
def test_bad_pool_input_is_rerendered_with_the_input_kept(app, market, change, message):
    data = {"product": "coffee/sca85", "min_kg": "100", "max_kg": "450",
            "closes_at": _local_input(48)}
    if change.get("closes_at") == "PAST":
        change = {"closes_at": _local_input(-1)}
    elif change.get("closes_at") == "8DAYS":
        change = {"closes_at": _local_input(7 * 24 + 2)}
    data.update(change)
    response = client_as(app, market.manager).post(f"/manage/coops/{market.coop.id}/pools",
                                                   data=data)
    assert response.status_code == 422
    page = text(response)
    if message:
        assert message in page, page[:3000]
    for name in ("min_kg", "max_kg", "closes_at"):
        if data[name]:
            assert f'value="{data[name]}"' in page, name
    assert db.session.scalar(select(func.count()).select_from(Pool)) == 0


def test_manager_cancels_a_pool_and_every_hold_is_released(app, market):
    pool = market.open_pool()
    order = _order(market, pool, "40")
    client = client_as(app, market.manager)
    assert post_confirmed(client, f"/manage/pools/{pool.id}/cancel").status_code == 302
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "cancelled"
    order = db.session.get(Order, order.id)
    assert order.status == "cancelled"
    assert gateway.retrieve(order.payment_intent_id).status == "canceled"
    page = text(client.get(f"/manage/pools/{pool.id}"))
    assert "every hold is being released" in page and "Cancel pool" not in page
    post_confirmed(client, f"/manage/pools/{pool.id}/cancel")
    assert "Only an open pool can be cancelled" in text(client.get(f"/manage/pools/{pool.id}"))
    buyer_page = text(client_as(app, market.buyers[0]).get("/my/orders"))
    assert "Pool failed, hold released" in buyer_page


def test_closing_below_min_fails_the_pool(app, market):
    pool = market.open_pool(min_kg="300")
    order = _order(market, pool, "40")
    post_confirmed(client_as(app, market.manager), f"/manage/pools/{pool.id}/close")
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "failed"
    assert db.session.get(Order, order.id).status == "cancelled"
    assert db.session.scalar(select(func.count()).select_from(Allocation)) == 0


# ---------------------------------------------------------------- access matrix

ANON, BUYER, OTHER_BUYER = "anon", "buyer", "other_buyer"
FARMER, MANAGER, TREASURER, O_MANAGER = "farmer", "manager", "treasurer", "other_manager"
ACTORS = (ANON, BUYER, OTHER_BUYER, FARMER, MANAGER, TREASURER, O_MANAGER)
LOGIN, DONE = "login", "done"


def spec(**answers):
    assert set(answers) == set(ACTORS), answers
    return answers


PUBLIC = spec(anon=200, buyer=200, other_buyer=200, farmer=200, manager=200, treasurer=200,
              other_manager=200)
MANAGER_ONLY = dict(anon=LOGIN, buyer=404, other_buyer=404, farmer=403, treasurer=403,
                    other_manager=404)
STAFF = dict(anon=LOGIN, buyer=404, other_buyer=404, farmer=403, other_manager=404)
NOT_BUYER = dict(farmer=404, manager=404, treasurer=404, other_manager=404)

# endpoint -> method -> (pool|order|coop target: "own" or "missing") -> actor -> answer
EXPECTED = {
    "pools.index": {"GET": {"-": PUBLIC}},
    "pools.detail": {
        "GET": {"own": PUBLIC, "missing": spec(**{a: 404 for a in ACTORS})},
        "POST": {"own": spec(anon=LOGIN, buyer=DONE, other_buyer=DONE, farmer=403, manager=403,
                             treasurer=403, other_manager=403),
                 "missing": spec(**{a: 404 for a in ACTORS})}},
    "pools.my_orders": {"GET": {"-": spec(anon=LOGIN, buyer=200, other_buyer=200, farmer=403,
                                          manager=403, treasurer=403, other_manager=403)}},
    "pools.change_order": {"POST": {
        "own": spec(anon=LOGIN, buyer=DONE, other_buyer=404, **NOT_BUYER),
        "missing": spec(anon=LOGIN, buyer=404, other_buyer=404, **NOT_BUYER)}},
    "pools.withdraw_order": {"POST": {
        "own": spec(anon=LOGIN, buyer=DONE, other_buyer=404, **NOT_BUYER),
        "missing": spec(anon=LOGIN, buyer=404, other_buyer=404, **NOT_BUYER)}},
    "pools.my_sales": {"GET": {"-": spec(anon=LOGIN, buyer=403, other_buyer=403, farmer=200,
                                         manager=403, treasurer=403, other_manager=403)}},
    "pools.my_deliveries": {"GET": {"-": spec(anon=LOGIN, buyer=403, other_buyer=403,
                                              farmer=200, manager=403, treasurer=403,
                                              other_manager=403)}},
    "pools.manage": {
        "GET": {"own": spec(manager=200, **MANAGER_ONLY),
                "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)},
        "POST": {"own": spec(manager=DONE, **MANAGER_ONLY),
                 "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
    "pools.manage_pool": {"GET": {
        "own": spec(manager=200, treasurer=200, **STAFF),
        "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
    # Every order of a pool, a page at a time: as the pool's page.
    "pools.pool_orders": {"GET": {
        "own": spec(manager=200, treasurer=200, **STAFF),
        "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
    "pools.close": {"POST": {
        "own": spec(manager=DONE, **MANAGER_ONLY),
        "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
    # An open pool's delivery terms (issue 13 part 4): the manager's, like closing it.
    "pools.change_terms": {"POST": {
        "own": spec(manager=DONE, **MANAGER_ONLY),
        "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
    "pools.cancel": {"POST": {
        "own": spec(manager=DONE, **MANAGER_ONLY),
        "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
    "pricing.prices": {
        "GET": {"own": spec(manager=200, treasurer=200, **STAFF),
                "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)},
        "POST": {"own": spec(manager=DONE, **MANAGER_ONLY),
                 "missing": spec(**{a: 404 for a in ACTORS if a != ANON}, anon=LOGIN)}},
}


# Irreversible money actions: a confirmation step before they act.
CONFIRMED = {"pools.detail", "pools.change_order", "pools.withdraw_order", "pools.close",
             "pools.cancel"}


def db_state() -> dict:
    db.session.rollback()
    db.session.expire_all()
    state = {}
    for table in db.metadata.sorted_tables:
        if table.name not in KEEP:
            state[table.name] = sorted(repr(tuple(row)) for row in
                                       db.session.execute(select(table)).all())
    return state


# The card entry's routes need an order waiting for its card at the Stripe sandbox: their
# roles are tested there, each route against each actor (test_who_may_reach_the_card_routes
# in tests/pools/test_cards.py, which this checks names every one of them).
CARD_ROUTES = {"pools.card_page": "/card\")", "pools.card_setup": "/card/setup",
               "pools.card_return": "/card/return", "pools.card_cancel": "/card/cancel",
               "pools.my_cards": "/my/cards\")", "pools.remove_card": "/remove"}


def test_the_card_routes_are_classified_in_the_card_tests(app):
    from pathlib import Path
    source = (Path(__file__).parent / "test_cards.py").read_text()
    matrix = source[source.index("def test_who_may_reach_the_card_routes"):]
    for endpoint, path in CARD_ROUTES.items():
        assert endpoint in {r.endpoint for r in app.url_map.iter_rules()}, endpoint
        assert path in matrix, endpoint


def _routes(app) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint in CARD_ROUTES:
            continue
        if rule.endpoint.split(".")[0] in ("pools", "pricing"):
            out.setdefault(rule.endpoint, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    return out


def test_every_pools_and_pricing_route_is_classified(app):
    routes = _routes(app)
    assert set(routes) == set(EXPECTED), sorted(set(routes) ^ set(EXPECTED))
    for endpoint, methods in routes.items():
        assert set(EXPECTED[endpoint]) == methods, endpoint
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        for targets in EXPECTED[endpoint].values():
            assert ("missing" in targets) == bool(rule.arguments), endpoint


class World:
    def __init__(self, m, other_manager):
        self.m = m
        self.pool = m.open_pool(min_kg="100", max_kg="500")
        self.order = _order(m, self.pool, "20")
        self.users = {ANON: None, BUYER: m.buyers[0], OTHER_BUYER: m.buyers[1],
                      FARMER: m.farmers[0], MANAGER: m.manager, TREASURER: m.treasurer,
                      O_MANAGER: other_manager}

    def args(self, target):
        if target == "missing":
            return {"pool_id": 999_999, "order_id": 999_999, "coop_id": 999_999}
        return {"pool_id": self.pool.id, "order_id": self.order.id, "coop_id": self.m.coop.id}

    def data(self, endpoint):
        if endpoint == "pools.detail":
            return {"quantity_kg": "1", "payment_method": VISA}
        if endpoint == "pools.change_order":
            return {"quantity_kg": "25"}
        if endpoint == "pools.manage":
            return {"product": "coffee/sca85", "min_kg": "1", "max_kg": "50",
                    "closes_at": _local_input(24)}
        if endpoint == "pools.change_terms":
            return {"delivery_terms": "FCA", "delivery_place": "Bodega de Almacafé, Popayán"}
        if endpoint == "pricing.prices":
            return {"product": "coffee/sca85", "floor": "24000", "farmer_price": "29000",
                    "commission_kind": "bps", "commission": "800", "premium": "1800"}
        return {}


@pytest.mark.parametrize("endpoint", sorted(EXPECTED))
def test_access_matrix(app, market, make_coop, endpoint):
    from flask import url_for
    world = World(market, make_coop().memberships[0].user)
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    jobs = [(method, target, who, answer)
            for method, targets in EXPECTED[endpoint].items()
            for target, answers in targets.items() for who, answer in answers.items()]
    jobs.sort(key=lambda job: job[3] == DONE)  # refusals first, then the allowed writes
    for method, target, who, expected in jobs:
        args = {k: v for k, v in world.args(target).items() if k in rule.arguments}
        with app.test_request_context():
            url = url_for(endpoint, **args)
        before = db_state()
        client = client_as(app, world.users[who])
        response = client.open(
            url, method=method, data=world.data(endpoint) if method == "POST" else None)
        if expected == DONE and endpoint in CONFIRMED:
            # The first POST only shows what will happen; "Yes" acts.
            assert is_confirmation(response), (endpoint, who, text(response)[:600])
            assert db_state() == before, (endpoint, who, "the first POST changed something")
            response = confirm(client, response)
        where = (method, endpoint, who, target, response.status_code)
        if expected == LOGIN:
            assert response.status_code == 302 and "/login" in response.headers["Location"], where
        elif expected == DONE:
            assert response.status_code == 302, (where, text(response)[:1500])
            assert "/login" not in response.headers["Location"], where
        else:
            assert response.status_code == expected, (where, text(response)[:600])
        after = db_state()
        if expected == DONE:
            assert after != before, (where, "the allowed write did not happen")
        else:
            assert after == before, (where, "changed", {t for t in after
                                                        if after[t] != before[t]})


def test_refused_posts_leave_pools_and_prices_alone(app, market, make_coop):
    """Spot checks of the matrix in domain terms: who may not, changes nothing."""
    pool = market.open_pool()
    order = _order(market, pool, "30")
    other_manager = make_coop().memberships[0].user
    for user in (market.treasurer, market.farmers[0], other_manager, market.buyers[0]):
        client = client_as(app, user)
        post_confirmed(client, f"/manage/pools/{pool.id}/close")
        post_confirmed(client, f"/manage/pools/{pool.id}/cancel")
        client.post(f"/manage/coops/{market.coop.id}/prices", data={
            "product": "coffee/sca85", "floor": "0", "farmer_price": "1",
            "commission_kind": "bps", "commission": "0", "premium": "0"})
    for user in (market.buyers[1], market.manager):
        client_as(app, user).post(f"/my/orders/{order.id}/withdraw")
        client_as(app, user).post(f"/my/orders/{order.id}/change", data={"quantity_kg": "1"})
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "open"
    assert db.session.get(Order, order.id).status == "authorized"
    assert _committed(pool.id) == 30_000
    assert db.session.scalar(select(func.count()).select_from(PriceVersion)) == 1
    assert gateway.retrieve(order.payment_intent_id).status == "requires_capture"
