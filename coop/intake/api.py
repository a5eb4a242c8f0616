"""POST /api/v1/allocations/{id}/intake (manager) and GET /api/v1/intakes/{id} (the
statement): thin calls to coop.intake.services."""
from __future__ import annotations

from flask import g, jsonify

from ..api.common import idempotency_key, json_body, token_required
from ..api.openapi import KG, MINOR, register
from ..api.blueprint import bp
from ..common.quantities import format_kg
from ..common.statuses import RefundStatus, values
from . import services


def intake_json(intake) -> dict:
    return {"id": intake.id, "allocation_id": intake.allocation_id, "pool_id": intake.pool_id,
            "farmer_id": intake.farmer_user_id,
            "received_kg": format_kg(intake.received_g),
            "accepted_kg": format_kg(intake.accepted_g),
            "excess_kg": format_kg(intake.excess_g),
            "shortfall_kg": format_kg(intake.shortfall_g),
            "grade": intake.grade.code, "pool_grade": intake.pool.grade.code,
            "farmer_price_per_kg_minor": intake.farmer_price_per_kg_minor,
            "farmer_amount_minor": intake.farmer_amount_minor,
            "advance_minor": intake.advance_minor,
            "share_withholding_minor": intake.share_withholding_minor,
            "net_minor": intake.net_minor,
            "refund_minor": intake.refund_minor,
            "refunds": [{"id": r.id, "order_id": r.order_id, "amount_minor": r.amount_minor,
                         "status": r.status} for r in services.refunds_of(intake)],
            "currency": intake.currency, "recorded_at": intake.recorded_at.isoformat()}


@bp.post("/allocations/<int:allocation_id>/intake")
@token_required
def record_intake(allocation_id):
    key = idempotency_key()
    # Who may ask comes before what was asked: outsiders learn nothing from a bad body.
    services.managed_allocation(g.api_user, allocation_id)
    data = json_body()
    intake, created = services.record_intake(
        g.api_user, allocation_id, received_kg=data.get("received_kg"), grade=data.get("grade"),
        crop=data.get("crop"), not_delivered=data.get("not_delivered") is True,
        idempotency_key=key)
    response = jsonify(intake_json(intake))
    response.status_code = 201
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/intakes/<int:intake_id>")
@token_required
def get_intake(intake_id):
    return jsonify(intake_json(services.statement(g.api_user, intake_id)))


register({
    "IntakeCreate": {"type": "object", "required": ["received_kg", "grade"], "properties": {
        "received_kg": KG, "grade": {"type": "string"},
        "crop": {"type": "string", "description": "optional; must be the pool's crop"},
        "not_delivered": {"type": "boolean",
                          "description": "nothing delivered: received_kg empty or 0"}}},
    "Intake": {"type": "object",
               "required": ["id", "allocation_id", "received_kg", "grade",
                            "farmer_amount_minor", "currency", "pool_id", "farmer_id",
                            "accepted_kg", "excess_kg", "shortfall_kg", "pool_grade",
                            "farmer_price_per_kg_minor", "advance_minor",
                            "share_withholding_minor", "net_minor", "refund_minor", "refunds",
                            "recorded_at"],
               "properties": {
        "id": {"type": "integer"}, "allocation_id": {"type": "integer"},
        "pool_id": {"type": "integer"}, "farmer_id": {"type": "integer"},
        "received_kg": KG, "accepted_kg": KG, "excess_kg": KG, "shortfall_kg": KG,
        "grade": {"type": "string"}, "pool_grade": {"type": "string"},
        "farmer_price_per_kg_minor": MINOR, "farmer_amount_minor": MINOR,
        "advance_minor": MINOR, "share_withholding_minor": MINOR, "net_minor": MINOR,
        "refund_minor": MINOR,
        "refunds": {"type": "array", "items": {"type": "object", "required": [
            "id", "order_id", "amount_minor", "status"], "properties": {
            "id": {"type": "integer"}, "order_id": {"type": "integer"},
            "amount_minor": MINOR,
            "status": {"type": "string", "enum": values(RefundStatus)}}}},
        "currency": {"type": "string"},
        "recorded_at": {"type": "string", "format": "date-time"}}},
}, [
    ("post", "/allocations/{id}/intake",
     "Record a delivery against an allocation (manager; Idempotency-Key accepted)", True,
     "IntakeCreate", {201: "Intake", 403: "Error", 404: "Error", 409: "Error", 422: "Error"}),
    ("get", "/intakes/{id}", "A delivery's settlement statement (its farmer, the coop's "
     "manager or treasurer)", True, None, {200: "Intake", 404: "Error"}),
])
