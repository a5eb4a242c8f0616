"""POST /stripe/webhook: signed Stripe events keep orders in step with Stripe."""
from flask import Blueprint, current_app, jsonify, request

from ..extensions import db
from . import gateway, webhooks

bp = Blueprint("payments", __name__)
# Stripe signs its webhooks (checked below); a browser form's CSRF token cannot apply.
bp.csrf_exempt = True


@bp.post("/stripe/webhook")
def webhook():
    """Refuses unsigned, tampered or stale events (400); applies each event id once."""
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        return jsonify(error={"code": "webhook_not_configured",
                              "message": "STRIPE_WEBHOOK_SECRET is not set.", "fields": {}}), 503
    try:
        event = gateway.verify_webhook(request.get_data(), request.headers.get("Stripe-Signature"),
                                       secret)
    except gateway.WebhookInvalid as exc:
        return jsonify(error={"code": "invalid_signature", "message": str(exc),
                              "fields": {}}), 400
    outcome = webhooks.apply_event(event)
    db.session.commit()
    return jsonify(received=True, outcome=outcome)
