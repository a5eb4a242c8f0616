"""GET /api/v1/plots and /api/v1/plots/{id}: a farmer's own plots, or (with ?coop_id) the
plots of a coop the caller manages, with their geometry as stored (RFC 7946, [longitude,
latitude], the decimals it was given: the JSON text is the stored text, never re-encoded
through floats), the declared and computed areas and what the EUDR still needs. Another
coop's plot, or another farmer's, is 404."""
from __future__ import annotations

import json

from flask import Response, g, request
from flask_babel import gettext as _
from sqlalchemy import select

from ..api.blueprint import bp
from ..api.common import page_args, paged, token_required
from ..api.openapi import ID, query_parameter, register
from ..common.access import require_member, roles_in
from ..common.errors import NotFound, ValidationFailed
from ..common.ids import is_id
from ..cooperatives.models import FarmerProfile
from ..extensions import db
from . import services
from .models import Plot, PlotVersion


def _hectares(m2):
    if m2 is None:
        return None
    whole, rest = divmod(int(m2), 10_000)
    return f"{whole}.{rest:04d}"


def _item(plot, coop_id, member_number, version, consented):
    missing = services.eudr_gaps(version, consented)
    return {"id": plot.id, "coop_id": coop_id, "farmer_id": plot.farmer_id,
            "member_number": member_number, "name": plot.name,
            "declared_area_ha": _hectares(plot.area_m2),
            "computed_area_ha": _hectares(version.computed_area_m2 if version else None),
            "geometry": (version.geometry_json if version else None),
            "geometry_source": version.geometry_source if version else None,
            "version": version.version if version else None,
            "eudr": {"complete": not missing, "missing": missing}}


def _json(body) -> Response:
    """The body as JSON, each item's geometry written as its stored RFC 7946 text."""
    raw = []

    def hold(item):
        if item.get("geometry") is not None:
            raw.append(item["geometry"])
            item = dict(item, geometry=f"\u0000geometry{len(raw) - 1}\u0000")
        return item
    if "items" in body:
        body = dict(body, items=[hold(i) for i in body["items"]])
    else:
        body = hold(body)
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    for n, geometry in enumerate(raw):
        text = text.replace(json.dumps(f"\u0000geometry{n}\u0000"), geometry, 1)
    return Response(text, mimetype="application/json")


def _rows(stmt):
    return db.session.execute(stmt).all()


def _select():
    return (select(Plot, FarmerProfile.coop_id, FarmerProfile.member_number, PlotVersion)
            .join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
            .outerjoin(PlotVersion, PlotVersion.id == Plot.current_version_id))


@bp.get("/plots")
@token_required
def plots():
    limit, after = page_args()
    raw = request.args.get("coop_id")
    stmt = _select()
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and is_id(int(raw))):
            raise ValidationFailed(_("coop_id must be a cooperative's id."),
                                   fields={"coop_id": [_("Must be an integer.")]})
        require_member(int(raw), "manager", user=g.api_user)
        stmt = stmt.where(FarmerProfile.coop_id == int(raw))
    else:
        stmt = stmt.where(FarmerProfile.user_id == g.api_user.id)
    if after is not None:
        stmt = stmt.where(Plot.id > after)
    rows = _rows(stmt.order_by(Plot.id).limit(limit + 1))
    consents = services.consents_of(row.Plot.farmer_id for row in rows)
    return _json(paged(rows, limit, lambda row: _item(
        row.Plot, row.coop_id, row.member_number, row.PlotVersion,
        row.Plot.farmer_id in consents), key=lambda row: row.Plot.id))


@bp.get("/plots/<int:plot_id>")
@token_required
def plot(plot_id):
    row = db.session.execute(_select().where(Plot.id == plot_id)).first()
    if row is None:
        raise NotFound(_("No such plot."))
    owner = db.session.scalar(select(FarmerProfile.user_id).where(
        FarmerProfile.id == row.Plot.farmer_id))
    if owner != g.api_user.id and "manager" not in roles_in(g.api_user, row.coop_id):
        raise NotFound(_("No such plot."))
    consented = services.current_consent(row.Plot.farmer_id) is not None
    return _json(_item(row.Plot, row.coop_id, row.member_number, row.PlotVersion, consented))


GEOMETRY = {"oneOf": [
    {"type": "null"},
    {"type": "object", "required": ["type", "coordinates"], "properties": {
        "type": {"type": "string", "enum": ["Point", "Polygon", "MultiPolygon"]},
        "coordinates": {"type": "array"}}}],
    "description": "RFC 7946, WGS 84, positions [longitude, latitude] with the decimals "
                   "they were recorded with (at least 6)"}
HECTARES = {"type": "string", "pattern": r"^\d+\.\d{4}$", "examples": ["1.2300"]}
GAP_CODES = list(services.GAP_TEXT)

register({
    "Plot": {"type": "object",
             "required": ["id", "coop_id", "farmer_id", "member_number", "name",
                          "declared_area_ha", "computed_area_ha", "geometry",
                          "geometry_source", "version", "eudr"],
             "properties": {
        "id": {"type": "integer"}, "coop_id": {"type": "integer"},
        "farmer_id": {"type": "integer", "description": "the farmer's member profile"},
        "member_number": {"type": "string"}, "name": {"type": "string"},
        "declared_area_ha": HECTARES,
        "computed_area_ha": {"oneOf": [{"type": "null"}, HECTARES],
                             "description": "geodesic area of the polygon; null for a point"},
        "geometry": GEOMETRY,
        "geometry_source": {"type": ["string", "null"],
                            "enum": ["typed", "geojson", "kml", "gps_point", "gps_walk",
                                     None]},
        "version": {"type": ["integer", "null"],
                    "description": "the plot's current version (null: never recorded)"},
        "eudr": {"type": "object", "required": ["complete", "missing"], "properties": {
            "complete": {"type": "boolean"},
            "missing": {"type": "array", "items": {"type": "string", "enum": GAP_CODES}}}}}},
}, [
    ("get", "/plots", "Plots: the caller's own, or with coop_id those of a coop the caller "
     "manages", True, None, {200: ("list", "Plot"), 403: "Error", 404: "Error"}),
    ("get", "/plots/{id}", "A plot with its geometry and what the EUDR still needs", True,
     None, {200: "Plot", 404: "Error"}),
], {("get", "/plots"): query_parameter(
    "coop_id", dict(ID), "a coop the caller manages: its plots (else the caller's own)")})
