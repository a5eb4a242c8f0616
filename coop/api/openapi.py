"""The OpenAPI 3.1 description of /api/v1, built from one table of paths and schemas."""
from __future__ import annotations

from ..common.statuses import ListingStatus, values

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "fields"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                   "fields": {"type": "object",
                              "additionalProperties": {"type": "array",
                                                       "items": {"type": "string"}}}}}}}
KG = {"type": "string", "pattern": r"^\d+(\.\d{1,3})?$", "examples": ["120.500"]}
MINOR = {"type": "integer"}

SCHEMAS: dict[str, dict] = {
    "Error": ERROR,
    "Membership": {"type": "object", "required": ["coop_id", "role"],
                   "properties": {"coop_id": {"type": "integer"},
                                                    "role": {"type": "string",
                                                             "enum": ["farmer", "manager",
                                                                      "treasurer"]}}},
    "User": {"type": "object", "required": ["id", "email", "name", "memberships", "buyer_id"],
             "properties": {
        "id": {"type": "integer"}, "email": {"type": "string"}, "name": {"type": "string"},
        "memberships": {"type": "array", "items": {"$ref": "#/components/schemas/Membership"}},
        "buyer_id": {"type": ["integer", "null"]}}},
    "TokenRequest": {"type": "object", "required": ["email", "password"], "properties": {
        "email": {"type": "string"}, "password": {"type": "string"}}},
    "Token": {"type": "object", "required": ["token", "user"],
              "properties": {"token": {"type": "string"},
                                               "user": {"$ref": "#/components/schemas/User"}}},
    "Crop": {"type": "object", "required": ["slug", "name", "unit", "grades"], "properties": {
        "slug": {"type": "string"}, "name": {"type": "string"}, "unit": {"const": "kg"},
        "grades": {"type": "array", "items": {"type": "object", "required": ["code", "name"],
                                              "properties": {
            "code": {"type": "string"}, "name": {"type": "string"}}}}}},
    "Coop": {"type": "object", "required": ["id", "slug", "name", "country", "currency"],
             "properties": {
        "id": {"type": "integer"}, "slug": {"type": "string"}, "name": {"type": "string"},
        "country": {"type": "string"}, "currency": {"type": "string"},
        "region": {"type": "string"}}},
    "ListingCreate": {"type": "object", "required": ["crop", "grade", "quantity_kg",
                                                     "harvested_on"], "properties": {
        "crop": {"type": "string"}, "grade": {"type": "string"}, "quantity_kg": KG,
        "harvested_on": {"type": "string", "format": "date"},
        "collection_point": {"type": "string", "maxLength": 160},
        "notes": {"type": "string", "maxLength": 500}, "coop_id": {"type": "integer"}}},
    "ListingPatch": {"type": "object", "properties": {
        "grade": {"type": "string"}, "quantity_kg": KG,
        "harvested_on": {"type": "string", "format": "date"},
        "collection_point": {"type": "string"}, "notes": {"type": "string"}}},
    "Listing": {"type": "object", "required": ["id", "crop", "grade", "quantity_kg",
                                               "available_kg", "status", "harvested_on"],
                "properties": {
        "id": {"type": "integer"}, "coop_id": {"type": "integer"}, "crop": {"type": "string"},
        "grade": {"type": "string"}, "quantity_kg": KG, "available_kg": KG, "committed_kg": KG,
        "status": {"type": "string", "enum": values(ListingStatus)},
        "harvested_on": {"type": "string", "format": "date"},
        "collection_point": {"type": "string"}, "created_at": {"type": "string",
                                                                "format": "date-time"}}},
}

# (method, path, summary, auth, request schema, {status: response schema or None})
PATHS: list[tuple] = [
    ("get", "/openapi.json", "This document", False, None, {200: None}),
    ("post", "/auth/tokens", "Get a bearer token", False, "TokenRequest",
     {201: "Token", 401: "Error", 422: "Error", 429: "Error"}),
    ("get", "/crops", "Legal crops and their grades", False, None, {200: ("list", "Crop")}),
    ("get", "/coops", "Cooperatives", False, None, {200: ("list", "Coop")}),
    ("get", "/listings", "The farmer's harvest listings", True, None,
     {200: ("list", "Listing"), 401: "Error", 403: "Error"}),
    ("post", "/listings", "List a harvest (Idempotency-Key accepted)", True, "ListingCreate",
     {201: "Listing", 400: "Error", 401: "Error", 403: "Error", 422: "Error"}),
    ("get", "/listings/{id}", "One of the farmer's listings", True, None,
     {200: "Listing", 404: "Error"}),
    ("patch", "/listings/{id}", "Change a listing", True, "ListingPatch",
     {200: "Listing", 404: "Error", 409: "Error", 422: "Error"}),
    ("delete", "/listings/{id}", "Withdraw a listing", True, None,
     {200: "Listing", 404: "Error", 409: "Error"}),
]


def register(schemas: dict, paths: list) -> None:
    """Later domains add their schemas and paths here."""
    SCHEMAS.update(schemas)
    PATHS.extend(paths)


def _ref(spec):
    if spec is None:
        return {"type": "object"}
    if isinstance(spec, tuple):
        return {"type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{spec[1]}"}},
            "next_cursor": {"type": ["string", "null"]}}}
    if isinstance(spec, dict):
        return spec
    return {"$ref": f"#/components/schemas/{spec}"}


def document() -> dict:
    paths: dict = {}
    for method, path, summary, auth, body, responses in PATHS:
        responses = dict(responses)
        # What every endpoint of its kind can answer: bad JSON, no token, a rate limit.
        if body:
            responses.setdefault(400, "Error")
            responses.setdefault(422, "Error")
        if auth:
            responses.setdefault(401, "Error")
        def content(code, schema):
            # A CSV answer (a bank file) is text/csv; everything else is JSON.
            if code < 300 and path.endswith(".csv"):
                return {"text/csv": {"schema": {"type": "string"}}}
            return {"application/json": {"schema": _ref(schema)}}

        op = {"summary": summary, "responses": {
            str(code): {"description": summary if code < 300 else "error",
                        "content": content(code, schema)}
            for code, schema in responses.items()}}
        params = []
        if "{id}" in path:
            params.append({"name": "id", "in": "path", "required": True,
                           "schema": {"type": "integer"}})
        if method == "get" and responses.get(200) and isinstance(responses[200], tuple):
            params += [{"name": "limit", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                       {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
        if method in ("post", "patch") and "Idempotency" in summary:
            params.append({"name": "Idempotency-Key", "in": "header",
                           "schema": {"type": "string", "minLength": 1, "maxLength": 255}})
        if params:
            op["parameters"] = params
        if body:
            content_type = "text/csv" if body == "csv" else "application/json"
            schema = {"type": "string"} if body == "csv" else _ref(body)
            op["requestBody"] = {"required": True, "content": {content_type: {"schema": schema}}}
        if auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method] = op
    _listing_create_extras(paths["/listings"]["post"])
    return {"openapi": "3.1.0",
            "info": {"title": "Minga API", "version": "1"},
            "servers": [{"url": "/api/v1"}],
            "paths": paths,
            "components": {"schemas": SCHEMAS, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "browserSession": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                                   "description": "The logged-in browser session (cookie) "
                                                  "with its CSRF token in this header"}}}}


def _listing_create_extras(op: dict) -> None:
    """POST /listings also takes a multipart form with a photo (the offline outbox), and the
    browser session with its CSRF token instead of a bearer token."""
    form = {"type": "object", "required": ["crop", "grade", "quantity_kg", "harvested_on"],
            "properties": {**{k: {"type": "string"} for k in (
                "crop", "grade", "quantity_kg", "harvested_on", "collection_point", "notes",
                "coop_id")}, "photo": {"type": "string", "contentMediaType": "image/*"}}}
    op["requestBody"]["content"]["multipart/form-data"] = {"schema": form}
    op["responses"].setdefault("413", {"description": "error", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    op["security"] = [{"bearer": []}, {"browserSession": []}]
