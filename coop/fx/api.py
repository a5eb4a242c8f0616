"""GET /api/v1/fx-rates: the newest day's exchange rates (indicative only: Minga charges and
invoices in the coop's currency)."""
from __future__ import annotations

from flask import jsonify

from ..api.blueprint import bp
from ..api.common import token_required
from ..api.openapi import register
from . import services


def rate_json(row) -> dict:
    return {"day": row.day.isoformat(), "base": row.base, "quote": row.quote,
            "rate": row.rate}


@bp.get("/fx-rates")
@token_required
def fx_rates():
    return jsonify(items=[rate_json(r) for r in services.latest()],
                   max_age_days=services.max_age_days())


register({"FxRate": {"type": "object", "required": ["day", "base", "quote", "rate"],
                     "properties": {
    "day": {"type": "string", "format": "date"},
    "base": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "quote": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "rate": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$",
             "description": "1 base = rate quote, an exact decimal"}}}},
    [("get", "/fx-rates", "The newest day's exchange rates (indicative amounts only)", True,
      None, {200: ("items", "FxRate"), 401: "Error"})])
