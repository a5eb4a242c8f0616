"""GET /api/v1/coops/{id}/ledger/trial-balance (treasurer, manager)."""
from flask import g, jsonify

from ..api.common import token_required
from ..api.openapi import MINOR, register
from ..api.blueprint import bp
from ..common.access import require_member
from ..cooperatives import services as coop_services
from . import services


@bp.get("/coops/<int:coop_id>/ledger/trial-balance")
@token_required
def trial_balance(coop_id):
    require_member(coop_id, "treasurer", "manager", user=g.api_user)
    tb = services.trial_balance(coop_services.get_coop(coop_id))
    return jsonify(currency=tb["currency"], debits_minor=tb["debits_minor"],
                   credits_minor=tb["credits_minor"], balanced=tb["balanced"],
                   accounts=[{"code": a.code, "name": a.name, "kind": a.kind,
                              "balance_minor": a.balance_minor,
                              "normal_balance_minor": a.normal_balance} for a in tb["accounts"]])


register({"TrialBalance": {"type": "object", "required": [
    "currency", "debits_minor", "credits_minor", "balanced", "accounts"], "properties": {
    "currency": {"type": "string"}, "debits_minor": MINOR, "credits_minor": MINOR,
    "balanced": {"type": "boolean"},
    "accounts": {"type": "array", "items": {"type": "object", "required": [
        "code", "name", "kind", "balance_minor", "normal_balance_minor"], "properties": {
        "code": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
        "balance_minor": {"description": "debits minus credits", **MINOR},
        "normal_balance_minor": {"description": "the balance on the account's normal side",
                                 **MINOR}}}}}}},
    [("get", "/coops/{id}/ledger/trial-balance", "Trial balance (treasurer, manager)", True,
      None, {200: "TrialBalance", 401: "Error", 403: "Error", 404: "Error"})])
