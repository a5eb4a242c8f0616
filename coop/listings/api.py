"""/api/v1/listings: a farmer's harvest listings (api-v1.md), thin calls to
coop.listings.services."""
from __future__ import annotations

from flask import g, jsonify, request
from flask_babel import gettext as _

from ..api.blueprint import bp
from ..api.common import (error, idempotency_key, json_body, page_args, paged,
                          token_or_session_required, token_required)
from ..api.openapi import ID, KG, query_parameter, register
from ..common.access import is_farmer
from ..common.errors import ValidationFailed
from ..common.idempotency import retry_on_unique_race
from ..common.quantities import format_kg
from ..common.statuses import ListingStatus, values
from ..extensions import db
from . import services as listing_services


def listing_json(listing, plot_ids: list[int] | None = None) -> dict:
    if plot_ids is None:
        plot_ids = listing_services.plots_of([listing.id])[listing.id]
    return {"id": listing.id, "coop_id": listing.coop_id, "crop": listing.crop.slug,
            "grade": listing.grade.code, "quantity_kg": format_kg(listing.quantity_g),
            "available_kg": format_kg(listing.available_g),
            "committed_kg": format_kg(listing.committed_g), "status": listing.status,
            "harvested_on": listing.harvested_on.isoformat(),
            "collection_point": listing.collection_point, "plot_ids": list(plot_ids),
            "created_at": listing.created_at.isoformat()}


def _require_farmer_role():
    if not is_farmer(g.api_user):
        return error(403, "forbidden", _("Only farmer members have listings."))
    return None


@bp.get("/listings")
@token_required
def list_listings():
    refused = _require_farmer_role()
    if refused:
        return refused
    limit, after = page_args()
    rows = listing_services.farmer_listings(g.api_user, limit=limit + 1, after_id=after)
    plots = listing_services.plots_of([r.id for r in rows])
    return jsonify(paged(rows, limit, lambda r: listing_json(r, plots[r.id])))


def _listing_body() -> tuple[dict, bytes | None]:
    """The new listing's fields: a JSON object, or a multipart form (the offline outbox sends
    the harvest and its photo in one request, so both are stored or neither)."""
    if request.mimetype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return json_body(), None
    data = {k: v for k, v in request.form.items()}
    if "plot_ids" in request.form:
        # Repeated fields (the form's checkboxes); one empty value: none chosen.
        data["plot_ids"] = [v for v in request.form.getlist("plot_ids") if v.strip()]
    if data.get("coop_id"):
        coop_id = data["coop_id"].strip()
        if not coop_id.isdigit():
            raise ValidationFailed(_("coop_id must be a whole number."),
                                   fields={"coop_id": [_("Must be an integer.")]})
        data["coop_id"] = int(coop_id)
    else:
        data.pop("coop_id", None)
    if not request.headers.get("Authorization") and data.get("quantity_kg", "").strip():
        # The farmer's own page (the outbox, by session): kilograms as the farmer typed them,
        # in the page's locale ("150,5" in es_CO). Token clients keep machine format.
        from ..common.numbers import NumberInputError, parse_number
        try:
            data["quantity_kg"] = parse_number(data["quantity_kg"])
        except NumberInputError as exc:
            message = f'{_("Give kilograms as a number.")} {exc.message}'
            raise ValidationFailed(message, fields={"quantity_kg": [message]})
    upload = request.files.get("photo")
    photo = upload.read() if upload is not None and upload.filename else None
    return data, photo or None


@bp.post("/listings")
@token_or_session_required
def create_listing():
    refused = _require_farmer_role()
    if refused:
        return refused
    key = idempotency_key()
    data, photo = _listing_body()
    coop_id = data.get("coop_id")
    if coop_id is not None and (not isinstance(coop_id, int) or isinstance(coop_id, bool)):
        raise ValidationFailed(_("coop_id must be a whole number."),
                               fields={"coop_id": [_("Must be an integer.")]})
    for name in ("crop", "grade", "harvested_on"):
        if not isinstance(data.get(name), str):
            raise ValidationFailed(_("%(f)s is required and must be a string.", f=name),
                                   fields={name: [_("Required string.")]})
    for name in ("collection_point", "notes"):
        if data.get(name) is not None and not isinstance(data.get(name), str):
            raise ValidationFailed(_("%(f)s must be a string.", f=name),
                                   fields={name: [_("Must be a string.")]})
    fields = dict(crop=data["crop"], grade=data["grade"], quantity_kg=data.get("quantity_kg"),
                  harvested_on=data["harvested_on"],
                  collection_point=data.get("collection_point") or "",
                  notes=data.get("notes") or "", coop_id=coop_id, idempotency_key=key,
                  photo=photo, plot_ids=data.get("plot_ids"))
    listing, created = retry_on_unique_race(
        key, lambda: listing_services.create_listing(g.api_user, **fields))
    response = jsonify(listing_json(listing))
    response.status_code = 201
    if not created:
        # A repeat gets the first answer again, status included; the header says it is a repeat.
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.route("/listings/<int:listing_id>", methods=["GET"])
@token_required
def get_listing(listing_id):
    return jsonify(listing_json(listing_services.own_listing(g.api_user, listing_id)))


@bp.route("/listings/<int:listing_id>", methods=["PATCH"])
@token_required
def patch_listing(listing_id):
    data = json_body()
    allowed = {"quantity_kg", "harvested_on", "collection_point", "notes", "grade", "plot_ids"}
    unknown = set(data) - allowed
    if unknown:
        raise ValidationFailed(_("These fields cannot be changed: %(f)s", f=", ".join(
            sorted(unknown))), fields={k: [_("Not editable.")] for k in unknown})
    for name in ("harvested_on", "collection_point", "notes", "grade"):
        if name in data and not isinstance(data[name], str):
            raise ValidationFailed(_("%(f)s must be a string.", f=name),
                                   fields={name: [_("Must be a string.")]})
    listing = listing_services.update_listing(g.api_user, listing_id, **data)
    db.session.commit()
    return jsonify(listing_json(listing))


@bp.route("/listings/<int:listing_id>", methods=["DELETE"])
@token_required
def delete_listing(listing_id):
    listing = listing_services.withdraw_listing(g.api_user, listing_id)
    db.session.commit()
    return jsonify(listing_json(listing))


def _listing_create_extras(op: dict) -> None:
    """POST /listings also takes a multipart form with a photo (the offline outbox), and the
    browser session with its CSRF token instead of a bearer token."""
    form = {"type": "object", "required": ["crop", "grade", "quantity_kg", "harvested_on"],
            "properties": {**{k: {"type": "string"} for k in (
                "crop", "grade", "quantity_kg", "harvested_on", "collection_point", "notes",
                "coop_id")}, "plot_ids": {"type": "array", "items": {"type": "string"}},
                "photo": {"type": "string", "contentMediaType": "image/*"}}}
    op["requestBody"]["content"]["multipart/form-data"] = {"schema": form}
    op["security"] = [{"bearer": []}, {"browserSession": []}]


# The plots a harvest came from (the farmer's own): required for coffee and cacao; absent on
# create, a farmer with one plot gets it.
PLOT_IDS = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
            "description": "ids of the farmer's own plots the harvest came from (required for "
                           "coffee and cacao; absent: the farmer's only plot, if one)"}

register({
    "ListingCreate": {"type": "object", "required": ["crop", "grade", "quantity_kg",
                                                     "harvested_on"], "properties": {
        "crop": {"type": "string"}, "grade": {"type": "string"}, "quantity_kg": KG,
        "harvested_on": {"type": "string", "format": "date"},
        "collection_point": {"type": "string", "maxLength": 160},
        "notes": {"type": "string", "maxLength": 500}, "coop_id": ID, "plot_ids": PLOT_IDS}},
    "ListingPatch": {"type": "object", "properties": {
        "grade": {"type": "string"}, "quantity_kg": KG,
        "harvested_on": {"type": "string", "format": "date"},
        "collection_point": {"type": "string"}, "notes": {"type": "string"},
        "plot_ids": PLOT_IDS}},
    "Listing": {"type": "object", "required": ["id", "crop", "grade", "quantity_kg",
                                               "available_kg", "status", "harvested_on",
                                               "coop_id", "committed_kg", "collection_point",
                                               "plot_ids", "created_at"],
                "properties": {
        "id": {"type": "integer"}, "coop_id": {"type": "integer"}, "crop": {"type": "string"},
        "grade": {"type": "string"}, "quantity_kg": KG, "available_kg": KG, "committed_kg": KG,
        "status": {"type": "string", "enum": values(ListingStatus)},
        "harvested_on": {"type": "string", "format": "date"},
        "collection_point": {"type": "string"}, "plot_ids": PLOT_IDS,
        "created_at": {"type": "string", "format": "date-time"}}},
}, [
    ("get", "/listings", "The farmer's harvest listings", True, None,
     {200: ("list", "Listing"), 401: "Error", 403: "Error", 422: "Error"}),
    ("post", "/listings", "List a harvest (Idempotency-Key accepted)", True, "ListingCreate",
     {201: "Listing", 400: "Error", 401: "Error", 403: "Error", 404: "Error", 422: "Error"}),
    ("get", "/listings/{id}", "One of the farmer's listings", True, None,
     {200: "Listing", 404: "Error"}),
    ("patch", "/listings/{id}", "Change a listing", True, "ListingPatch",
     {200: "Listing", 404: "Error", 409: "Error", 422: "Error"}),
    ("delete", "/listings/{id}", "Withdraw a listing", True, None,
     {200: "Listing", 404: "Error", 409: "Error"}),
], {("post", "/listings"): _listing_create_extras,
    ("get", "/listings"): query_parameter(
        "mine", {"type": "string", "enum": ["1"]},
        "accepted as the contract says; the list is always the caller's own listings")})
