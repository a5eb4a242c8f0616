"""The pool and order rows of api-v1.md, exactly: paths, methods, fields, status codes and
error bodies, through the real gateway against the local Stripe sandbox."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from coop.common.models import utcnow
from coop.extensions import db
from coop.listings.models import Listing
from coop.payments import gateway
from coop.pools import services as pools
from coop.pools.models import Allocation, Order, Pool
from coop.pricing import services as pricing
from tests.support.settle import cancel_and_settle, close_and_settle

pytestmark = pytest.mark.usefixtures("stripe_clean")
VISA, DECLINE = "pm_card_visa", "pm_card_chargeCustomerFail"

POOL_FIELDS = {"id", "coop_id", "crop", "grade", "status", "min_kg", "max_kg", "committed_kg",
               "price_per_kg_minor", "currency", "closes_at"}
ORDER_CREATED_FIELDS = {"id", "pool_id", "status", "quantity_kg", "amount_authorized_minor",
                        "currency"}
ORDER_FIELDS = ORDER_CREATED_FIELDS | {"amount_captured_minor", "amount_refunded_minor"}


def assert_error(response, status, code=None, field=None):
    assert response.status_code == status, (response.status_code, response.data[:400])
    assert response.content_type.startswith("application/json")
    body = response.json
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    if code:
        assert body["error"]["code"] == code, body
    if field:
        assert field in body["error"]["fields"], body
    return body["error"]


def _closes(hours=48) -> str:
    return (utcnow() + timedelta(hours=hours)).replace(microsecond=0).isoformat()


def _pool_body(m, **kw):
    body = {"coop_id": m.coop.id, "crop": "coffee", "grade": "sca85", "min_kg": "100",
            "max_kg": "500", "closes_at": _closes()}
    body.update(kw)
    return body


def _pool_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Pool))


def _committed(pool_id) -> int:
    db.session.expire_all()
    return db.session.get(Pool, pool_id).committed_g


def _intents(sandbox) -> list[dict]:
    return sandbox.get("/v1/payment_intents?limit=100")["data"]


def _order(client, headers, pool_id, kg="10", pm=VISA, key=None):
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post(f"/api/v1/pools/{pool_id}/orders",
                       json={"quantity_kg": kg, "payment_method": pm}, headers=headers)


# ---------------------------------------------------------------- GET /pools

def test_list_pools_needs_a_token(client, market):
    market.open_pool()
    assert_error(client.get("/api/v1/pools"), 401, "unauthorized")
    assert_error(client.get("/api/v1/pools", headers={"Authorization": "Bearer nope"}), 401)
    assert_error(client.get("/api/v1/pools/1"), 401)


def test_any_user_lists_pools_and_filters_open(client, token, market, make_user):
    first = market.open_pool(max_kg="200", min_kg="10")
    second = market.open_pool(max_kg="100", min_kg="10")
    cancel_and_settle(second.id)
    lonely = make_user()  # no coop, no buyer: still "any user"
    for user in (market.buyers[0], market.farmers[0], market.manager, lonely):
        response = client.get("/api/v1/pools", headers=token(user))
        assert response.status_code == 200
        assert set(response.json) == {"items", "next_cursor"}
        assert {p["id"]: p["status"] for p in response.json["items"]} == {
            first.id: "open", second.id: "cancelled"}
        open_only = client.get("/api/v1/pools?status=open", headers=token(user)).json
        assert [p["id"] for p in open_only["items"]] == [first.id]
        assert POOL_FIELDS <= set(open_only["items"][0])
    assert_error(client.get("/api/v1/pools?status=nonsense", headers=token(lonely)), 422)


def test_list_pools_pages_with_a_cursor(client, token, market):
    ids = [market.open_pool(max_kg="50", min_kg="1").id for _ in range(3)]
    headers = token(market.buyers[0])
    page = client.get("/api/v1/pools?limit=2", headers=headers).json
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(f"/api/v1/pools?limit=2&cursor={page['next_cursor']}", headers=headers).json
    assert rest["next_cursor"] is None
    assert sorted(p["id"] for p in page["items"] + rest["items"]) == sorted(ids)
    assert_error(client.get("/api/v1/pools?limit=201", headers=headers), 422)


# ---------------------------------------------------------------- POST /pools

def test_manager_opens_a_pool_201_with_the_exact_fields(client, token, market):
    closes = _closes(30)
    response = client.post("/api/v1/pools", headers=token(market.manager),
                           json=_pool_body(market, min_kg="100.5", max_kg="450", closes_at=closes))
    assert response.status_code == 201, response.json
    body = response.json
    assert POOL_FIELDS <= set(body)
    price = pricing.highest(pricing.current(market.coop.id, market.listings[0].crop_id,
                                            market.listings[0].grade_id))
    assert {k: body[k] for k in POOL_FIELDS - {"id", "closes_at"}} == {
        "coop_id": market.coop.id, "crop": "coffee", "grade": "sca85", "status": "open",
        "min_kg": "100.500", "max_kg": "450.000", "committed_kg": "0.000",
        "price_per_kg_minor": price.buyer, "currency": "COP"}
    assert price.buyer == 2_800_000 + 224_000 + 180_000
    assert datetime.fromisoformat(body["closes_at"]) == datetime.fromisoformat(closes)
    assert body["closes_at"].endswith("+00:00")
    pool = db.session.get(Pool, body["id"])
    assert (pool.min_g, pool.max_g, pool.created_by_id) == (100_500, 450_000, market.manager.id)
    # The same pool is what GET answers.
    again = client.get(f"/api/v1/pools/{body['id']}", headers=token(market.buyers[0])).json
    assert {k: again[k] for k in POOL_FIELDS} == {k: body[k] for k in POOL_FIELDS}


def test_open_pool_refused_for_everyone_but_that_coops_manager(client, token, market, make_coop):
    other = make_coop()
    other_manager = other.memberships[0].user
    # Another coop's manager, and a buyer (no membership): the coop is not theirs, 404.
    for user in (other_manager, market.buyers[0]):
        assert_error(client.post("/api/v1/pools", headers=token(user), json=_pool_body(market)),
                     404, "not_found")
    # Members of the coop without the manager role: 403.
    for user in (market.farmers[0], market.treasurer):
        assert_error(client.post("/api/v1/pools", headers=token(user), json=_pool_body(market)),
                     403, "forbidden")
    # A coop that does not exist is a 404 too, even for a manager.
    assert_error(client.post("/api/v1/pools", headers=token(market.manager),
                             json=_pool_body(market, coop_id=999_999)), 404)
    assert_error(client.post("/api/v1/pools", json=_pool_body(market)), 401)
    assert _pool_count() == 0


@pytest.mark.parametrize("change,field", [
    ({"max_kg": "600.001"}, "max_kg"),                  # listed 600 kg
    ({"closes_at": "PAST"}, "closes_at"),
    ({"closes_at": "8DAYS"}, "closes_at"),
    ({"closes_at": "2030-01-01T10:00:00"}, "closes_at"),  # no offset
    ({"closes_at": "tomorrow"}, "closes_at"),
    ({"closes_at": 1893456000}, "closes_at"),
    ({"min_kg": "501"}, "min_kg"),
    ({"min_kg": 10.5}, "min_kg"),
    ({"max_kg": [500]}, "max_kg"),
    ({"max_kg": "1.0001"}, "max_kg"),
    ({"min_kg": "-1"}, "min_kg"),
    ({"min_kg": None}, "min_kg"),
    ({"coop_id": "1"}, "coop_id"),
    ({"coop_id": True}, "coop_id"),
    ({"crop": 5}, "crop"),
    ({"crop": "coca"}, None),
    ({"grade": "nope"}, "grade"),
    ({"crop": "cocoa", "grade": None}, "grade"),
])
def test_open_pool_validation_422(client, token, market, change, field):
    if change.get("closes_at") == "PAST":
        change = {"closes_at": (utcnow() - timedelta(minutes=1)).isoformat()}
    elif change.get("closes_at") == "8DAYS":
        change = {"closes_at": (utcnow() + timedelta(days=7, minutes=1)).isoformat()}
    response = client.post("/api/v1/pools", headers=token(market.manager),
                           json=_pool_body(market, **change))
    assert_error(response, 422, field=field)
    assert _pool_count() == 0


def test_open_pool_missing_fields_and_bad_bodies(client, token, market):
    headers = token(market.manager)
    for name in ("min_kg", "max_kg", "closes_at", "crop", "grade", "coop_id"):
        body = _pool_body(market)
        del body[name]
        assert_error(client.post("/api/v1/pools", headers=headers, json=body), 422, field=name)
    for raw in (b"{", b"", b"\xff\xfe", b"{'coop_id': 1}"):
        assert_error(client.post("/api/v1/pools", headers={**headers,
                                 "Content-Type": "application/json"}, data=raw),
                     400, "malformed_json")
    assert_error(client.post("/api/v1/pools", headers=headers, json=[1, 2]), 422)
    assert _pool_count() == 0


def test_open_pool_refuses_what_another_open_pool_already_reserved(client, token, market):
    headers = token(market.manager)
    assert client.post("/api/v1/pools", headers=headers,
                       json=_pool_body(market, max_kg="400")).status_code == 201
    error = assert_error(client.post("/api/v1/pools", headers=headers,
                                     json=_pool_body(market, min_kg="1", max_kg="200.001")),
                         422, "insufficient_supply", "max_kg")
    assert "199.999" in error["message"] or "200" in error["message"]
    assert client.post("/api/v1/pools", headers=headers,
                       json=_pool_body(market, min_kg="1", max_kg="200")).status_code == 201


def test_seven_days_exactly_is_allowed(client, token, market):
    closes = (utcnow() + timedelta(days=7) - timedelta(seconds=30)).isoformat()
    assert client.post("/api/v1/pools", headers=token(market.manager),
                       json=_pool_body(market, closes_at=closes)).status_code == 201


# ---------------------------------------------------------------- GET /pools/{id}

def test_get_pool_fields_and_404(client, token, market):
    pool = market.open_pool(min_kg="100", max_kg="500")
    headers = token(market.buyers[0])
    assert _order(client, headers, pool.id, kg="420").status_code == 201
    body = client.get(f"/api/v1/pools/{pool.id}", headers=token(market.farmers[1])).json
    assert POOL_FIELDS <= set(body)
    assert body["committed_kg"] == "420.000" and body["status"] == "open"
    # 420 kg reached the 400 kg tier: the price is now lower for everyone.
    assert body["price_per_kg_minor"] == pricing.breakdown(pool.price, 420_000).buyer
    assert body["price_per_kg_minor"] < pricing.highest(pool.price).buyer
    assert isinstance(body["price_per_kg_minor"], int) and body["currency"] == "COP"
    assert_error(client.get("/api/v1/pools/999999", headers=headers), 404, "not_found")
    missing = client.get("/api/v1/pools/abc", headers=headers)
    assert missing.status_code == 404 and "error" in missing.json


# ---------------------------------------------------------------- POST /pools/{id}/orders

def test_buyer_joins_201_with_a_card_hold(client, token, market, stripe_clean):
    pool = market.open_pool()
    response = _order(client, token(market.buyers[0]), pool.id, kg="120.5")
    assert response.status_code == 201, response.json
    body = response.json
    assert ORDER_CREATED_FIELDS <= set(body)
    expected = pricing.amount_for(pricing.highest(pool.price).buyer, 120_500)
    assert {k: body[k] for k in ORDER_CREATED_FIELDS - {"id"}} == {
        "pool_id": pool.id, "status": "authorized", "quantity_kg": "120.500",
        "amount_authorized_minor": expected, "currency": "COP"}
    order = db.session.get(Order, body["id"])
    hold = gateway.retrieve(order.payment_intent_id)
    assert (hold.status, hold.amount, hold.currency.lower()) == ("requires_capture", expected,
                                                                "cop")
    assert _committed(pool.id) == 120_500
    intents = _intents(stripe_clean)
    assert len(intents) == 1 and intents[0]["capture_method"] == "manual"


def test_only_buyers_order(client, token, market, make_coop):
    pool = market.open_pool()
    other_manager = make_coop().memberships[0].user
    for user in (market.manager, market.farmers[0], market.treasurer, other_manager):
        assert_error(_order(client, token(user), pool.id), 403, "forbidden")
    assert_error(_order(client, {}, pool.id), 401)
    assert_error(_order(client, token(market.buyers[0]), 999_999), 404, "not_found")
    assert _committed(pool.id) == 0
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_pool_full_409(client, token, market):
    pool = market.open_pool(max_kg="150", min_kg="10")
    assert _order(client, token(market.buyers[0]), pool.id, kg="100").status_code == 201
    assert_error(_order(client, token(market.buyers[1]), pool.id, kg="50.001"), 409, "pool_full")
    assert _committed(pool.id) == 100_000
    assert _order(client, token(market.buyers[1]), pool.id, kg="50").status_code == 201
    assert_error(_order(client, token(market.buyers[1]), pool.id, kg="0.001"), 409, "pool_full")
    assert _committed(pool.id) == 150_000


def test_pool_closed_409(client, token, market):
    cancelled = market.open_pool(max_kg="100", min_kg="10")
    cancel_and_settle(cancelled.id)
    headers = token(market.buyers[0])
    assert_error(_order(client, headers, cancelled.id), 409, "pool_closed")
    # Past its closing time but not yet closed by cron: closed for orders all the same.
    late = market.open_pool(max_kg="100", min_kg="10")
    db.session.get(Pool, late.id).closes_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert_error(_order(client, headers, late.id), 409, "pool_closed")
    confirmed = market.open_pool(max_kg="100", min_kg="1", days=2)
    assert _order(client, headers, confirmed.id, kg="5").status_code == 201
    close_and_settle(confirmed.id)
    assert_error(_order(client, token(market.buyers[1]), confirmed.id), 409, "pool_closed")


def test_declined_card_402_nothing_held_nothing_committed(client, token, market, stripe_clean):
    pool = market.open_pool()
    error = assert_error(_order(client, token(market.buyers[0]), pool.id, kg="50", pm=DECLINE),
                         402, "payment_declined")
    assert error["message"]  # human text, in the client's language
    assert _committed(pool.id) == 0
    assert db.session.scalar(select(func.count()).select_from(Order).where(
        Order.status.in_(["authorized", "pending", "captured"]))) == 0
    assert all(i["status"] != "requires_capture" for i in _intents(stripe_clean))
    mine = client.get("/api/v1/orders?mine=1", headers=token(market.buyers[0])).json["items"]
    assert all(o["status"] != "authorized" for o in mine)


@pytest.mark.parametrize("body,field", [
    ({"quantity_kg": "0", "payment_method": VISA}, "quantity_kg"),
    ({"quantity_kg": "-3", "payment_method": VISA}, "quantity_kg"),
    ({"quantity_kg": 1.5, "payment_method": VISA}, "quantity_kg"),
    ({"quantity_kg": "1.0001", "payment_method": VISA}, "quantity_kg"),
    ({"quantity_kg": {"kg": 1}, "payment_method": VISA}, "quantity_kg"),
    ({"payment_method": VISA}, "quantity_kg"),
    ({"quantity_kg": "10"}, "payment_method"),
    ({"quantity_kg": "10", "payment_method": 42}, "payment_method"),
    ({"quantity_kg": "10", "payment_method": ""}, "payment_method"),
    ({"quantity_kg": "10", "payment_method": "x" * 256}, "payment_method"),
])
def test_order_validation_422(client, token, market, body, field, stripe_clean):
    pool = market.open_pool()
    response = client.post(f"/api/v1/pools/{pool.id}/orders", json=body,
                           headers=token(market.buyers[0]))
    assert_error(response, 422, field=field)
    assert _committed(pool.id) == 0 and _intents(stripe_clean) == []


def test_order_malformed_json_400(client, token, market):
    pool = market.open_pool()
    headers = {**token(market.buyers[0]), "Content-Type": "application/json"}
    assert_error(client.post(f"/api/v1/pools/{pool.id}/orders", data=b'{"quantity_kg": ',
                             headers=headers), 400, "malformed_json")
    assert_error(client.post(f"/api/v1/pools/{pool.id}/orders", data=b"[]", headers=headers), 422)


def test_idempotency_key_same_body_same_order_one_hold(client, token, market, stripe_clean):
    pool = market.open_pool()
    headers = token(market.buyers[0])
    first = _order(client, headers, pool.id, kg="10", key="order-1")
    again = _order(client, headers, pool.id, kg="10", key="order-1")
    assert first.status_code == 201
    assert again.status_code == 201  # the first result again, status included
    assert again.json == first.json
    assert _committed(pool.id) == 10_000
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1
    assert len(_intents(stripe_clean)) == 1  # held once at Stripe
    # Keys belong to one buyer: another buyer's identical key is a new order.
    other = _order(client, token(market.buyers[1]), pool.id, kg="10", key="order-1")
    assert other.status_code == 201 and other.json["id"] != first.json["id"]
    assert len(_intents(stripe_clean)) == 2 and _committed(pool.id) == 20_000


def test_idempotency_key_different_body_422(client, token, market, stripe_clean):
    pool = market.open_pool()
    headers = token(market.buyers[0])
    assert _order(client, headers, pool.id, kg="10", key="k").status_code == 201
    assert_error(_order(client, headers, pool.id, kg="11", key="k"), 422,
                 "idempotency_key_reused")
    assert_error(_order(client, headers, pool.id, kg="10", pm=DECLINE, key="k"), 422,
                 "idempotency_key_reused")
    other_pool = market.open_pool(max_kg="50", min_kg="1")
    assert_error(_order(client, headers, other_pool.id, kg="10", key="k"), 422,
                 "idempotency_key_reused")
    assert _committed(pool.id) == 10_000 and _committed(other_pool.id) == 0
    assert len(_intents(stripe_clean)) == 1


def test_idempotency_key_of_a_declined_order_answers_402_again(client, token, market,
                                                                stripe_clean):
    pool = market.open_pool()
    headers = token(market.buyers[0])
    assert_error(_order(client, headers, pool.id, pm=DECLINE, key="d"), 402, "payment_declined")
    count = len(_intents(stripe_clean))
    assert_error(_order(client, headers, pool.id, pm=DECLINE, key="d"), 402, "payment_declined")
    assert len(_intents(stripe_clean)) == count and _committed(pool.id) == 0


def test_idempotency_key_length(client, token, market, stripe_clean):
    pool = market.open_pool()
    headers = token(market.buyers[0])
    assert_error(_order(client, headers, pool.id, key="k" * 256), 422)
    assert_error(_order(client, headers, pool.id, key=""), 422)
    assert _committed(pool.id) == 0 and _intents(stripe_clean) == []
    assert _order(client, headers, pool.id, key="k" * 255).status_code == 201


# ---------------------------------------------------------------- DELETE /orders/{id}

def test_withdraw_own_order_releases_the_hold(client, token, market):
    pool = market.open_pool()
    headers = token(market.buyers[0])
    order = _order(client, headers, pool.id, kg="30").json
    _order(client, token(market.buyers[1]), pool.id, kg="5")
    response = client.delete(f"/api/v1/orders/{order['id']}", headers=headers)
    assert response.status_code == 200
    assert response.json["status"] == "released" and response.json["id"] == order["id"]
    assert _committed(pool.id) == 5_000
    intent = db.session.get(Order, order["id"]).payment_intent_id
    assert gateway.retrieve(intent).status == "canceled"
    # Twice: nothing more happens.
    assert client.delete(f"/api/v1/orders/{order['id']}", headers=headers).status_code == 200
    assert _committed(pool.id) == 5_000


def test_withdraw_another_buyers_order_is_404(client, token, market):
    pool = market.open_pool()
    order = _order(client, token(market.buyers[0]), pool.id, kg="30").json
    for user in (market.buyers[1], market.manager, market.farmers[0]):
        assert_error(client.delete(f"/api/v1/orders/{order['id']}", headers=token(user)),
                     404, "not_found")
        assert_error(client.get(f"/api/v1/orders/{order['id']}", headers=token(user)), 404)
    assert_error(client.delete("/api/v1/orders/999999", headers=token(market.buyers[0])), 404)
    assert_error(client.delete(f"/api/v1/orders/{order['id']}"), 401)
    assert _committed(pool.id) == 30_000
    assert db.session.get(Order, order["id"]).status == "authorized"


def test_withdraw_after_close_is_409(client, token, market):
    headers = token(market.buyers[0])
    confirmed = market.open_pool(min_kg="1", max_kg="100")
    captured = _order(client, headers, confirmed.id, kg="10").json
    close_and_settle(confirmed.id)
    assert_error(client.delete(f"/api/v1/orders/{captured['id']}", headers=headers), 409)
    failed = market.open_pool(min_kg="50", max_kg="100")
    cancelled = _order(client, headers, failed.id, kg="10").json
    close_and_settle(failed.id)
    assert_error(client.delete(f"/api/v1/orders/{cancelled['id']}", headers=headers), 409)
    db.session.expire_all()
    assert db.session.get(Order, captured["id"]).status == "captured"
    assert db.session.get(Order, cancelled["id"]).status == "cancelled"


def test_withdraw_after_the_closing_time_is_409_even_before_cron(client, token, market):
    pool = market.open_pool(min_kg="20", max_kg="100")
    headers = token(market.buyers[0])
    order = _order(client, headers, pool.id, kg="30").json
    db.session.get(Pool, pool.id).closes_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert_error(client.delete(f"/api/v1/orders/{order['id']}", headers=headers), 409,
                 "pool_closed")
    assert _committed(pool.id) == 30_000
    assert pools.close_due()[0] == (pool.id, "confirmed")


# ---------------------------------------------------------------- GET /orders?mine=1

def test_list_my_orders(client, token, market):
    pool = market.open_pool(min_kg="1", max_kg="500")
    headers = token(market.buyers[0])
    a = _order(client, headers, pool.id, kg="250").json
    b = _order(client, headers, pool.id, kg="200").json
    client.delete(f"/api/v1/orders/{b['id']}", headers=headers)
    _order(client, token(market.buyers[1]), pool.id, kg="7")  # not mine
    response = client.get("/api/v1/orders?mine=1", headers=headers)
    assert response.status_code == 200 and set(response.json) == {"items", "next_cursor"}
    items = {o["id"]: o for o in response.json["items"]}
    assert set(items) == {a["id"], b["id"]}
    for item in items.values():
        assert ORDER_FIELDS <= set(item)
    assert items[b["id"]]["status"] == "released"
    assert items[a["id"]] == {**items[a["id"]], "status": "authorized", "quantity_kg": "250.000",
                              "amount_captured_minor": 0, "amount_refunded_minor": 0,
                              "currency": "COP", "pool_id": pool.id}
    close_and_settle(pool.id)
    after = {o["id"]: o for o in client.get("/api/v1/orders?mine=1",
                                            headers=headers).json["items"]}
    tier = pricing.breakdown(pool.price, 257_000).buyer
    assert after[a["id"]]["status"] == "captured"
    assert after[a["id"]]["amount_captured_minor"] == pricing.amount_for(tier, 250_000)
    assert after[a["id"]]["amount_authorized_minor"] == a["amount_authorized_minor"]


def test_list_orders_refused_without_a_buyer(client, token, market):
    assert_error(client.get("/api/v1/orders?mine=1", headers=token(market.farmers[0])), 403)
    assert_error(client.get("/api/v1/orders?mine=1"), 401)


# ---------------------------------------------------------------- POST /pools/{id}/close

def test_close_confirms_allocates_and_captures(client, token, market):
    pool = market.open_pool(min_kg="100", max_kg="500")
    a = _order(client, token(market.buyers[0]), pool.id, kg="250").json
    b = _order(client, token(market.buyers[1]), pool.id, kg="200.001").json
    withdrawn = _order(client, token(market.buyers[1]), pool.id, kg="1").json
    client.delete(f"/api/v1/orders/{withdrawn['id']}", headers=token(market.buyers[1]))
    response = client.post(f"/api/v1/pools/{pool.id}/close", headers=token(market.manager))
    # Decided and allocated at once; the captures are the workers' (202 and a status URL).
    assert response.status_code == 202, response.json
    body = response.json
    assert {"status", "allocated_kg", "orders", "allocations", "settlement",
            "status_url"} <= set(body)
    assert body["status"] == "confirmed" and body["allocated_kg"] == "450.001"
    assert body["settlement"]["state"] == "settling" and body["settlement"]["total"] == 2
    assert response.headers["Location"] == body["status_url"] == f"/api/v1/pools/{pool.id}/close"
    # The jobs ran (eagerly in tests): the status URL answers the settled close.
    response = client.get(body["status_url"], headers=token(market.manager))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["settlement"]["state"] == "settled"
    assert (body["settlement"]["done"], body["settlement"]["captured"]) == (2, 2)
    assert body["settlement"]["settled_at"]
    tier = pricing.breakdown(pool.price, 450_001).buyer
    orders = {o["id"]: o for o in body["orders"]}
    assert set(orders) == {a["id"], b["id"]}
    for order, grams in ((a, 250_000), (b, 200_001)):
        assert {"id", "quantity_kg", "amount_captured_minor"} <= set(orders[order["id"]])
        assert orders[order["id"]]["amount_captured_minor"] == pricing.amount_for(tier, grams)
        assert orders[order["id"]]["quantity_kg"] == order["quantity_kg"]
    by_listing = {x["listing_id"]: x for x in body["allocations"]}
    assert {k: v["quantity_kg"] for k, v in by_listing.items()} == {
        market.listings[0].id: "75.000", market.listings[1].id: "150.000",
        market.listings[2].id: "225.001"}
    for listing, farmer in zip(market.listings, market.farmers):
        item = by_listing[listing.id]
        assert {"id", "listing_id", "farmer_id", "quantity_kg"} <= set(item)
        assert item["farmer_id"] == farmer.id
    assert {x["id"] for x in body["allocations"]} == set(
        db.session.scalars(select(Allocation.id)))
    # The pool itself now answers confirmed, at the final price.
    pool_body = client.get(f"/api/v1/pools/{pool.id}", headers=token(market.buyers[0])).json
    assert pool_body["status"] == "confirmed" and pool_body["price_per_kg_minor"] == tier


def test_closing_twice_returns_the_same_body(client, token, market, stripe_clean):
    pool = market.open_pool(min_kg="100", max_kg="500")
    _order(client, token(market.buyers[0]), pool.id, kg="120")
    headers = token(market.manager)
    first = client.post(f"/api/v1/pools/{pool.id}/close", headers=headers)
    assert first.status_code == 202  # settled by the jobs run after it (eagerly in tests)
    intents_after_first = [(i["id"], i["status"]) for i in _intents(stripe_clean)]
    second = client.post(f"/api/v1/pools/{pool.id}/close", headers=headers)
    third = client.post(f"/api/v1/pools/{pool.id}/close", headers=headers)
    assert second.status_code == third.status_code == 200
    assert second.json == third.json == client.get(first.json["status_url"],
                                                   headers=headers).json
    assert {k: v for k, v in first.json.items() if k not in ("orders", "settlement")} == \
        {k: v for k, v in second.json.items() if k not in ("orders", "settlement")}
    assert [(i["id"], i["status"]) for i in _intents(stripe_clean)] == intents_after_first
    assert db.session.scalar(select(func.count()).select_from(Allocation)) == 3
    assert sum(db.session.get(Listing, x.id).committed_g for x in market.listings) == 120_000


def test_close_below_min_fails_and_cancels(client, token, market):
    pool = market.open_pool(min_kg="300", max_kg="500")
    order = _order(client, token(market.buyers[0]), pool.id, kg="100").json
    body = client.post(f"/api/v1/pools/{pool.id}/close", headers=token(market.manager)).json
    assert body["status"] == "failed" and body["allocated_kg"] == "0.000"
    assert body["allocations"] == []
    assert [(o["id"], o["amount_captured_minor"]) for o in body["orders"]] == [(order["id"], 0)]
    intent = db.session.get(Order, order["id"]).payment_intent_id
    assert gateway.retrieve(intent).status == "canceled"


def test_close_refused_for_others(client, token, market, make_coop):
    pool = market.open_pool(min_kg="1", max_kg="500")
    _order(client, token(market.buyers[0]), pool.id, kg="10")
    other_manager = make_coop().memberships[0].user
    assert_error(client.post(f"/api/v1/pools/{pool.id}/close", headers=token(other_manager)),
                 404, "not_found")
    assert_error(client.post(f"/api/v1/pools/{pool.id}/close",
                             headers=token(market.buyers[0])), 404)
    for user in (market.farmers[0], market.treasurer):
        assert_error(client.post(f"/api/v1/pools/{pool.id}/close", headers=token(user)),
                     403, "forbidden")
    assert_error(client.post(f"/api/v1/pools/{pool.id}/close"), 401)
    assert_error(client.post("/api/v1/pools/999999/close", headers=token(market.manager)), 404)
    db.session.expire_all()
    assert db.session.get(Pool, pool.id).status == "open"
    assert db.session.scalar(select(func.count()).select_from(Order)
                             .where(Order.status == "authorized")) == 1


def test_openapi_lists_the_pool_and_order_rows(client):
    doc = client.get("/api/v1/openapi.json").json
    paths = doc["paths"]
    for path, method in (("/api/v1/pools", "get"), ("/api/v1/pools", "post"),
                         ("/api/v1/pools/{id}", "get"), ("/api/v1/pools/{id}/orders", "post"),
                         ("/api/v1/orders", "get"), ("/api/v1/orders/{id}", "delete"),
                         ("/api/v1/pools/{id}/close", "post")):
        key = path if path in paths else path.replace("/api/v1", "")
        assert method in paths[key], (path, method)


def test_an_unusable_payment_method_is_422_not_an_outage(client, token, market, stripe_clean):
    pool = market.open_pool()
    headers = token(market.buyers[0])
    for pm in ("pm_no_such_card", "pm_\x00visa", "pm card"):
        assert_error(_order(client, headers, pool.id, pm=pm), 422, "invalid_payment_method",
                     "payment_method")
    assert _committed(pool.id) == 0
    assert all(i["status"] != "requires_capture" for i in _intents(stripe_clean))


@pytest.mark.parametrize("body", [
    b'{"id": "evt_odd1", "type": "payment_intent.canceled", "data": [1]}',
    b'{"id": "evt_odd2", "type": "payment_intent.canceled", '
    b'"data": {"object": {"id": ["pi_x"], "object": "payment_intent"}}}',
    b'{"id": "evt_odd3", "type": 7, "data": {"object": "pi_x"}}',
    b'{"id": ["evt"], "type": "payment_intent.canceled"}',
])
def test_a_signed_webhook_of_an_odd_shape_is_never_a_500(client, app, market, body):
    import hashlib
    import hmac
    import time
    pool = market.open_pool()
    order = pools.place_order(market.buyers[0], pool.id, quantity_kg="10",
                              payment_method=VISA)[0]
    stamp = int(time.time())
    sig = hmac.new(app.config["STRIPE_WEBHOOK_SECRET"].encode(), f"{stamp}.".encode() + body,
                   hashlib.sha256).hexdigest()
    response = client.post("/stripe/webhook", data=body, headers={
        "Stripe-Signature": f"t={stamp},v1={sig}", "Content-Type": "application/json"})
    assert response.status_code in (200, 400, 422), response.data[:300]
    assert db.session.get(Order, order.id).status == "authorized"
    assert _committed(pool.id) == 10_000
