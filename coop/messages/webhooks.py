"""Delivery reports: POST /messages/status/<provider>, where an SMS provider tells us that a
message was sent, delivered or failed. Signed by the provider (checked by its adapter
against the public URL it was given), so no CSRF token applies."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, request

from ..common import web
from .providers import provider as provider_named

bp = Blueprint("messages_status", __name__)
# The provider signs each report (checked below); a browser form's CSRF token cannot apply.
bp.csrf_exempt = True


def public_url() -> str:
    """The URL the provider was told to call and signed: PUBLIC_BASE_URL and the path (behind
    a proxy request.url may name another host or scheme)."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or request.host_url).rstrip("/")
    query = request.query_string.decode()
    return base + request.path + (f"?{query}" if query else "")


@bp.post("/messages/status/<provider>")
@web.unit_of_work
def status(provider):
    """404 for a provider Minga has no adapter for; 403 for a missing or wrong signature;
    400 for a report naming no message; else the report is recorded (a report about a
    message we do not know, or one repeated, changes nothing) and answered 204."""
    adapter = provider_named(provider)
    if adapter is None:
        abort(404)
    signature = request.headers.get(adapter.signature_header)
    if not adapter.verify_callback(public_url(), request.form, signature):
        abort(403)
    provider_id, reported, error = adapter.parse_callback(request.form)
    if not provider_id or not reported:
        abort(400)
    from . import services  # the sending side, which imports the channels
    services.record_delivery(adapter.name, provider_id, reported, error)
    return "", 204
