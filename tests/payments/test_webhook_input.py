"""A signed webhook event of any shape is a clear 4xx or recorded and ignored, never a 500;
a timestamp from the future is refused like a stale one (coop/payments/gateway.py)."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from sqlalchemy import func, select

from coop.extensions import db
from coop.payments import gateway
from coop.payments.models import StripeEvent

SECRET = "whsec_input_test_secret"


@pytest.fixture
def webhook_secret(app, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_WEBHOOK_SECRET", SECRET)
    return SECRET


def _headers(payload: bytes, timestamp=None):
    timestamp = int(time.time() if timestamp is None else timestamp)
    sig = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + payload,
                   hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={sig}", "Content-Type": "application/json"}


def _event(event_id="evt_in_1", kind="payment_intent.canceled", object_id="pi_1"):
    return json.dumps({"id": event_id, "object": "event", "type": kind,
                       "data": {"object": {"id": object_id, "object": "payment_intent"}}}
                      ).encode()


def _events() -> int:
    return db.session.scalar(select(func.count()).select_from(StripeEvent))


@pytest.mark.parametrize("body", [
    _event(event_id="evt_\x00nul"),
    _event(event_id="evt_\x01ctl"),
    _event(kind="payment_intent.\x00canceled"),
    _event(object_id="pi_\x00"),
    b'{"id": "evt_x", "type": "t", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"id": "evt_y", "type": "t", "data": {"object": {"description": "a\\u0000b"}}}',
], ids=["nul_in_id", "control_in_id", "nul_in_type", "nul_in_object", "nested_data", "nested_body",
        "nul_deep"])
def test_a_signed_event_with_nul_or_deep_nesting_is_a_4xx(client, webhook_secret, body):
    response = client.post("/stripe/webhook", data=body, headers=_headers(body))
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    assert response.json["error"]["code"] in ("invalid_signature", "invalid_event")
    assert _events() == 0


def test_a_timestamp_in_the_future_is_refused_like_a_stale_one(client, webhook_secret):
    body = _event()
    for stamp in (time.time() + 3600, time.time() - 3600):
        response = client.post("/stripe/webhook", data=body, headers=_headers(body, stamp))
        assert response.status_code == 400
        assert "tolerance" in response.json["error"]["message"]
    # A clock a little ahead (within the 5 minutes' tolerance) is no reason to refuse.
    response = client.post("/stripe/webhook", data=body,
                           headers=_headers(body, time.time() + 60))
    assert response.status_code == 200
    assert _events() == 1


def test_verify_webhook_refuses_the_future_and_deep_nesting():
    body = _event()
    sig = _headers(body, time.time() + 301)["Stripe-Signature"]
    with pytest.raises(gateway.WebhookInvalid):
        gateway.verify_webhook(body, sig, SECRET, tolerance=300)
    deep = b"[" * 50_000 + b"]" * 50_000
    with pytest.raises(gateway.WebhookInvalid):
        gateway.verify_webhook(deep, _headers(deep)["Stripe-Signature"], SECRET)
