"""GET /api/v1/crops: the legal crops and their grades (api-v1.md)."""
from __future__ import annotations

from flask import jsonify

from ..api.blueprint import bp
from ..api.openapi import register
from ..common.transactions import reads_only
from . import services as catalog


@bp.get("/crops")
@reads_only
def crops():
    return jsonify(items=[{
        "slug": c.slug, "name": catalog.crop_name(c), "unit": "kg",
        "grades": [{"code": gr.code, "name": catalog.grade_name(gr)} for gr in c.grades],
    } for c in catalog.all_crops()])


register({"Crop": {"type": "object", "required": ["slug", "name", "unit", "grades"], "properties": {
    "slug": {"type": "string"}, "name": {"type": "string"}, "unit": {"const": "kg"},
    "grades": {"type": "array", "items": {"type": "object", "required": ["code", "name"],
                                          "properties": {
        "code": {"type": "string"}, "name": {"type": "string"}}}}}}},
    [("get", "/crops", "Legal crops and their grades", False, None, {200: ("items", "Crop")})])
