"""Stripe's webhook events: each verified event is recorded once in the event log
(StripeEvent), then handed to the handler its domain registered for the kind of object it is
about. Payments knows no domain: create_app registers the handlers (`register_handler`), so
the webhook never imports the pools (nor any other domain) that react to an event."""
from __future__ import annotations

from typing import Callable

from flask import Flask, current_app
from sqlalchemy.exc import IntegrityError

from ..common.errors import ValidationFailed
from ..common.forms import has_control
from ..extensions import db
from .models import StripeEvent

# handler(event type, object id) -> the outcome to record ("captured", "unknown_intent", ...)
Handler = Callable[[str, str], str]


def register_handler(app: Flask, object_type: str, handler: Handler) -> None:
    """Send this app's events about objects of `object_type` ("payment_intent") to `handler`."""
    app.extensions.setdefault("stripe_webhook_handlers", {})[object_type] = handler


def apply_event(event: dict) -> str:
    """Apply a verified Stripe event once. A replayed event id changes nothing ("duplicate");
    an event about an object no domain handles, or of an odd shape, is recorded and ignored,
    never a 500. Refuses an event without an id (`invalid_event`). Flushes, never commits."""
    handlers: dict[str, Handler] = current_app.extensions.get("stripe_webhook_handlers", {})
    event_id, kind = event.get("id"), event.get("type", "")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    obj = obj if isinstance(obj, dict) else {}
    handler = handlers.get(obj.get("object")) if isinstance(obj.get("object"), str) else None
    object_id = obj.get("id") if handler is not None else None
    if not isinstance(object_id, str) or not object_id or len(object_id) > 255 \
            or has_control(object_id):
        object_id = None  # a signed event of an odd shape is recorded and ignored, never a 500
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255 \
            or has_control(event_id):
        raise ValidationFailed("event without id", code="invalid_event")
    if not isinstance(kind, str) or has_control(kind):
        kind = ""
    kind = kind[:80]
    if db.session.get(StripeEvent, event_id) is not None:
        return "duplicate"
    record = StripeEvent(id=event_id, type=kind, object_id=object_id)
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return "duplicate"
    outcome = handler(kind, object_id) if object_id is not None else "ignored"
    record.outcome = outcome
    db.session.flush()
    return outcome
