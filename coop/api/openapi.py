"""The OpenAPI 3.1 description of /api/v1, built from one table of paths and schemas."""
from __future__ import annotations

from flask import jsonify

from ..common.ids import MAX_ID
from .blueprint import bp

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
    "TokenInfo": {"type": "object", "required": ["id", "created_at", "expires_at", "current"],
                  "properties": {"id": {"type": "integer"},
                                 "created_at": {"type": "string", "format": "date-time"},
                                 "expires_at": {"type": "string", "format": "date-time"},
                                 "current": {"type": "boolean"}}},
    "Token": {"type": "object", "required": ["token", "user"],
              "properties": {"token": {"type": "string"},
                                               "user": {"$ref": "#/components/schemas/User"}}},
}

# (method, path, summary, auth, request schema, {status: response schema or None})
PATHS: list[tuple] = [
    ("get", "/openapi.json", "This document", False, None, {200: None}),
    ("post", "/auth/tokens", "Get a bearer token", False, "TokenRequest",
     {201: "Token", 401: "Error", 422: "Error", 429: "Error"}),
    ("get", "/auth/tokens", "The caller's live API tokens", True, None,
     {200: {"type": "object", "required": ["items"], "properties": {
         "items": {"type": "array", "items": {"$ref": "#/components/schemas/TokenInfo"}}}}}),
    ("delete", "/auth/tokens/current", "Revoke the token of this request (log out)", True,
     None, {204: None}),
    ("delete", "/auth/tokens/{id}", "Revoke one of the caller's tokens", True, None,
     {204: None, 404: "Error"}),
]


# (method, path) -> a function that adds to the operation what the table cannot say
EXTRAS: dict[tuple[str, str], object] = {}


def register(schemas: dict, paths: list, extras: dict | None = None) -> None:
    """Each domain's api.py adds its schemas and paths here (create_app imports them all)."""
    SCHEMAS.update(schemas)
    PATHS.extend(paths)
    EXTRAS.update(extras or {})


ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
CURSOR = {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,16}$",
          "description": "the `next_cursor` of the page before; anything else is 422"}


def _ref(spec):
    if spec is None:
        return {"type": "object"}
    if isinstance(spec, tuple):
        kind, name = spec
        items = {"type": "array", "items": {"$ref": f"#/components/schemas/{name}"}}
        if kind == "items":  # the whole list, never paged
            return {"type": "object", "required": ["items"], "properties": {"items": items}}
        return {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": items, "next_cursor": {"type": ["string", "null"]}}}
    if isinstance(spec, dict):
        return spec
    return {"$ref": f"#/components/schemas/{spec}"}


def _paged(responses: dict) -> bool:
    """A list answered a page at a time (?limit= and ?cursor=), as ("list", schema)."""
    spec = responses.get(200)
    return isinstance(spec, tuple) and spec[0] == "list"


# What each status answers when an operation does not say (its description in the document).
DESCRIPTIONS = {
    400: "malformed JSON", 401: "no valid bearer token", 402: "payment declined",
    403: "not allowed for this role", 404: "no such object, or another cooperative's",
    405: "a method this path does not take (the Allow header lists those it takes)",
    409: "a state conflict", 413: "the body is too large",
    422: "a value refused (`fields` names it)", 429: "too many attempts; see Retry-After",
}


def document() -> dict:
    paths: dict = {}
    for method, path, summary, auth, body, responses in PATHS:
        responses = dict(responses)
        # What every endpoint of its kind can answer: bad JSON or values, a body too large,
        # no token, an id that is no object of the caller's, a bad page, another method.
        if body:
            for code in (400, 413, 422):
                responses.setdefault(code, "Error")
        if auth:
            responses.setdefault(401, "Error")
        if "{id}" in path:
            responses.setdefault(404, "Error")
        if _paged(responses):
            responses.setdefault(422, "Error")
        responses.setdefault(405, "Error")
        responses = dict(sorted(responses.items()))

        def content(code, schema):
            # A CSV answer (a bank file) is text/csv; everything else is JSON.
            if code < 300 and path.endswith(".csv"):
                return {"text/csv": {"schema": {"type": "string"}}}
            # A document's file (an invoice's PDF or UBL XML) is its own media type.
            for suffix, media in ((".pdf", "application/pdf"), (".xml", "application/xml")):
                if code < 300 and path.endswith(suffix):
                    return {media: {"schema": {"type": "string"}}}
            return {"application/json": {"schema": _ref(schema)}}

        op = {"summary": summary, "responses": {
            str(code): {"description": summary if code < 300 else DESCRIPTIONS.get(code,
                                                                                   "error"),
                        # 204 No Content has no body to describe
                        **({} if code == 204 else {"content": content(code, schema)})}
            for code, schema in responses.items()}}
        params = []
        if "{id}" in path:
            params.append({"name": "id", "in": "path", "required": True, "schema": dict(ID)})
        if method == "get" and _paged(responses):
            params += [{"name": "limit", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                       {"name": "cursor", "in": "query", "schema": dict(CURSOR)}]
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
    for (method, path), extra in EXTRAS.items():
        extra(paths[path][method])
    return {"openapi": "3.1.0",
            "info": {"title": "Minga API", "version": "1"},
            "servers": [{"url": "/api/v1"}],
            "paths": paths,
            "components": {"schemas": SCHEMAS, "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "browserSession": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
                                   "description": "The logged-in browser session (cookie) "
                                                  "with its CSRF token in this header"}}}}


def query_parameter(name: str, schema: dict, description: str = ""):
    """An EXTRAS function adding a query parameter (a filter such as ?status=) to an
    operation."""
    def add(op: dict) -> None:
        param = {"name": name, "in": "query", "schema": schema}
        if description:
            param["description"] = description
        op.setdefault("parameters", []).append(param)
    return add


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
