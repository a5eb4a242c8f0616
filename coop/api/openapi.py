"""The OpenAPI 3.1 description of /api/v1, built from one table of paths and schemas."""
from __future__ import annotations

from flask import jsonify

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
                        # 204 No Content has no body to describe
                        **({} if code == 204 else {"content": content(code, schema)})}
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


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
