"""API rows for pools and orders (api-v1.md): thin calls to coop.pools.services."""
from __future__ import annotations

from flask import current_app, g, jsonify, request, url_for
from flask_babel import gettext as _

from ..api.common import error, idempotency_key, json_body, page_args, paged, token_required
from ..api.openapi import ID, KG, MINOR, query_parameter, register
from ..api.blueprint import bp
from ..common.access import require_member
from ..common.errors import ValidationFailed
from ..common.quantities import format_kg
from ..common.statuses import OrderStatus, PoolStatus, values
from ..common.transactions import reads_only
from ..cooperatives import services as coop_services
from ..extensions import db
from . import cards, services


def pool_json(pool) -> dict:
    price = services.current_price(pool)
    return {"id": pool.id, "coop_id": pool.coop_id, "crop": pool.crop.slug,
            "grade": pool.grade.code, "status": pool.status,
            "min_kg": format_kg(pool.min_g), "max_kg": format_kg(pool.max_g),
            "committed_kg": format_kg(pool.committed_g),
            "price_per_kg_minor": pool.final_price_per_kg_minor or price.buyer,
            "farmer_price_per_kg_minor": price.farmer,
            "commission_per_kg_minor": price.commission,
            "premium_per_kg_minor": price.premium, "currency": pool.currency,
            "closes_at": pool.closes_at.isoformat(),
            "delivery_terms": pool.delivery_terms, "delivery_place": pool.delivery_place,
            "delivery_expected_on": (pool.delivery_expected_on.isoformat()
                                     if pool.delivery_expected_on else None),
            **_indicative_json(pool.final_price_per_kg_minor or price.buyer, pool.currency)}


def _indicative_json(price_minor: int, currency: str) -> dict:
    """The price in the caller's display currency (issue 14), for information only: the
    card is charged in `currency`. Nulls without a display currency or a fresh rate."""
    from ..fx import services as fx
    wanted = getattr(g.get("api_user"), "display_currency", None)
    found = fx.indicative(price_minor, currency, wanted) if wanted else None
    if found is None:
        return {"indicative_price_per_kg_minor": None, "indicative_currency": None,
                "fx_rate": None, "fx_rate_date": None}
    return {"indicative_price_per_kg_minor": found.amount_minor,
            "indicative_currency": found.currency,
            "fx_rate": format(found.rate.normalize(), "f"),
            "fx_rate_date": found.on.isoformat()}


def order_json(order, client_secret: str | None = None) -> dict:
    """An order; while it waits for its card (status authorizing), with the PaymentIntent's
    client_secret and the publishable key Stripe.js needs, where the caller has them."""
    waiting = bool(client_secret) and order.status == OrderStatus.AUTHORIZING
    return {"id": order.id, "pool_id": order.pool_id, "status": order.status,
            "quantity_kg": format_kg(order.quantity_g),
            "amount_authorized_minor": order.amount_authorized_minor,
            "amount_captured_minor": order.amount_captured_minor,
            "amount_refunded_minor": order.amount_refunded_minor, "currency": order.currency,
            "client_secret": client_secret if waiting else None,
            "stripe_publishable_key": (current_app.config.get("STRIPE_PUBLISHABLE_KEY") or None)
            if waiting else None}


def settlement_json(pool) -> dict:
    return {**services.settlement_progress(pool),
            "settled_at": pool.settled_at.isoformat() if pool.settled_at else None}


def close_json(pool) -> dict:
    return {"id": pool.id, "status": pool.status, "allocated_kg": format_kg(pool.allocated_g),
            "settlement": settlement_json(pool),
            "status_url": url_for("api.close_status", pool_id=pool.id),
            "orders": [{"id": o.id, "quantity_kg": format_kg(o.quantity_g),
                        "status": o.status, "amount_captured_minor": o.amount_captured_minor}
                       for o in services.pool_orders(pool.id)
                       if o.status in (OrderStatus.CAPTURED, OrderStatus.AUTHORIZED,
                                       OrderStatus.CANCELLED)],
            "allocations": [{"id": a.id, "listing_id": a.listing_id,
                             "farmer_id": a.farmer_user_id,
                             "quantity_kg": format_kg(a.quantity_g),
                             "farmer_amount_minor": a.farmer_amount_minor}
                            for a in services.pool_allocations(pool.id)]}


@bp.get("/pools")
@reads_only
@token_required
def list_pools():
    status = request.args.get("status")
    if status and status not in values(PoolStatus):
        raise ValidationFailed(_("Unknown status."), fields={"status": [_("Unknown status.")]})
    limit, after = page_args()
    return jsonify(paged(services.pools(status, limit=limit + 1, after_id=after), limit,
                         pool_json))


@bp.post("/pools")
@token_required
def create_pool():
    data = json_body()
    coop_id = data.get("coop_id")
    if not isinstance(coop_id, int) or isinstance(coop_id, bool):
        raise ValidationFailed(_("coop_id must be a whole number."),
                               fields={"coop_id": [_("Must be an integer.")]})
    require_member(coop_id, "manager", user=g.api_user)
    for name in ("crop", "grade", "closes_at"):
        if not isinstance(data.get(name), str):
            raise ValidationFailed(_("%(f)s is required and must be a string.", f=name),
                                   fields={name: [_("Required string.")]})
    pool = services.open_pool(coop_services.get_coop(coop_id), g.api_user, crop=data["crop"],
                              grade=data["grade"], min_kg=data.get("min_kg"),
                              max_kg=data.get("max_kg"), closes_at=data["closes_at"],
                              delivery_terms=data.get("delivery_terms"),
                              delivery_place=data.get("delivery_place"),
                              delivery_expected_on=data.get("delivery_expected_on"))
    db.session.commit()
    return jsonify(pool_json(pool)), 201


@bp.get("/pools/<int:pool_id>")
@reads_only
@token_required
def get_pool(pool_id):
    return jsonify(pool_json(services.get_pool(pool_id)))


@bp.post("/pools/<int:pool_id>/orders")
@token_required
def create_order(pool_id):
    key = idempotency_key()
    data = json_body()
    if not g.api_user.buyer_id:
        return error(403, "forbidden", _("Only buyers can order."))
    card_entry = data.get("card_entry", False)
    if not isinstance(card_entry, bool):
        raise ValidationFailed(_("card_entry must be true or false."),
                               fields={"card_entry": [_("Must be a boolean.")]})
    if card_entry and data.get("payment_method") is None:
        # Two steps: the client confirms the PaymentIntent with Stripe.js (3-D Secure), then
        # POST /orders/{id}/confirm, or the webhook, makes the order authorized.
        step, created = cards.place_card_order(g.api_user, pool_id,
                                               quantity_kg=data.get("quantity_kg"),
                                               idempotency_key=key)
        response = jsonify(order_json(step.order, step.client_secret))
        response.status_code = 201
        if not created:
            response.headers["Idempotent-Replayed"] = "true"
        return response
    order, created = services.place_order(g.api_user, pool_id,
                                          quantity_kg=data.get("quantity_kg"),
                                          payment_method=data.get("payment_method"),
                                          idempotency_key=key)
    response = jsonify(order_json(order))
    response.status_code = 201
    if not created:
        # A repeat gets the first answer again, status included; the header says it is a repeat.
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/orders")
@token_required
def list_orders():
    if not g.api_user.buyer_id:
        return error(403, "forbidden", _("Only buyers have orders."))
    limit, after = page_args()
    return jsonify(paged(services.buyer_orders(g.api_user, limit=limit + 1, after_id=after),
                         limit, order_json))


@bp.get("/orders/<int:order_id>")
@token_required
def get_order(order_id):
    return jsonify(order_json(services.own_order(g.api_user, order_id)))


@bp.post("/orders/<int:order_id>/confirm")
@token_required
def confirm_order(order_id):
    """The client finished Stripe.js: Minga checks the PaymentIntent with Stripe itself and
    answers the order (authorized only if the hold is in place; still authorizing, with its
    client_secret, if not yet)."""
    order = cards.confirm_card_order(order_id, user=g.api_user)
    secret = cards._step_of(order).client_secret if order.status == OrderStatus.AUTHORIZING \
        else None
    return jsonify(order_json(order, secret))


@bp.patch("/orders/<int:order_id>")
@token_required
def patch_order(order_id):
    data = json_body()
    order = services.change_order(g.api_user, order_id, quantity_kg=data.get("quantity_kg"))
    return jsonify(order_json(order))


@bp.delete("/orders/<int:order_id>")
@token_required
def delete_order(order_id):
    return jsonify(order_json(services.withdraw_order(g.api_user, order_id)))


def _close_answer(pool, status: int = 200):
    """The close's state: 202 while its holds are being settled (the status URL tells how
    far: poll it), 200 once every hold is captured or cancelled."""
    body = close_json(pool)
    settling = body["settlement"]["state"] == "settling"
    response = jsonify(body)
    response.status_code = 202 if settling else status
    if settling:
        response.headers["Location"] = body["status_url"]
        response.headers["Retry-After"] = "2"
    return response


@bp.post("/pools/<int:pool_id>/close")
@token_required
def close_pool(pool_id):
    pool = services.get_pool(pool_id)
    require_member(pool.coop_id, "manager", user=g.api_user)
    return _close_answer(services.close_pool(pool.id))


@bp.get("/pools/<int:pool_id>/close")
@token_required
def close_status(pool_id):
    pool = services.get_pool(pool_id)
    require_member(pool.coop_id, "manager", "treasurer", user=g.api_user)
    return _close_answer(pool)


_POOL = ("id", "coop_id", "crop", "grade", "status", "min_kg", "max_kg", "committed_kg",
         "price_per_kg_minor", "farmer_price_per_kg_minor", "commission_per_kg_minor",
         "premium_per_kg_minor", "currency", "closes_at", "delivery_terms", "delivery_place",
         "delivery_expected_on", "indicative_price_per_kg_minor", "indicative_currency",
         "fx_rate", "fx_rate_date")
_TERMS = {
    "delivery_terms": {"type": "string", "enum": ["EXW", "FCA"],
                       "description": "EXW: picked up at the coop's collection point; FCA: "
                                      "handed to a carrier or exporter at delivery_place"},
    "delivery_place": {"type": "string", "maxLength": 200,
                       "description": "where (required with FCA; with EXW, empty: the coop's "
                                      "collection point)"}}
_ORDER = ("id", "pool_id", "status", "quantity_kg", "amount_authorized_minor",
          "amount_captured_minor", "amount_refunded_minor", "currency", "client_secret",
          "stripe_publishable_key")

def _order_refusals(op: dict) -> None:
    """What the document says of an order's refusals beyond the table's (issue 14: a buyer
    without billing details)."""
    op["responses"]["422"]["description"] = (
        "a value refused (`fields` names it); `billing_details_required`: the buyer's "
        "organisation has not given its billing details (PUT /billing-details first), nothing "
        "reserved, no order written, nothing asked of Stripe; `idempotency_key_reused`")


register({
    "PoolCreate": {"type": "object", "required": ["coop_id", "crop", "grade", "min_kg", "max_kg",
                                                  "closes_at"], "properties": {
        "coop_id": ID, "crop": {"type": "string"}, "grade": {"type": "string"},
        "min_kg": KG, "max_kg": KG, "closes_at": {"type": "string", "format": "date-time"},
        "delivery_terms": {**_TERMS["delivery_terms"], "default": "EXW"},
        "delivery_place": _TERMS["delivery_place"],
        "delivery_expected_on": {"type": ["string", "null"], "format": "date",
                                 "description": "the day the lot is expected (not in the "
                                                "past)"}}},
    "Pool": {"type": "object", "required": list(_POOL), "properties": {
        "id": {"type": "integer"}, "coop_id": {"type": "integer"}, "crop": {"type": "string"},
        "grade": {"type": "string"},
        "status": {"type": "string", "enum": values(PoolStatus)},
        "min_kg": KG, "max_kg": KG, "committed_kg": KG, "price_per_kg_minor": MINOR,
        "farmer_price_per_kg_minor": MINOR, "commission_per_kg_minor": MINOR,
        "premium_per_kg_minor": MINOR, "currency": {"type": "string"},
        "closes_at": {"type": "string", "format": "date-time"}, **_TERMS,
        "delivery_expected_on": {"type": ["string", "null"], "format": "date"},
        "indicative_price_per_kg_minor": {
            "type": ["integer", "null"],
            "description": "price_per_kg_minor in the caller's display currency (GET/PATCH "
                           "/me display_currency), for information only: the card is "
                           "charged in `currency`; null without a rate at most "
                           "MINGA_FX_MAX_AGE_DAYS old"},
        "indicative_currency": {"type": ["string", "null"]},
        "fx_rate": {"type": ["string", "null"],
                    "description": "1 `currency` = fx_rate `indicative_currency` (exact "
                                   "decimal)"},
        "fx_rate_date": {"type": ["string", "null"], "format": "date"}}},
    "OrderCreate": {"type": "object", "required": ["quantity_kg"],
                    "description": "One step: payment_method (a Stripe PaymentMethod id), held "
                                   "at once. Two steps: card_entry true and no payment_method: "
                                   "the order answers status authorizing with a client_secret "
                                   "for Stripe.js (confirmCardPayment, 3-D Secure), then POST "
                                   "/orders/{id}/confirm; unconfirmed after "
                                   "CARD_AUTH_TIMEOUT_SECONDS it fails and the quantity returns.",
                    "properties": {"quantity_kg": KG, "payment_method": {"type": "string"},
                                   "card_entry": {"type": "boolean", "default": False}}},
    "OrderPatch": {"type": "object", "required": ["quantity_kg"],
                   "properties": {"quantity_kg": KG}},
    "Order": {"type": "object", "required": list(_ORDER), "properties": {
        "id": {"type": "integer"}, "pool_id": {"type": "integer"},
        "status": {"type": "string", "enum": values(OrderStatus)},
        "quantity_kg": KG, "amount_authorized_minor": MINOR, "amount_captured_minor": MINOR,
        "amount_refunded_minor": MINOR, "currency": {"type": "string"},
        "client_secret": {"type": ["string", "null"], "description": "while authorizing, in "
                          "the answers of POST /pools/{id}/orders and POST /orders/{id}/confirm: "
                          "the PaymentIntent's, for Stripe.js only (never log it); else null"},
        "stripe_publishable_key": {"type": ["string", "null"],
                                   "description": "with client_secret: the key Stripe.js needs"}}},
    "Settlement": {"type": "object", "required": ["state", "total", "done", "captured",
                                                  "cancelled", "failed", "settled_at"],
                   "description": "How far the capture or cancellation of the pool's card holds "
                                  "is: done of total (workers settle them after the close).",
                   "properties": {
        "state": {"type": "string", "enum": ["open", "settling", "settled"]},
        "total": {"type": "integer", "minimum": 0}, "done": {"type": "integer", "minimum": 0},
        "captured": {"type": "integer", "minimum": 0},
        "cancelled": {"type": "integer", "minimum": 0},
        "failed": {"type": "integer", "minimum": 0},
        "settled_at": {"type": ["string", "null"], "format": "date-time"}}},
    "CloseResult": {"type": "object", "required": ["id", "status", "allocated_kg", "orders",
                                                   "allocations", "settlement", "status_url"],
                    "properties": {
        "id": {"type": "integer"},
        "status": {"type": "string", "enum": values(PoolStatus)}, "allocated_kg": KG,
        "settlement": {"$ref": "#/components/schemas/Settlement"},
        "status_url": {"type": "string",
                       "description": "GET it for the close's state (also the Location of a "
                                      "202)"},
        "orders": {"type": "array", "items": {
            "type": "object", "required": ["id", "quantity_kg", "status",
                                           "amount_captured_minor"], "properties": {
                "id": {"type": "integer"}, "quantity_kg": KG,
                "status": {"type": "string", "enum": values(OrderStatus)},
                "amount_captured_minor": MINOR}}},
        "allocations": {"type": "array", "items": {
            "type": "object", "required": ["id", "listing_id", "farmer_id", "quantity_kg",
                                           "farmer_amount_minor"], "properties": {
                "id": {"type": "integer"}, "listing_id": {"type": "integer"},
                "farmer_id": {"type": "integer"}, "quantity_kg": KG,
                "farmer_amount_minor": MINOR}}}}},
}, [
    ("get", "/pools", "Pools (?status=open)", True, None,
     {200: ("list", "Pool"), 401: "Error", 422: "Error"}),
    ("post", "/pools", "Open a pool (manager)", True, "PoolCreate",
     {201: "Pool", 403: "Error", 404: "Error", 409: "Error", 422: "Error"}),
    ("get", "/pools/{id}", "One pool", True, None, {200: "Pool", 404: "Error"}),
    ("post", "/pools/{id}/orders", "Join a pool with a card hold (Idempotency-Key accepted)",
     True, "OrderCreate", {201: "Order", 402: "Error", 403: "Error", 404: "Error",
                           409: "Error", 422: "Error", 503: "Error"}),
    ("get", "/orders", "The buyer's orders", True, None,
     {200: ("list", "Order"), 403: "Error", 422: "Error"}),
    ("get", "/orders/{id}", "One of the buyer's orders", True, None, {200: "Order", 404: "Error"}),
    ("post", "/orders/{id}/confirm", "After Stripe.js: check the order's PaymentIntent with "
     "Stripe (authorized once it is held for the order's amount)", True, None,
     {200: "Order", 404: "Error", 503: "Error"}),
    ("patch", "/orders/{id}", "Change the quantity while the pool is open", True, "OrderPatch",
     {200: "Order", 402: "Error", 403: "Error", 404: "Error", 409: "Error"}),
    ("delete", "/orders/{id}", "Withdraw an order while the pool is open", True, None,
     {200: "Order", 403: "Error", 404: "Error", 409: "Error"}),
    ("post", "/pools/{id}/close", "Close a pool (manager): decided and allocated at once, 202 "
     "while its card holds are captured or cancelled by the workers (poll status_url), 200 "
     "once settled; closing twice returns the same",
     True, None, {200: "CloseResult", 202: "CloseResult", 403: "Error", 404: "Error",
                  409: "Error", 503: "Error"}),
    ("get", "/pools/{id}/close", "The close's state (manager, treasurer): 202 while settling, "
     "200 once settled or while open", True, None,
     {200: "CloseResult", 202: "CloseResult", 403: "Error", 404: "Error"}),
], {("post", "/pools/{id}/orders"): _order_refusals,
    ("get", "/pools"): query_parameter(
        "status", {"type": "string", "enum": values(PoolStatus)},
        "only the pools in this status; another value is 422"),
    ("get", "/orders"): query_parameter(
        "mine", {"type": "string", "enum": ["1"]},
        "accepted as the contract says; the list is always the caller's own orders")})
