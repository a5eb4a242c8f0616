"""The JSON API of api-v1.md for tokens, crops, coops and listings: paths, fields, status
codes and the error body are a contract. Every error is JSON, never HTML, never a 500."""
from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import func, select

from coop.api.openapi import document
from coop.extensions import db
from coop.listings.models import Listing
from tests.support import PASSWORD

KG_STRING = re.compile(r"^\d+\.\d{3}$")


def listing_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Listing))


def assert_error(response, status: int, code: str | None = None, fields: set | None = None):
    """The contract's error body: JSON, {"error": {"code", "message", "fields"}}."""
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json", response.data[:200]
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"])
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["fields"], dict)
    for problems in error["fields"].values():
        assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
    if code:
        assert error["code"] == code, error
    if fields is not None:
        assert fields <= set(error["fields"]), error
    return error


def schema_validator(name: str) -> Draft202012Validator:
    doc = document()
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                 "components": doc["components"]})


def assert_matches(name: str, instance) -> None:
    errors = list(schema_validator(name).iter_errors(instance))
    assert not errors, [e.message for e in errors]


@pytest.fixture
def coop(make_coop):
    return make_coop(name="Cooperativa Nuevo Horizonte")


@pytest.fixture
def farmer(coop, make_farmer):
    return make_farmer(coop)


@pytest.fixture
def auth(farmer, token):
    headers = token(farmer)
    headers["Accept-Language"] = "en"
    return headers


def body(**overrides) -> dict:
    data = {"crop": "coffee", "grade": "sca85", "quantity_kg": "120.500",
            "harvested_on": (date.today() - timedelta(days=4)).isoformat(),
            "collection_point": "Vereda El Tambo"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


# ---------------------------------------------------------------- tokens


def test_a_token_is_issued_with_the_user_exactly_as_the_contract_says(client, coop, farmer):
    response = client.post("/api/v1/auth/tokens", json={"email": farmer.email,
                                                        "password": PASSWORD})
    assert response.status_code == 201 and response.mimetype == "application/json"
    data = response.get_json()
    assert set(data) == {"token", "user"}
    assert isinstance(data["token"], str) and len(data["token"]) >= 32
    user = data["user"]
    assert set(user) == {"id", "email", "name", "memberships", "buyer_id"}
    assert user["id"] == farmer.id and user["email"] == farmer.email
    assert user["name"] == farmer.name and user["buyer_id"] is None
    assert user["memberships"] == [{"coop_id": coop.id, "role": "farmer"}]
    assert_matches("Token", data)
    # The token works, and is not stored in clear.
    mine = client.get("/api/v1/listings",
                      headers={"Authorization": f"Bearer {data['token']}"})
    assert mine.status_code == 200
    from coop.auth.models import ApiToken
    assert data["token"] not in {t.token_hash for t in db.session.scalars(select(ApiToken))}


def test_a_buyers_token_carries_the_buyer_id(client, make_buyer):
    buyer = make_buyer()
    data = client.post("/api/v1/auth/tokens", json={"email": buyer.email.upper(),
                                                    "password": PASSWORD}).get_json()
    assert data["user"]["buyer_id"] == buyer.buyer_id and data["user"]["memberships"] == []


@pytest.mark.parametrize("payload", [
    {"email": "nobody@example.org", "password": PASSWORD},
    {"email": "FARMER", "password": PASSWORD},
    {"email": "farmer@example.org\x00", "password": PASSWORD},
])
def test_wrong_credentials_are_401_invalid_credentials(client, farmer, payload):
    assert_error(client.post("/api/v1/auth/tokens", json=payload), 401, "invalid_credentials")
    wrong = client.post("/api/v1/auth/tokens", json={"email": farmer.email, "password": "nope" * 3})
    assert_error(wrong, 401, "invalid_credentials")


@pytest.mark.parametrize("payload,missing", [
    ({}, {"email", "password"}),
    ({"email": "a@example.org"}, {"password"}),
    ({"password": PASSWORD}, {"email"}),
    ({"email": 5, "password": ["x"]}, {"email", "password"}),
    ({"email": None, "password": PASSWORD}, {"email"}),
])
def test_missing_or_mistyped_credentials_are_422(client, payload, missing):
    assert_error(client.post("/api/v1/auth/tokens", json=payload), 422, "validation_failed",
                 missing)


@pytest.mark.parametrize("raw", [b"{", b"email=a&password=b", b"\xff\xfe", b"", b"   ",
                                 b"[" * 100_000 + b"]" * 100_000])
def test_malformed_json_is_400(client, raw):
    response = client.post("/api/v1/auth/tokens", data=raw, content_type="application/json")
    assert_error(response, 400, "malformed_json")


@pytest.mark.parametrize("raw", [b"null", b"[1, 2]", b'"text"', b"42"])
def test_json_that_is_not_an_object_is_422(client, raw):
    response = client.post("/api/v1/auth/tokens", data=raw, content_type="application/json")
    assert_error(response, 422, "invalid_body")


def test_repeated_failures_are_rate_limited(client, farmer):
    for _ in range(5):
        assert_error(client.post("/api/v1/auth/tokens",
                                 json={"email": farmer.email, "password": "wrong-password"}),
                     401, "invalid_credentials")
    limited = client.post("/api/v1/auth/tokens", json={"email": farmer.email,
                                                       "password": PASSWORD})
    assert_error(limited, 429, "rate_limited")
    assert limited.headers.get("Retry-After")


def test_successful_logins_do_not_use_up_the_limit(client, farmer):
    for _ in range(8):
        assert client.post("/api/v1/auth/tokens", json={"email": farmer.email,
                                                        "password": PASSWORD}).status_code == 201


# ---------------------------------------------------------------- crops and coops


def test_crops_shape_and_no_prohibited_crop(client):
    response = client.get("/api/v1/crops", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    data = response.get_json()
    assert set(data) == {"items"}
    for crop in data["items"]:
        assert set(crop) == {"slug", "name", "unit", "grades"} and crop["unit"] == "kg"
        assert crop["grades"] and all(set(g) == {"code", "name"} for g in crop["grades"])
    assert_matches("Crop", data["items"][0])
    by_slug = {c["slug"]: c for c in data["items"]}
    assert by_slug["coffee"]["name"] == "Coffee (parchment)"
    assert [g["code"] for g in by_slug["cacao"]["grades"]] == ["export", "fine", "ordinary"]
    assert not {"coca", "opium-poppy", "opium_poppy", "cannabis", "amapola"} & set(by_slug)
    spanish = client.get("/api/v1/crops").get_json()
    assert {c["slug"]: c["name"] for c in spanish["items"]}["coffee"] == "Café pergamino"


def test_coops_shape(client, make_coop):
    first = make_coop(name="Cooperativa Nuevo Horizonte")
    second = make_coop(name="Cooperativa Valle Verde", country="PE", currency="PEN")
    response = client.get("/api/v1/coops")
    assert response.status_code == 200
    data = response.get_json()
    # a list, as api-v1.md's conventions say: its items and the cursor of the next page
    assert set(data) == {"items", "next_cursor"} and data["next_cursor"] is None
    items = {c["id"]: c for c in data["items"]}
    assert set(items) == {first.id, second.id}
    for coop in (first, second):
        item = items[coop.id]
        assert {"id", "slug", "name", "country", "currency"} <= set(item)
        assert (item["slug"], item["name"], item["country"], item["currency"]) == (
            coop.slug, coop.name, coop.country, coop.currency)
        assert_matches("Coop", item)
    # Public: no member, farmer or money detail leaks here.
    text = response.get_data(as_text=True)
    assert "Manager" not in text and "@" not in text


# ---------------------------------------------------------------- listings: who may


def test_listings_need_a_valid_bearer_token(client, farmer, token):
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": "Basic " + base64.b64encode(b"a:b").decode()},
                    {"Authorization": "Bearer " + "x" * 5000},
                    {"Authorization": "Bearer \x00"}):
        assert_error(client.get("/api/v1/listings", headers=headers), 401, "unauthorized")
        assert_error(client.post("/api/v1/listings", json=body(), headers=headers), 401,
                     "unauthorized")
        assert_error(client.patch("/api/v1/listings/1", json={}, headers=headers), 401)
        assert_error(client.delete("/api/v1/listings/1", headers=headers), 401)
    assert listing_count() == 0


def test_an_expired_token_is_401(client, farmer, token):
    from coop.auth.models import ApiToken
    headers = token(farmer)
    row = db.session.scalars(select(ApiToken)).one()
    row.expires_at = datetime.now().astimezone() - timedelta(seconds=1)
    db.session.commit()
    assert_error(client.get("/api/v1/listings", headers=headers), 401, "unauthorized")


def test_buyers_and_managers_have_no_listings(client, coop, make_buyer, token):
    for user in (make_buyer(), coop.memberships[0].user):
        headers = token(user)
        assert_error(client.get("/api/v1/listings", headers=headers), 403, "forbidden")
        assert_error(client.post("/api/v1/listings", json=body(), headers=headers), 403)
    assert listing_count() == 0


# ---------------------------------------------------------------- creating


def test_a_farmer_lists_a_harvest(client, auth, farmer, coop):
    payload = body(notes="Secado al sol")
    response = client.post("/api/v1/listings", json=payload, headers=auth)
    assert response.status_code == 201 and response.mimetype == "application/json"
    data = response.get_json()
    contract = {"id", "crop", "grade", "quantity_kg", "available_kg", "status", "harvested_on"}
    assert contract <= set(data)
    assert data["crop"] == "coffee" and data["grade"] == "sca85"
    assert data["quantity_kg"] == "120.500" and data["available_kg"] == "120.500"
    assert data["status"] == "available" and data["harvested_on"] == payload["harvested_on"]
    assert data["coop_id"] == coop.id
    assert_matches("Listing", data)
    stored = db.session.get(Listing, data["id"])
    assert stored.farmer_user_id == farmer.id and stored.quantity_g == 120_500
    assert stored.notes == "Secado al sol" and stored.collection_point == "Vereda El Tambo"
    assert datetime.fromisoformat(data["created_at"]).utcoffset() is not None


@pytest.mark.parametrize("quantity,grams", [("1", 1000), ("0.001", 1), ("7.25", 7250),
                                            (250, 250_000), ("10000000", 10_000_000_000)])
def test_quantities_as_decimal_strings_or_whole_numbers(client, auth, quantity, grams):
    response = client.post("/api/v1/listings", json=body(quantity_kg=quantity), headers=auth)
    assert response.status_code == 201, response.get_json()
    assert db.session.get(Listing, response.get_json()["id"]).quantity_g == grams
    assert KG_STRING.match(response.get_json()["quantity_kg"])


@pytest.mark.parametrize("crop", ["coca", "Coca", "hoja de coca", "amapola", "opium-poppy",
                                  "MARIHUANA", "marihuána", "cannabis", "Cannabis sativa"])
def test_prohibited_crops_are_422_prohibited_crop(client, auth, crop):
    error = assert_error(client.post("/api/v1/listings", json=body(crop=crop), headers=auth),
                         422, "prohibited_crop", {"crop"})
    assert "cannot be listed" in error["message"]
    assert listing_count() == 0


@pytest.mark.parametrize("crop", ["bananas", "", "x" * 10_000, "co\x00ffee", "coffee/sca85"])
def test_unknown_crops_are_422_unknown_crop(client, auth, crop):
    assert_error(client.post("/api/v1/listings", json=body(crop=crop), headers=auth),
                 422, "unknown_crop", {"crop"})
    assert listing_count() == 0


def test_an_unknown_grade_is_422(client, auth):
    assert_error(client.post("/api/v1/listings", json=body(grade="sca99"), headers=auth),
                 422, "unknown_grade", {"grade"})


@pytest.mark.parametrize("changes,field", [
    ({"quantity_kg": 120.5}, "quantity_kg"),
    ({"quantity_kg": 1e3}, "quantity_kg"),
    ({"quantity_kg": "-5"}, "quantity_kg"),
    ({"quantity_kg": -5}, "quantity_kg"),
    ({"quantity_kg": "0"}, "quantity_kg"),
    ({"quantity_kg": "1.0005"}, "quantity_kg"),
    ({"quantity_kg": "1e30"}, "quantity_kg"),
    ({"quantity_kg": 10 ** 40}, "quantity_kg"),
    ({"quantity_kg": "123456789012345678901234567890.1234"}, "quantity_kg"),
    ({"quantity_kg": "1E+1000000"}, "quantity_kg"),
    ({"quantity_kg": "NaN"}, "quantity_kg"),
    ({"quantity_kg": True}, "quantity_kg"),
    ({"quantity_kg": [0, [1], 0]}, "quantity_kg"),
    ({"quantity_kg": {"kg": 1}}, "quantity_kg"),
    ({"quantity_kg": None}, "quantity_kg"),
    ({"quantity_kg": ...}, "quantity_kg"),
    ({"crop": 5}, "crop"),
    ({"crop": None}, "crop"),
    ({"crop": ...}, "crop"),
    ({"grade": ["sca85"]}, "grade"),
    ({"harvested_on": 20260101}, "harvested_on"),
    ({"harvested_on": ...}, "harvested_on"),
    ({"harvested_on": "2026-02-30"}, "harvested_on"),
    ({"harvested_on": "20260102"}, "harvested_on"),
    ({"harvested_on": "2019-01-01"}, "harvested_on"),
    ({"harvested_on": (date.today() + timedelta(days=400)).isoformat()}, "harvested_on"),
    ({"harvested_on": "2026-11-02T10:00:00+00:00"}, "harvested_on"),
    ({"collection_point": 12}, "collection_point"),
    ({"collection_point": "x" * 161}, "collection_point"),
    ({"collection_point": "a\x00b"}, "collection_point"),
    ({"notes": "n" * 501}, "notes"),
    ({"notes": {"a": 1}}, "notes"),
    ({"coop_id": "1"}, "coop_id"),
    ({"coop_id": True}, "coop_id"),
    ({"coop_id": 1.0}, "coop_id"),
])
def test_bad_fields_are_422_with_the_field_named(client, auth, changes, field):
    response = client.post("/api/v1/listings", json=body(**changes), headers=auth)
    assert_error(response, 422, fields={field})
    assert listing_count() == 0


def test_another_coop_id_is_404(client, auth, make_coop):
    other = make_coop()
    assert_error(client.post("/api/v1/listings", json=body(coop_id=other.id), headers=auth), 404)
    assert listing_count() == 0


@pytest.mark.parametrize("raw", [b"{", b"", b"crop=coffee", b'{"crop": "coffee",}',
                                 b"[" * 50_000 + b"]" * 50_000])
def test_malformed_json_on_listings_is_400(client, auth, raw):
    response = client.post("/api/v1/listings", data=raw, headers=auth,
                           content_type="application/json")
    assert_error(response, 400, "malformed_json")
    assert listing_count() == 0


# ---------------------------------------------------------------- idempotency


def test_the_same_key_and_body_returns_the_first_listing(client, auth):
    headers = {**auth, "Idempotency-Key": "outbox-7f3a"}
    first = client.post("/api/v1/listings", json=body(), headers=headers)
    assert first.status_code == 201
    again = client.post("/api/v1/listings", json=body(), headers=headers)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert listing_count() == 1
    # Another key is another listing.
    other = client.post("/api/v1/listings", json=body(), headers={**auth, "Idempotency-Key": "b"})
    assert other.status_code == 201 and other.get_json()["id"] != first.get_json()["id"]
    assert listing_count() == 2


@pytest.mark.parametrize("changes", [{"quantity_kg": "121"}, {"grade": "sca90"},
                                     {"notes": "otra nota"}, {"collection_point": "Otro"},
                                     {"harvested_on": (date.today()
                                                       - timedelta(days=1)).isoformat()}])
def test_the_same_key_with_another_body_is_refused(client, auth, changes):
    headers = {**auth, "Idempotency-Key": "outbox-1"}
    assert client.post("/api/v1/listings", json=body(), headers=headers).status_code == 201
    response = client.post("/api/v1/listings", json=body(**changes), headers=headers)
    assert_error(response, 422, "idempotency_key_reused")
    assert listing_count() == 1


def test_keys_belong_to_one_farmer(client, auth, coop, make_farmer, token):
    headers = {**auth, "Idempotency-Key": "shared-key"}
    mine = client.post("/api/v1/listings", json=body(), headers=headers).get_json()
    neighbour = make_farmer(coop, name="Neighbour")
    theirs = client.post("/api/v1/listings", json=body(),
                         headers={**token(neighbour), "Idempotency-Key": "shared-key"})
    assert theirs.status_code == 201 and theirs.get_json()["id"] != mine["id"]
    assert listing_count() == 2


@pytest.mark.parametrize("key", ["", "k" * 256, "bad\x00key", "tab\tkey"])
def test_bad_idempotency_keys_are_422(client, auth, key):
    response = client.post("/api/v1/listings", json=body(),
                           headers={**auth, "Idempotency-Key": key})
    assert_error(response, 422, "invalid_idempotency_key")
    assert listing_count() == 0


def test_a_refused_request_does_not_use_up_its_key(client, auth):
    headers = {**auth, "Idempotency-Key": "retry-me"}
    assert_error(client.post("/api/v1/listings", json=body(crop="coca"), headers=headers), 422,
                 "prohibited_crop")
    assert client.post("/api/v1/listings", json=body(), headers=headers).status_code == 201
    assert listing_count() == 1


def test_two_requests_with_one_key_racing_create_one_listing(client, auth, monkeypatch):
    """The second request did not see the first's row before inserting its own: the unique
    key refuses the insert, and the API answers with the first listing instead of a 500."""
    from coop.listings import services
    headers = {**auth, "Idempotency-Key": "race"}
    first = client.post("/api/v1/listings", json=body(), headers=headers).get_json()
    real = services.listing_for_key
    calls = []

    def blind_once(farmer, key):
        calls.append(key)
        return None if len(calls) == 1 else real(farmer, key)

    monkeypatch.setattr(services, "listing_for_key", blind_once)
    again = client.post("/api/v1/listings", json=body(), headers=headers)
    assert again.status_code == 201 and again.get_json() == first and len(calls) == 2
    different = client.post("/api/v1/listings", json=body(quantity_kg="3"), headers=headers)
    assert_error(different, 422, "idempotency_key_reused")
    assert listing_count() == 1


# ---------------------------------------------------------------- reading, paging


def test_a_farmer_reads_only_their_listings_newest_first(client, auth, coop, make_farmer,
                                                         make_listing, farmer, token):
    mine = [make_listing(farmer, kg=str(n)) for n in range(1, 6)]
    neighbour = make_farmer(coop, name="Neighbour")
    theirs = make_listing(neighbour, kg="999")
    data = client.get("/api/v1/listings?mine=1", headers=auth).get_json()
    assert set(data) == {"items", "next_cursor"} and data["next_cursor"] is None
    assert [i["id"] for i in data["items"]] == [m.id for m in reversed(mine)]
    for item in data["items"]:
        assert_matches("Listing", item)
    one = client.get(f"/api/v1/listings/{mine[0].id}", headers=auth)
    assert one.status_code == 200 and one.get_json()["quantity_kg"] == "1.000"
    assert_error(client.get(f"/api/v1/listings/{theirs.id}", headers=auth), 404, "not_found")
    assert_error(client.get("/api/v1/listings/987654", headers=auth), 404, "not_found")


def test_paging_with_limit_and_cursor(client, auth, farmer, make_listing):
    made = [make_listing(farmer, kg=str(n)) for n in range(1, 8)]
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/listings?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).get_json()
        pages += 1
        assert len(page["items"]) <= 3
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert pages == 3 and seen == [m.id for m in reversed(made)]
    exact = client.get("/api/v1/listings?limit=7", headers=auth).get_json()
    assert len(exact["items"]) == 7 and exact["next_cursor"] is None
    assert len(client.get("/api/v1/listings?limit=200", headers=auth).get_json()["items"]) == 7
    assert len(client.get("/api/v1/listings", headers=auth).get_json()["items"]) == 7


@pytest.mark.parametrize("query,field", [("limit=201", "limit"), ("limit=0", "limit"),
                                         ("limit=-1", "limit"), ("limit=abc", "limit"),
                                         ("limit=1.5", "limit"), ("limit=" + "9" * 400, "limit"),
                                         ("cursor=!!!", "cursor"), ("cursor=YWJj", "cursor"),
                                         ("cursor=MA", "cursor"), ("cursor=LTU", "cursor"),
                                         ("cursor=%00", "cursor")])
def test_bad_paging_is_422(client, auth, query, field):
    assert_error(client.get(f"/api/v1/listings?{query}", headers=auth), 422, fields={field})


# ---------------------------------------------------------------- changing, withdrawing


def test_a_farmer_changes_their_listing(client, auth, farmer, make_listing):
    listing = make_listing(farmer, kg="100")
    response = client.patch(f"/api/v1/listings/{listing.id}", headers=auth,
                            json={"quantity_kg": "80.250", "grade": "sca90",
                                  "collection_point": "Acopio central", "notes": "Listo"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["quantity_kg"] == "80.250" and data["grade"] == "sca90"
    assert data["collection_point"] == "Acopio central"
    assert_matches("Listing", data)
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).quantity_g == 80_250


@pytest.mark.parametrize("payload,status,field", [
    ({"quantity_kg": 1.5}, 422, "quantity_kg"),
    ({"quantity_kg": "-1"}, 422, "quantity_kg"),
    ({"quantity_kg": "0"}, 422, "quantity_kg"),
    ({"harvested_on": "2001-01-01"}, 422, "harvested_on"),
    ({"harvested_on": 5}, 422, "harvested_on"),
    ({"grade": "sca99"}, 422, "grade"),
    ({"crop": "coca"}, 422, "crop"),
    ({"status": "sold"}, 422, "status"),
    ({"committed_kg": "0"}, 422, "committed_kg"),
    ({"notes": "n" * 501}, 422, "notes"),
])
def test_bad_changes_are_refused_and_change_nothing(client, auth, farmer, make_listing,
                                                    payload, status, field):
    listing = make_listing(farmer, kg="100")
    response = client.patch(f"/api/v1/listings/{listing.id}", headers=auth, json=payload)
    assert_error(response, status, fields={field})
    db.session.expire_all()
    row = db.session.get(Listing, listing.id)
    assert (row.quantity_g, row.grade.code, row.status) == (100_000, "sca85", "available")


def test_a_change_that_fails_halfway_writes_nothing(client, auth, farmer, make_listing):
    listing = make_listing(farmer, kg="100")
    response = client.patch(f"/api/v1/listings/{listing.id}", headers=auth,
                            json={"quantity_kg": "50", "harvested_on": "1999-01-01"})
    assert_error(response, 422, fields={"harvested_on"})
    db.session.expire_all()
    assert db.session.get(Listing, listing.id).quantity_g == 100_000


def test_patch_bodies_must_be_json_objects(client, auth, farmer, make_listing):
    listing = make_listing(farmer)
    url = f"/api/v1/listings/{listing.id}"
    assert_error(client.patch(url, headers=auth, data=b"{", content_type="application/json"),
                 400, "malformed_json")
    assert_error(client.patch(url, headers=auth, json=[1]), 422, "invalid_body")


def test_a_farmer_withdraws_their_listing(client, auth, farmer, make_listing):
    listing = make_listing(farmer)
    response = client.delete(f"/api/v1/listings/{listing.id}", headers=auth)
    assert response.status_code == 200 and response.get_json()["status"] == "withdrawn"
    assert response.get_json()["available_kg"] == "0.000"
    again = client.delete(f"/api/v1/listings/{listing.id}", headers=auth)
    assert again.status_code == 200 and again.get_json()["status"] == "withdrawn"
    assert_error(client.patch(f"/api/v1/listings/{listing.id}", headers=auth,
                              json={"quantity_kg": "5"}), 409, "listing_withdrawn")


def test_a_committed_listing_is_409_listing_committed(client, auth, farmer, make_listing):
    listing = make_listing(farmer, kg="100")
    row = db.session.get(Listing, listing.id)
    row.committed_g, row.status = 30_000, "committed"
    db.session.commit()
    url = f"/api/v1/listings/{listing.id}"
    assert_error(client.patch(url, headers=auth, json={"quantity_kg": "10"}), 409,
                 "listing_committed")
    assert_error(client.delete(url, headers=auth), 409, "listing_committed")
    db.session.expire_all()
    row = db.session.get(Listing, listing.id)
    assert (row.quantity_g, row.status) == (100_000, "committed")


def test_another_farmers_listing_is_404_for_every_method(client, auth, coop, make_farmer,
                                                        make_coop, make_listing, make_buyer,
                                                        token):
    neighbour = make_listing(make_farmer(coop, name="Neighbour"), kg="100")
    elsewhere = make_listing(make_farmer(make_coop(), name="Elsewhere"), kg="100")
    manager = token(coop.memberships[0].user)
    buyer = token(make_buyer())
    for headers in (auth, manager, buyer):
        for listing in (neighbour, elsewhere):
            url = f"/api/v1/listings/{listing.id}"
            assert_error(client.get(url, headers=headers), 404, "not_found")
            assert_error(client.patch(url, headers=headers, json={"quantity_kg": "1"}), 404)
            assert_error(client.delete(url, headers=headers), 404, "not_found")
    db.session.expire_all()
    for listing in (neighbour, elsewhere):
        row = db.session.get(Listing, listing.id)
        assert (row.quantity_g, row.status) == (100_000, "available")


# ---------------------------------------------------------------- never HTML, never a 500


@pytest.mark.parametrize("method,path,status,code", [
    ("get", "/api/v1/nothing-here", 404, "not_found"),
    ("get", "/api/v2/listings", 404, "not_found"),
    ("get", "/api/v1/listings/abc", 404, "not_found"),
    ("delete", "/api/v1/crops", 405, "method_not_allowed"),
    ("put", "/api/v1/listings", 405, "method_not_allowed"),
    ("put", "/api/v1/auth/tokens", 405, "method_not_allowed"),
    ("post", "/api/v1/openapi.json", 405, "method_not_allowed"),
])
def test_routing_errors_on_the_api_are_json(client, method, path, status, code):
    assert_error(getattr(client, method)(path), status, code)


def test_an_oversized_body_is_a_json_413(client, auth):
    response = client.post("/api/v1/listings", headers=auth, content_type="application/json",
                           data=b'{"notes": "' + b"x" * (12 * 1024 * 1024) + b'"}')
    assert_error(response, 413, "too_large")


def test_an_unexpected_failure_is_a_json_500(client, auth, monkeypatch):
    from coop.listings import services

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "farmer_listings", broken)
    error = assert_error(client.get("/api/v1/listings", headers=auth), 500, "server_error")
    assert "fire" not in error["message"]


# ---------------------------------------------------------------- the OpenAPI document


def api_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:>]+:)?[^>]+>", "{}", rule.rule[len("/api/v1"):])
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((method.lower(), path))
    return routes


def documented(doc) -> set[tuple[str, str]]:
    return {(method, re.sub(r"\{[^}]+\}", "{}", path))
            for path, item in doc["paths"].items() for method in item}


def test_openapi_is_a_valid_3_1_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    validate_openapi(doc)  # raises on any structural error
    assert doc["servers"] == [{"url": "/api/v1"}]


def test_openapi_documents_every_api_route(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()
    routes = api_routes(app)
    assert ("post", "/listings") in routes and ("get", "/openapi.json") in routes
    missing = routes - documented(doc)
    assert not missing, f"API routes without documentation: {sorted(missing)}"
    stale = documented(doc) - routes
    assert not stale, f"documented routes that do not exist: {sorted(stale)}"


def test_openapi_operations_say_what_they_answer(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op.get("summary"), (method, path)
            assert any(code.startswith("2") for code in op["responses"]), (method, path)
            for code, answer in op["responses"].items():
                if path.endswith(".csv") and code.startswith("2"):
                    assert answer["content"]["text/csv"]["schema"] == {"type": "string"}
                    continue
                if path.endswith((".pdf", ".xml")) and code.startswith("2"):  # a document's file
                    [(media, body)] = answer["content"].items()
                    assert media in ("application/pdf", "application/xml")
                    assert body["schema"] == {"type": "string"}
                    continue
                if path.endswith(".geojson") and code.startswith("2"):  # RFC 7946's type
                    schema = answer["content"]["application/geo+json"]["schema"]
                    assert schema["$ref"].rsplit("/", 1)[1] in schemas
                    continue
                if code == "204":  # No Content: nothing to describe
                    assert "content" not in answer, (method, path)
                    continue
                schema = answer["content"]["application/json"]["schema"]
                ref = schema.get("$ref", "")
                if ref:
                    assert ref.rsplit("/", 1)[1] in schemas
                if not code.startswith("2"):
                    assert ref == "#/components/schemas/Error", (method, path, code)
            if op.get("security"):
                assert "401" in op["responses"], (method, path)
            if "requestBody" in op:
                assert "400" in op["responses"] and "422" in op["responses"], (method, path)
            for name in re.findall(r"\{([^}]+)\}", path):
                assert any(p["in"] == "path" and p["name"] == name and p["required"]
                           for p in op.get("parameters", [])), (method, path)
    listing = doc["paths"]["/listings"]
    # A bearer token, or the browser session with its CSRF token (the offline outbox).
    assert listing["post"]["security"] == [{"bearer": []}, {"browserSession": []}]
    assert listing["get"]["security"] == [{"bearer": []}]
    assert "multipart/form-data" in listing["post"]["requestBody"]["content"]
    assert "security" not in doc["paths"]["/crops"]["get"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header"
               for p in listing["post"]["parameters"])
    assert {p["name"] for p in listing["get"]["parameters"]} >= {"limit", "cursor"}
    # The contract's fields at least; every field the answer always has is required.
    required = set(schemas["Listing"]["required"])
    assert required >= {"id", "crop", "grade", "quantity_kg", "available_kg", "status",
                        "harvested_on"}
    assert set(schemas["Error"]["properties"]["error"]["required"]) == {"code", "message",
                                                                        "fields"}


def test_error_bodies_match_the_documented_error_schema(client, auth):
    for response in (client.post("/api/v1/listings", json=body(crop="coca"), headers=auth),
                     client.get("/api/v1/listings"),
                     client.get("/api/v1/nothing")):
        assert_matches("Error", response.get_json())
