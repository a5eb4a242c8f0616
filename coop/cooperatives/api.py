"""GET /api/v1/coops: the cooperatives (api-v1.md)."""
from __future__ import annotations

from flask import jsonify

from ..api.blueprint import bp
from ..api.openapi import register
from . import services as coop_services


@bp.get("/coops")
def coops():
    return jsonify(items=[{"id": c.id, "slug": c.slug, "name": c.name, "country": c.country,
                           "currency": c.currency, "region": c.region}
                          for c in coop_services.list_coops()])


register({"Coop": {"type": "object",
                   "required": ["id", "slug", "name", "country", "currency", "region"],
                   "properties": {
    "id": {"type": "integer"}, "slug": {"type": "string"}, "name": {"type": "string"},
    "country": {"type": "string"}, "currency": {"type": "string"},
    "region": {"type": "string"}}}},
    [("get", "/coops", "Cooperatives", False, None, {200: ("items", "Coop")})])
