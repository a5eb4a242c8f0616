"""The lots in the API (issue 13): GET /api/v1/lots (the caller's: the lots its buyer bought
into, or its coops' lots for a manager or treasurer), GET /api/v1/lots/{id}, the EUDR pack
(GET /lots/{id}/eudr.geojson, /lots/{id}/eudr.json: the stored bytes, the same every time)
and PUT /lots/{id}/dds-reference (the buyer's DDS reference number). Another coop's or
another buyer's lot is 404. Thin calls to coop/lots/eudr.py."""
from __future__ import annotations

from flask import Response, g, jsonify
from sqlalchemy import select

from ..api.blueprint import bp
from ..api.common import error, json_body, page_args, paged, token_required
from ..api.openapi import KG, register
from ..catalog.models import Crop
from ..common.quantities import format_kg
from ..extensions import db
from . import eudr, services
from .models import EUDR_HS_HEADINGS


def _crops(lots) -> dict[int, str]:
    ids = {lot.crop_id for lot in lots}
    return dict(db.session.execute(select(Crop.id, Crop.slug).where(Crop.id.in_(ids)))
                .tuples().all()) if ids else {}


def summary_json(lot, crop_slug: str) -> dict:
    return {"id": lot.id, "code": lot.code, "coop_id": lot.coop_id, "pool_id": lot.pool_id,
            "crop": crop_slug, "eudr": bool(lot.eudr),
            "hs_heading": EUDR_HS_HEADINGS.get(crop_slug) if lot.eudr else None,
            "created_at": lot.created_at.isoformat()}


def _missing_json(items) -> list[dict]:
    return [{"code": m.code, "plot_id": m.plot_id if m.plot_id is not None else None,
             "text": m.text} for m in items]


def lot_json(audience) -> dict:
    detail, missing = eudr.status(audience)
    lot = audience.lot
    body = summary_json(lot, detail.crop_slug)
    period = detail.harvest_period
    refs = eudr.dds_references(lot.id)
    if not audience.is_coop:
        refs = [(r, org) for r, org in refs if r.buyer_id == audience.buyer_id]
    own = next((r.reference for r, _org in refs if r.buyer_id == audience.buyer_id), None) \
        if not audience.is_coop else None
    body.update({
        "net_kg": format_kg(eudr.net_g(audience, detail)),
        "lot_net_kg": format_kg(detail.net_g),
        "farmer_count": detail.farmer_count,
        "harvest_period": {"start": period[0].isoformat(), "end": period[1].isoformat()}
        if period else None,
        "eudr_ready": (not missing) if lot.eudr else None,
        "missing": _missing_json(missing),
        "dds_reference": own,
        "dds_references": [{"buyer_id": r.buyer_id, "organisation": org,
                            "reference": r.reference,
                            "recorded_at": r.recorded_at.isoformat()} for r, org in refs],
    })
    return body


@bp.get("/lots")
@token_required
def lots_list():
    limit, after = page_args()
    rows = eudr.lots_of(g.api_user, after, limit)
    crops = _crops(rows)
    return jsonify(paged(rows, limit, lambda lot: summary_json(lot, crops[lot.crop_id])))


@bp.get("/lots/<int:lot_id>")
@token_required
def lot_detail(lot_id):
    return jsonify(lot_json(eudr.audience_for(g.api_user, lot_id)))


def _pack(lot_id: int, fmt: str):
    try:
        pack = eudr.issue(g.api_user, lot_id, fmt)
    except eudr.Incomplete as exc:
        db.session.rollback()
        response, status = error(422, exc.code, exc.message, exc.fields)
        body = response.get_json()
        body["error"]["missing"] = _missing_json(exc.missing)
        return jsonify(body), status
    db.session.commit()
    lot = services.get_lot(lot_id)
    response = Response(pack.data, mimetype=eudr.MEDIA_TYPES[fmt].split(";")[0])
    response.headers["Content-Disposition"] = f'attachment; filename="{eudr.filename(lot, fmt)}"'
    response.headers["Digest"] = f"sha-256={pack.digest}"
    response.headers["ETag"] = f'"{pack.digest}"'
    return response


@bp.get("/lots/<int:lot_id>/eudr.geojson")
@token_required
def lot_geojson(lot_id):
    return _pack(lot_id, "geojson")


@bp.get("/lots/<int:lot_id>/eudr.json")
@token_required
def lot_pack_json(lot_id):
    return _pack(lot_id, "json")


@bp.put("/lots/<int:lot_id>/dds-reference")
@token_required
def put_dds_reference(lot_id):
    # Who may ask comes before what was asked: outsiders learn nothing from a bad body.
    eudr.audience_for(g.api_user, lot_id)
    data = json_body()
    replaces = data.get("replaces")
    if replaces is not None and not isinstance(replaces, str):
        replaces = None
    reference = data.get("reference")
    eudr.record_dds_reference(g.api_user, lot_id,
                              reference if isinstance(reference, str) else None,
                              replaces=replaces)
    db.session.commit()
    return jsonify(lot_json(eudr.audience_for(g.api_user, lot_id)))


def _geo_json_content(op: dict) -> None:
    op["responses"]["200"]["content"] = {"application/geo+json": {"schema": {
        "$ref": "#/components/schemas/EudrFeatureCollection"}}}
    _incomplete(op)


def _incomplete(op: dict) -> None:
    op["responses"]["422"]["description"] = (
        "`eudr_incomplete`: the lot is not EUDR-ready; `error.missing` lists why "
        "(LotMissing: code, plot_id, text) and `error.fields.missing` the texts")


_PERIOD = {"oneOf": [{"type": "null"}, {"type": "object", "required": ["start", "end"],
                                         "properties": {"start": {"type": "string",
                                                                  "format": "date"},
                                                        "end": {"type": "string",
                                                                "format": "date"}}}]}
_SUMMARY_FIELDS = {
    "id": {"type": "integer"}, "code": {"type": "string", "examples": ["CO-7-2026-0001"]},
    "coop_id": {"type": "integer"}, "pool_id": {"type": "integer"},
    "crop": {"type": "string"},
    "eudr": {"type": "boolean", "description": "coffee or cocoa: the lot has an EUDR pack"},
    "hs_heading": {"type": ["string", "null"], "enum": ["0901", "1801", None]},
    "created_at": {"type": "string", "format": "date-time"}}
_MISSING = {"type": "object", "required": ["code", "plot_id", "text"], "properties": {
    "code": {"type": "string", "enum": sorted(set(services.plots.GAP_TEXT) | {"no_plot"})},
    "plot_id": {"type": ["integer", "null"]}, "text": {"type": "string"}}}

register({
    "LotSummary": {"type": "object", "required": list(_SUMMARY_FIELDS),
                   "properties": _SUMMARY_FIELDS},
    "LotMissing": _MISSING,
    "Lot": {"type": "object",
            "required": [*_SUMMARY_FIELDS, "net_kg", "lot_net_kg", "farmer_count",
                         "harvest_period", "eudr_ready", "missing", "dds_reference",
                         "dds_references"],
            "properties": {
        **_SUMMARY_FIELDS,
        "net_kg": {**KG, "description": "a buyer's share of the lot; the whole lot for its "
                                        "coop"},
        "lot_net_kg": KG, "farmer_count": {"type": "integer"},
        "harvest_period": _PERIOD,
        "eudr_ready": {"type": ["boolean", "null"],
                       "description": "null: a crop outside the regulation"},
        "missing": {"type": "array", "items": {"$ref": "#/components/schemas/LotMissing"}},
        "dds_reference": {"type": ["string", "null"],
                          "description": "the caller's buyer's DDS reference number"},
        "dds_references": {"type": "array", "items": {
            "type": "object", "required": ["buyer_id", "organisation", "reference",
                                           "recorded_at"],
            "properties": {"buyer_id": {"type": "integer"},
                           "organisation": {"type": "string"},
                           "reference": {"type": "string"},
                           "recorded_at": {"type": "string", "format": "date-time"}}}}}},
    "EudrFeatureCollection": {
        "type": "object", "required": ["type", "features"],
        "description": "RFC 7946 as TRACES takes it: WGS 84, positions [longitude, latitude] "
                       "with the decimals recorded (at least 6); one Feature per plot",
        "properties": {"type": {"const": "FeatureCollection"}, "features": {
            "type": "array", "items": {"type": "object",
                                       "required": ["type", "geometry", "properties"],
                                       "properties": {
                "type": {"const": "Feature"},
                "geometry": {"type": "object", "required": ["type", "coordinates"],
                             "properties": {"type": {"enum": ["Point", "Polygon",
                                                              "MultiPolygon"]},
                                            "coordinates": {"type": "array"}}},
                "properties": {"type": "object", "required": [
                    "ProducerName", "ProducerCountry", "ProductionPlace", "Area"],
                    "properties": {"ProducerName": {"type": "string"},
                                   "ProducerCountry": {"type": "string",
                                                       "pattern": "^[A-Z]{2}$"},
                                   "ProductionPlace": {"type": "string"},
                                   "Area": {"type": "number",
                                            "description": "hectares"}}}}}}}},
    "EudrPack": {"type": "object",
                 "required": ["format", "lot_id", "lot_code", "hs_heading",
                              "description_of_goods", "net_mass_kg", "lot_net_mass_kg",
                              "country_of_production", "production_period", "cooperative",
                              "buyer", "dds_reference", "producers", "plots"],
                 "properties": {
        "format": {"const": eudr.PACK_VERSION}, "lot_id": {"type": "integer"},
        "lot_code": {"type": "string"}, "hs_heading": {"enum": ["0901", "1801"]},
        "description_of_goods": {"type": "string"}, "net_mass_kg": KG, "lot_net_mass_kg": KG,
        "country_of_production": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "production_period": _PERIOD, "cooperative": {"type": "object"},
        "buyer": {"type": ["object", "null"]}, "dds_reference": {"type": ["string", "null"]},
        "producers": {"type": "array", "items": {"type": "object"}},
        "plots": {"type": "array", "items": {"type": "object"}}}},
    "DdsReferencePut": {"type": "object", "required": ["reference"], "properties": {
        "reference": {"type": "string", "minLength": 1, "maxLength": 80,
                      "examples": ["25COXRT3VGH7L9"]},
        "replaces": {"type": "string", "description": "to change a recorded reference: the "
                                                      "one recorded now"}}},
}, [
    ("get", "/lots", "The caller's lots: bought into (buyer) or of its coops (manager, "
     "treasurer)", True, None, {200: ("list", "LotSummary")}),
    ("get", "/lots/{id}", "A lot: its net mass (a buyer's share), harvest period, EUDR "
     "readiness and DDS references", True, None, {200: "Lot", 404: "Error"}),
    ("get", "/lots/{id}/eudr.geojson", "The lot's plots as the GeoJSON FeatureCollection "
     "TRACES takes (the bytes first issued)", True, None,
     {200: "EudrFeatureCollection", 404: "Error", 422: "Error"}),
    ("get", "/lots/{id}/eudr.json", "The lot's EUDR data pack (the bytes first issued)", True,
     None, {200: "EudrPack", 404: "Error", 422: "Error"}),
    ("put", "/lots/{id}/dds-reference", "Record the buyer's DDS reference number for the lot",
     True, "DdsReferencePut", {200: "Lot", 403: "Error", 404: "Error", 409: "Error"}),
], {("get", "/lots/{id}/eudr.geojson"): _geo_json_content,
    ("get", "/lots/{id}/eudr.json"): _incomplete})
