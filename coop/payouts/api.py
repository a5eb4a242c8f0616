"""API rows for payables and payout batches (api-v1.md): thin calls to coop.payouts.services."""
from __future__ import annotations

from flask import Response, g, jsonify, request
from flask_babel import gettext as _

from ..api.common import idempotency_key, json_body, page_args, paged, token_required
from ..api.openapi import MINOR, query_parameter, register
from ..api.blueprint import bp
from ..common.errors import ValidationFailed
from ..common.idempotency import retry_on_unique_race
from ..common.statuses import PayoutBatchStatus, PayoutLineStatus, values
from ..cooperatives import services as coop_services
from ..cooperatives.models import PAYOUT_RAILS
from ..extensions import db
from . import services


def batch_json(batch) -> dict:
    return {"id": batch.id, "coop_id": batch.coop_id, "status": batch.status,
            "rail": batch.rail, "currency": batch.currency, "total_minor": batch.total_minor,
            "created_at": batch.created_at.isoformat(),
            "lines": [{"id": line.id, "farmer_id": line.farmer_user_id,
                       "amount_minor": line.amount_minor, "currency": line.currency,
                       "rail": line.rail, "status": line.status, "flag": line.flag,
                       "reference": line.reference} for line in batch.lines],
            "left_out": [{"farmer_id": x.farmer_user_id, "amount_minor": x.amount_minor,
                          "rail": x.rail, "reason": x.reason} for x in batch.exclusions]}


def _batch(batch_id):
    batch = services.get_batch(batch_id)
    services.require_treasurer(batch.coop_id, g.api_user)
    return batch


@bp.get("/coops/<int:coop_id>/payables")
@token_required
def payables(coop_id):
    services.require_treasurer(coop_id, g.api_user)
    coop = coop_services.get_coop(coop_id)
    limit, after = page_args()
    rows = services.payables_due(coop, limit=limit + 1, after_id=after)
    return jsonify(paged(rows, limit, lambda p: {
        "farmer_id": p.farmer_id, "name": p.name, "amount_due_minor": p.amount_due_minor,
        "currency": p.currency, "owed_minor": p.owed_minor,
        "in_batches_minor": p.in_batches_minor, "rail": p.rail}, key=lambda p: p.farmer_id))


@bp.post("/coops/<int:coop_id>/payout-batches")
@token_required
def create_batch(coop_id):
    services.require_treasurer(coop_id, g.api_user)
    key = idempotency_key()
    data = json_body() if request.get_data(cache=True).strip() else {}
    rail = data.get("rail")
    if rail is not None and not isinstance(rail, str):
        raise ValidationFailed(_("rail must be a string."), fields={"rail": [_("Must be a string.")]})
    coop = coop_services.get_coop(coop_id)
    batch, created = retry_on_unique_race(
        key, lambda: services.create_batch(coop, g.api_user, rail=rail, idempotency_key=key))
    response = jsonify(batch_json(batch))
    response.status_code = 201
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/payout-batches/<int:batch_id>")
@token_required
def get_batch(batch_id):
    return jsonify(batch_json(_batch(batch_id)))


@bp.get("/payout-batches/<int:batch_id>/export.csv")
@token_required
def export_batch(batch_id):
    batch = _batch(batch_id)
    rail = request.args.get("rail") or None
    body = services.export_csv(batch, g.api_user, rail=rail)
    db.session.commit()
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition":
            f'attachment; filename="minga-payouts-{batch.id}-{rail or "all"}.csv"'})


@bp.post("/payout-batches/<int:batch_id>/confirmations")
@token_required
def confirm_batch(batch_id):
    batch = _batch(batch_id)
    services.import_confirmations(batch, g.api_user, request.get_data(cache=False))
    db.session.commit()
    return jsonify(batch_json(services.get_batch(batch.id)))


_LINE = {"type": "object", "required": ["id", "farmer_id", "amount_minor", "rail", "status",
                                        "currency", "flag", "reference"],
         "properties": {"id": {"type": "integer"}, "farmer_id": {"type": "integer"},
                        "amount_minor": MINOR, "currency": {"type": "string"},
                        "rail": {"type": "string", "enum": list(PAYOUT_RAILS)},
                        "status": {"type": "string", "enum": values(PayoutLineStatus)},
                        "flag": {"type": "string"},
                        "reference": {"type": ["string", "null"]}}}

register({
    "Payable": {"type": "object", "required": ["farmer_id", "name", "amount_due_minor",
                                               "currency", "owed_minor", "in_batches_minor",
                                               "rail"], "properties": {
        "farmer_id": {"type": "integer"}, "name": {"type": "string"},
        "amount_due_minor": MINOR, "currency": {"type": "string"}, "owed_minor": MINOR,
        "in_batches_minor": MINOR, "rail": {"type": ["string", "null"]}}},
    "Payables": {"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Payable"}}}},
    "PayoutBatchCreate": {"type": "object", "properties": {
        "rail": {"type": "string", "enum": list(PAYOUT_RAILS)}}},
    "PayoutBatch": {"type": "object", "required": ["id", "status", "total_minor", "lines",
                                                   "coop_id", "rail", "currency", "created_at",
                                                   "left_out"],
                    "properties": {
        "id": {"type": "integer"}, "coop_id": {"type": "integer"},
        "status": {"type": "string", "enum": values(PayoutBatchStatus)},
        "rail": {"type": ["string", "null"]}, "currency": {"type": "string"},
        "total_minor": MINOR, "created_at": {"type": "string", "format": "date-time"},
        "lines": {"type": "array", "items": _LINE},
        "left_out": {"type": "array", "items": {"type": "object", "required": [
            "farmer_id", "amount_minor", "rail", "reason"], "properties": {
            "farmer_id": {"type": "integer"}, "amount_minor": MINOR,
            "rail": {"type": "string"}, "reason": {"type": "string"}}}}}},
}, [
    ("get", "/coops/{id}/payables", "What each farmer is owed (treasurer)", True, None,
     {200: ("list", "Payable"), 403: "Error", 404: "Error"}),
    ("post", "/coops/{id}/payout-batches",
     "Make a payout batch (treasurer; Idempotency-Key accepted)", True, "PayoutBatchCreate",
     {201: "PayoutBatch", 403: "Error", 404: "Error", 409: "Error"}),
    ("get", "/payout-batches/{id}", "One payout batch (treasurer)", True, None,
     {200: "PayoutBatch", 403: "Error", 404: "Error"}),
    ("get", "/payout-batches/{id}/export.csv",
     "The batch's bulk-payment file (?rail= for one rail's file)", True, None,
     {200: {"type": "string"}, 403: "Error", 404: "Error", 422: "Error"}),
    ("post", "/payout-batches/{id}/confirmations",
     "Import the bank's confirmation file (line_id,status,reference)", True, "csv",
     {200: "PayoutBatch", 403: "Error", 404: "Error", 422: "Error"}),
], {("get", "/payout-batches/{id}/export.csv"): query_parameter(
    "rail", {"type": "string", "enum": list(PAYOUT_RAILS)},
    "only this rail's lines, in its bank's or wallet's format; another value is 422")})
