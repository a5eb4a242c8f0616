"""What /api/v1/openapi.json promises about bad input, and the app keeping it: ids within the
database's bounds (beyond them a 404, never a 500), cursors and limits validated (422 with a
message), the `status` and `rail` filters declared with their enums, every field of an answer
required, and each status an operation can give documented (404, 405, 413, 422, 429)."""
from __future__ import annotations

import re

import pytest

from coop.api.common import encode_cursor
from coop.common.statuses import PoolStatus, values
from coop.cooperatives.models import PAYOUT_RAILS

MAX_ID = 2_147_483_647


@pytest.fixture
def doc(client):
    return client.get("/api/v1/openapi.json").get_json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method, path, op


def error_of(response, status):
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["message"].strip() and re.fullmatch(r"[a-z_]+", error["code"])
    return error


# ---------------------------------------------------------------- ids in the path


def test_every_id_parameter_has_the_databases_bounds(doc):
    seen = 0
    for method, path, op in operations(doc):
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert param["schema"] == {"type": "integer", "minimum": 1,
                                           "maximum": MAX_ID}, (method, path)
                seen += 1
    assert seen >= 15


def _with_id(doc, value):
    for method, path, op in operations(doc):
        if "{id}" in path:
            yield method, "/api/v1" + path.replace("{id}", str(value))


@pytest.mark.parametrize("value", [MAX_ID + 1, 10 ** 30, 0])
def test_an_id_no_row_can_have_is_a_json_404_on_every_path(client, doc, token, make_buyer,
                                                             make_coop, value):
    """PostgreSQL refused 2,147,483,648 with "integer out of range" and SQLite with an
    OverflowError: 500s, even anonymously. Now a 404 before any query, for anyone."""
    coop = make_coop()
    manager = next(m.user for m in coop.memberships if m.role == "manager")
    for headers in ({}, token(manager), token(make_buyer())):
        for method, url in _with_id(doc, value):
            response = client.open(url, method=method.upper(), headers=headers,
                                   json={} if method in ("post", "patch") else None)
            assert response.status_code in (401, 404), (method, url, response.status_code)
            if headers:
                assert error_of(response, 404)["code"] == "not_found"


def test_the_largest_id_is_an_ordinary_404(client, token, make_buyer):
    headers = token(make_buyer())
    assert error_of(client.get(f"/api/v1/pools/{MAX_ID}", headers=headers), 404)


# ---------------------------------------------------------------- pages


LISTS = ("/api/v1/pools", "/api/v1/orders", "/api/v1/listings")


@pytest.fixture
def list_callers(token, make_buyer, make_coop, make_farmer):
    coop = make_coop()
    return {"/api/v1/pools": token(make_buyer()), "/api/v1/orders": token(make_buyer()),
            "/api/v1/listings": token(make_farmer(coop))}


@pytest.mark.parametrize("cursor", [
    encode_cursor(MAX_ID + 1),         # an id PostgreSQL cannot compare: was a 500
    encode_cursor(10 ** 20),
    encode_cursor(0),
    "MDEy",                            # "012": not a cursor the API ever gave
    "KzU",                             # "+5"
    "MV8w",                            # "1_0"
    "2aM",                             # Arabic-Indic digit three
    "not a cursor", "%%%", "é", "A" * 40,
])
@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_the_api_never_gave_is_a_422_naming_it(client, list_callers, path, cursor):
    error = error_of(client.get(path, headers=list_callers[path],
                                query_string={"cursor": cursor}), 422)
    assert "cursor" in error["fields"] and error["fields"]["cursor"]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "+5", "5.0", "1e2", "٣", "５", " 5",
                                   "99999999999999999999", "x"])
@pytest.mark.parametrize("path", LISTS)
def test_a_limit_out_of_range_or_not_ascii_digits_is_a_422(client, list_callers, path, limit):
    error = error_of(client.get(path, headers=list_callers[path],
                                query_string={"limit": limit}), 422)
    assert "limit" in error["fields"]


def test_the_next_cursor_still_pages(client, token, market):
    first, second = market.open_pool(max_kg="100"), market.open_pool(max_kg="100")
    headers = token(market.buyers[0])
    page = client.get("/api/v1/pools", headers=headers, query_string={"limit": 1}).get_json()
    assert [p["id"] for p in page["items"]] == [second.id]  # newest first
    page = client.get("/api/v1/pools", headers=headers,
                      query_string={"limit": 1, "cursor": page["next_cursor"]}).get_json()
    assert [p["id"] for p in page["items"]] == [first.id] and page["next_cursor"] is None
    # The largest id the database holds is a cursor like any other (everything before it).
    page = client.get("/api/v1/pools", headers=headers,
                      query_string={"cursor": encode_cursor(MAX_ID)}).get_json()
    assert [p["id"] for p in page["items"]] == [second.id, first.id]


def test_paged_lists_declare_limit_cursor_and_422_and_whole_lists_do_not(doc):
    for method, path, op in operations(doc):
        names = {p["name"] for p in op.get("parameters", [])}
        ok = op["responses"].get("200", {}).get("content", {}).get("application/json", {})
        paged = "next_cursor" in ok.get("schema", {}).get("properties", {})
        if paged:
            assert {"limit", "cursor"} <= names and "422" in op["responses"], path
            assert ok["schema"]["required"] == ["items", "next_cursor"]
        else:
            assert not {"limit", "cursor"} & names, path
    assert "next_cursor" not in doc["paths"]["/crops"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]["properties"]


# ---------------------------------------------------------------- filters


def _param(doc, method, path, name):
    params = [p for p in doc["paths"][path][method].get("parameters", []) if p["name"] == name]
    assert len(params) == 1, (method, path, name)
    return params[0]


def test_the_status_and_rail_filters_are_declared_with_their_enums(doc):
    status = _param(doc, "get", "/pools", "status")
    assert status["in"] == "query" and status["schema"]["enum"] == values(PoolStatus)
    rail = _param(doc, "get", "/payout-batches/{id}/export.csv", "rail")
    assert rail["in"] == "query" and rail["schema"]["enum"] == list(PAYOUT_RAILS)
    for path in ("/listings", "/orders"):  # ?mine=1 of the contract
        assert _param(doc, "get", path, "mine")["schema"]["enum"] == ["1"]


def test_an_unknown_status_filter_is_a_422(client, token, make_buyer):
    error = error_of(client.get("/api/v1/pools?status=closed",
                                headers=token(make_buyer())), 422)
    assert "status" in error["fields"]


# ---------------------------------------------------------------- answers


def _objects(schema, schemas, seen=()):
    """Every object schema inside `schema` (following $refs once each)."""
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        if name not in seen:
            yield from _objects(schemas[name], schemas, (*seen, name))
        return
    if schema.get("type") == "object" and "properties" in schema:
        yield schema
    for value in schema.get("properties", {}).values():
        yield from _objects(value, schemas, seen)
    if "items" in schema:
        yield from _objects(schema["items"], schemas, seen)


def test_every_answer_requires_every_field_it_describes(doc):
    schemas = doc["components"]["schemas"]
    checked = 0
    for method, path, op in operations(doc):
        for code, answer in op["responses"].items():
            for media in answer.get("content", {}).values():  # 204: no body
                for obj in _objects(media["schema"], schemas):
                    assert set(obj.get("required", [])) == set(obj["properties"]), (
                        method, path, code, sorted(set(obj["properties"]) -
                                                   set(obj.get("required", []))))
                    checked += 1
    assert checked > 50


def test_each_operation_documents_what_it_can_answer(doc):
    for method, path, op in operations(doc):
        codes = set(op["responses"])
        assert "405" in codes, (method, path)   # another method on its path
        if "{id}" in path:
            assert "404" in codes, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "422"} <= codes, (method, path)
        if op.get("security"):
            assert "401" in codes, (method, path)
    assert "404" in doc["paths"]["/listings"]["post"]["responses"]     # another coop_id
    assert "404" in doc["paths"]["/pools/{id}/orders"]["post"]["responses"]
    assert "422" in doc["paths"]["/orders"]["get"]["responses"]
    assert "429" in doc["paths"]["/auth/tokens"]["post"]["responses"]


def test_a_405_is_json_and_names_the_methods_the_path_takes(client):
    response = client.delete("/api/v1/crops")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
    response = client.put("/api/v1/listings")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_the_guide_names_the_filters_values_the_document_declares(doc):
    """docs/api.md and the document say the same of `?status=` and `?rail=`."""
    from pathlib import Path
    guide = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    sentence = " ".join(guide[guide.index("Filters:"):].split("another value is 422")[0].split())
    status, rail = sentence.split(";")[:2]
    assert re.findall(r"`(\w+)`", status.split("one of")[1]) == _param(
        doc, "get", "/pools", "status")["schema"]["enum"]
    assert re.findall(r"`(\w+)`", rail.split("one of")[1]) == _param(
        doc, "get", "/payout-batches/{id}/export.csv", "rail")["schema"]["enum"]
