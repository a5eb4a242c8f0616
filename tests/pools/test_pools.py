"""Pools and orders through the real gateway against the local Stripe sandbox."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from coop.common.errors import Conflict, PaymentDeclined, ValidationFailed
from coop.common.models import utcnow
from coop.extensions import db
from coop.listings import services as listing_services
from coop.listings.models import Listing
from coop.payments import gateway
from coop.pools import closing, services as pools
from coop.payments.models import StripeEvent
from coop.pools.models import Allocation, Order, Pool
from coop.pricing import services as pricing
from tests.support.settle import cancel_and_settle, close_and_settle, settle_now

pytestmark = pytest.mark.usefixtures("stripe_clean")
VISA, DECLINE = "pm_card_visa", "pm_card_chargeCustomerFail"


def _order(m, pool, kg, buyer=0, pm=VISA, key=None):
    return pools.place_order(m.buyers[buyer], pool.id, quantity_kg=kg, payment_method=pm,
                             idempotency_key=key)[0]


def _committed(pool_id):
    db.session.expire_all()
    return db.session.get(Pool, pool_id).committed_g


def test_opening_refuses_more_than_the_free_supply(market):
    with pytest.raises(ValidationFailed) as err:
        market.open_pool(max_kg="600.001")
    assert err.value.code == "insufficient_supply"
    market.open_pool(max_kg="400")
    with pytest.raises(ValidationFailed):  # 400 of 600 kg already reserved by the first pool
        market.open_pool(max_kg="200.001", min_kg="1")
    assert db.session.scalar(select(func.count()).select_from(Pool)) == 1


def test_join_holds_quantity_times_the_highest_tier_price(market):
    pool = market.open_pool()
    order = _order(market, pool, "120.5")
    highest = pricing.highest(pool.price).buyer
    assert order.status == "authorized"
    assert order.amount_authorized_minor == pricing.amount_for(highest, 120_500)
    hold = gateway.retrieve(order.payment_intent_id)
    assert (hold.status, hold.amount) == ("requires_capture", order.amount_authorized_minor)
    assert _committed(pool.id) == 120_500


def test_a_declined_card_commits_nothing(market):
    pool = market.open_pool()
    with pytest.raises(PaymentDeclined):
        _order(market, pool, "50", pm=DECLINE)
    assert _committed(pool.id) == 0
    assert db.session.scalar(select(func.count()).select_from(Order)
                             .where(Order.status.in_(["authorized", "pending"]))) == 0


def test_never_more_than_max(market):
    pool = market.open_pool(max_kg="150")
    _order(market, pool, "100")
    with pytest.raises(Conflict) as err:
        _order(market, pool, "50.001", buyer=1)
    assert err.value.code == "pool_full"
    _order(market, pool, "50", buyer=1)
    assert _committed(pool.id) == 150_000


def test_a_closed_pool_takes_no_orders(market):
    pool = market.open_pool()
    cancel_and_settle(pool.id)
    with pytest.raises(Conflict) as err:
        _order(market, pool, "1")
    assert err.value.code == "pool_closed"


def test_change_adjusts_the_hold_and_withdraw_releases_it(market):
    pool = market.open_pool()
    order = _order(market, pool, "100")
    first_intent = order.payment_intent_id
    pools.change_order(market.buyers[0], order.id, quantity_kg="150")
    assert _committed(pool.id) == 150_000
    order = db.session.get(Order, order.id)
    assert gateway.retrieve(first_intent).status == "canceled"
    assert gateway.retrieve(order.payment_intent_id).amount == order.amount_authorized_minor
    pools.change_order(market.buyers[0], order.id, quantity_kg="80")
    assert _committed(pool.id) == 80_000
    pools.withdraw_order(market.buyers[0], order.id)
    assert _committed(pool.id) == 0
    order = db.session.get(Order, order.id)
    assert order.status == "released"
    assert gateway.retrieve(order.payment_intent_id).status == "canceled"
    pools.withdraw_order(market.buyers[0], order.id)  # twice: no change, no error
    assert _committed(pool.id) == 0


def test_another_buyers_order_is_not_found(market):
    pool = market.open_pool()
    order = _order(market, pool, "10")
    from coop.common.errors import NotFound
    with pytest.raises(NotFound):
        pools.withdraw_order(market.buyers[1], order.id)
    with pytest.raises(NotFound):
        pools.change_order(market.buyers[1], order.id, quantity_kg="1")


def test_farmer_cannot_withdraw_supply_an_open_pool_needs(market):
    market.open_pool(max_kg="500", min_kg="100")
    from coop.common.errors import Conflict as C
    with pytest.raises(C) as err:  # 600 listed, 500 reserved: the 300 kg listing is needed
        listing_services.withdraw_listing(market.farmers[2], market.listings[2].id)
    assert err.value.code == "listing_committed"
    db.session.rollback()
    listing_services.withdraw_listing(market.farmers[0], market.listings[0].id)  # 100 is free
    db.session.commit()


def test_confirmed_pool_allocates_pro_rata_and_captures_at_the_tier_reached(market):
    pool = market.open_pool(min_kg="100", max_kg="500")
    a = _order(market, pool, "250")
    b = _order(market, pool, "200.001", buyer=1)
    closed = close_and_settle(pool.id)
    assert closed.status == "confirmed"
    allocations = {x.listing_id: x.quantity_g for x in pools.pool_allocations(pool.id)}
    total = 450_001
    assert sum(allocations.values()) == total == closed.allocated_g
    # 100:200:300 listed -> 75000.1666, 150000.333, 225000.5 -> largest remainder
    assert allocations == {market.listings[0].id: 75_000, market.listings[1].id: 150_000,
                           market.listings[2].id: 225_001}
    tier_price = pricing.breakdown(pool.price, total).buyer
    assert tier_price < pricing.highest(pool.price).buyer  # 400 kg tier reached
    for order in (a, b):
        order = db.session.get(Order, order.id)
        assert order.status == "captured"
        assert order.amount_captured_minor == pricing.amount_for(tier_price, order.quantity_g)
        assert order.amount_captured_minor < order.amount_authorized_minor
        assert gateway.retrieve(order.payment_intent_id).status == "succeeded"
    listing = db.session.get(Listing, market.listings[2].id)
    assert listing.committed_g == 225_001 and listing.status == "committed"
    farmer_due = db.session.scalar(select(func.sum(Allocation.farmer_amount_minor)))
    assert farmer_due == sum(pricing.amount_for(2_800_000, g) for g in allocations.values())


def test_pool_below_min_fails_and_cancels_every_hold(market):
    pool = market.open_pool(min_kg="300", max_kg="500")
    orders = [_order(market, pool, "100"), _order(market, pool, "50", buyer=1)]
    closed = close_and_settle(pool.id)
    assert closed.status == "failed"
    assert db.session.scalar(select(func.count()).select_from(Allocation)) == 0
    for order in orders:
        assert db.session.get(Order, order.id).status == "cancelled"
        assert gateway.retrieve(order.payment_intent_id).status == "canceled"
    assert all(l.committed_g == 0 for l in db.session.scalars(select(Listing)))


def test_closing_twice_or_after_a_crash_never_captures_or_allocates_twice(market, monkeypatch):
    pool = market.open_pool(min_kg="100", max_kg="500")
    orders = [_order(market, pool, "100"), _order(market, pool, "150", buyer=1)]
    real_capture, calls = gateway.capture, []

    def crash_after_first(intent_id, amount, metadata=None):
        calls.append(intent_id)
        if len(calls) == 2:
            raise gateway.GatewayUnavailable("gateway_unavailable", "network down")
        return real_capture(intent_id, amount, metadata)

    monkeypatch.setattr(gateway, "capture", crash_after_first)
    # Closing answers at once: decided and allocated; the holds are the queue's work.
    closed = pools.close_pool(pool.id)
    assert closed.status == "confirmed" and closed.settled_at is None
    from coop.jobs.models import Job
    [job] = db.session.scalars(select(Job).where(Job.task == "pools.settle"))
    from coop.jobs import services as jobs
    # Stripe unreachable at the second hold: the first is recorded, the job tried again later.
    assert jobs.run(job.id).status == "pending"
    statuses = sorted(db.session.get(Order, o.id).status for o in orders)
    assert statuses == ["authorized", "captured"]
    monkeypatch.setattr(gateway, "capture", real_capture)
    allocations_before = db.session.scalar(select(func.count()).select_from(Allocation))
    again = pools.close_pool(pool.id)  # closing again: nothing decided twice, no job added
    assert again.status == "confirmed" and again.settled_at is None
    assert db.session.scalar(select(func.count()).select_from(Job)
                             .where(Job.task == "pools.settle")) == 1
    assert jobs.run(job.id, now=utcnow() + timedelta(hours=2)).status == "done"
    third = close_and_settle(pool.id)
    assert again.status == third.status == "confirmed"
    assert db.session.scalar(select(func.count()).select_from(Allocation)) == allocations_before
    assert sum(db.session.get(Listing, l.id).committed_g for l in market.listings) == 250_000
    for order in orders:
        order = db.session.get(Order, order.id)
        assert order.status == "captured"
        assert gateway.retrieve(order.payment_intent_id).status == "succeeded"
    assert third.settled_at is not None
    assert len(calls) == 2  # the rerun took only the second hold


def test_close_due_closes_only_pools_past_their_time(market, app):
    due = market.open_pool(min_kg="10", max_kg="100")
    later = market.open_pool(min_kg="10", max_kg="100", days=5)
    _order(market, due, "20")
    result = pools.close_due(now=utcnow() + timedelta(days=3, minutes=1))
    assert (due.id, "confirmed") in result
    settle_now()
    db.session.expire_all()
    assert db.session.get(Pool, later.id).status == "open"
    assert (later.id, "open") not in result and len(result) == 1
    runner = app.test_cli_runner()
    out = runner.invoke(args=["pools", "close-due"])
    assert out.exit_code == 0 and "no pool due" in out.output
    assert db.session.get(Pool, due.id).status == "confirmed"


def test_not_due_pool_is_not_closed_by_cron(market):
    pool = market.open_pool()
    assert pools.close_due() == []
    with pytest.raises(Conflict):
        closing._decide(pool.id, utcnow(), on_demand=False)
    assert db.session.get(Pool, pool.id).status == "open"


def test_idempotency_key_on_order_creation(market):
    pool = market.open_pool()
    first = _order(market, pool, "10", key="k-1")
    again = _order(market, pool, "10", key="k-1")
    assert again.id == first.id and _committed(pool.id) == 10_000
    with pytest.raises(ValidationFailed) as err:
        _order(market, pool, "11", key="k-1")
    assert err.value.code == "idempotency_key_reused"
    assert db.session.scalar(select(func.count()).select_from(Order)) == 1


def _wait_for(predicate, timeout=8.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_webhooks_from_the_sandbox_are_verified_and_applied_once(market, stripe_webhooks_to_app):
    pool = market.open_pool(min_kg="10", max_kg="100")
    order = _order(market, pool, "20")
    close_and_settle(pool.id)
    assert _wait_for(lambda: db.session.scalar(select(func.count()).select_from(StripeEvent)
                                               .where(StripeEvent.object_id
                                                      == order.payment_intent_id)) > 0)
    assert db.session.get(Order, order.id).status == "captured"


def _signed(app, payload: bytes, timestamp=None, secret=None):
    import hashlib
    import hmac
    timestamp = int(timestamp or time.time())
    secret = secret or app.config["STRIPE_WEBHOOK_SECRET"]
    sig = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={sig}", "Content-Type": "application/json"}


def _event(event_id, kind, intent_id):
    import json
    return json.dumps({"id": event_id, "object": "event", "type": kind,
                       "data": {"object": {"id": intent_id, "object": "payment_intent"}}}).encode()


def test_webhook_refuses_unsigned_tampered_and_stale_events(market, client, app):
    pool = market.open_pool()
    order = _order(market, pool, "10")
    body = _event("evt_1", "payment_intent.canceled", order.payment_intent_id)
    assert client.post("/stripe/webhook", data=body).status_code == 400
    assert client.post("/stripe/webhook", data=body + b" ",
                       headers=_signed(app, body)).status_code == 400
    assert client.post("/stripe/webhook", data=body,
                       headers=_signed(app, body, timestamp=time.time() - 3600)).status_code == 400
    assert client.post("/stripe/webhook", data=body,
                       headers=_signed(app, body, secret="whsec_wrong")).status_code == 400
    assert db.session.get(Order, order.id).status == "authorized"
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == 0


def test_webhook_replayed_or_reordered_changes_nothing_twice(market, client, app):
    pool = market.open_pool(min_kg="1")
    order = _order(market, pool, "10")
    other = _order(market, pool, "5", buyer=1)
    body = _event("evt_c1", "payment_intent.canceled", order.payment_intent_id)
    first = client.post("/stripe/webhook", data=body, headers=_signed(app, body))
    assert first.json["outcome"] == "released" and _committed(pool.id) == 5_000
    replay = client.post("/stripe/webhook", data=body, headers=_signed(app, body))
    assert replay.json["outcome"] == "duplicate" and _committed(pool.id) == 5_000
    # A late payment_failed for an order already released changes nothing.
    late = _event("evt_c2", "payment_intent.payment_failed", order.payment_intent_id)
    assert client.post("/stripe/webhook", data=late,
                       headers=_signed(app, late)).json["outcome"].startswith("no_change")
    close_and_settle(pool.id)
    # canceled arriving after the capture never moves a captured order back
    stale = _event("evt_c3", "payment_intent.canceled", other.payment_intent_id)
    client.post("/stripe/webhook", data=stale, headers=_signed(app, stale))
    db.session.expire_all()
    assert db.session.get(Order, other.id).status == "captured"
    assert _committed(pool.id) == 5_000


def test_a_refusal_frees_the_idempotency_key_and_an_unknown_outcome_keeps_it(market,
                                                                            monkeypatch):
    pool = market.open_pool()
    real_hold = gateway.hold

    def refused(*args, **kwargs):  # Stripe's own answer that it did nothing
        raise gateway.PaymentError("rate_limited", "slow down", http_status=429)

    monkeypatch.setattr(gateway, "hold", refused)
    from coop.common.errors import DomainError
    with pytest.raises(DomainError) as err:
        _order(market, pool, "10", key="retry-me")
    assert err.value.status == 503 and err.value.code == "payment_unavailable"
    assert _committed(pool.id) == 0
    monkeypatch.setattr(gateway, "hold", real_hold)
    order = _order(market, pool, "10", key="retry-me")
    assert order.status == "authorized" and _committed(pool.id) == 10_000

    def down(*args, **kwargs):  # no answer: Stripe may have held the card
        raise gateway.GatewayUnavailable("gateway_unavailable", "network down")

    monkeypatch.setattr(gateway, "hold", down)
    with pytest.raises(DomainError) as err:
        _order(market, pool, "5", key="unknown-once")
    assert err.value.status == 503 and err.value.code == "payment_unknown"
    assert _committed(pool.id) == 15_000  # the grams stay reserved until it is settled
    monkeypatch.setattr(gateway, "hold", real_hold)
    with pytest.raises(DomainError) as err:  # a replay: still unknown, never a second hold
        _order(market, pool, "5", key="unknown-once")
    assert err.value.code == "payment_unknown"
    assert db.session.scalar(select(func.count()).select_from(Order)
                             .where(Order.idempotency_key == "unknown-once")) == 1
    # A decline, by contrast, is the answer for that key: replaying it declines again.
    with pytest.raises(PaymentDeclined):
        _order(market, pool, "5", pm=DECLINE, key="declined-once")
    with pytest.raises(PaymentDeclined):
        _order(market, pool, "5", pm=DECLINE, key="declined-once")


def test_a_webhook_body_that_is_not_an_event_is_refused(client, app, stripe_clean):
    body = b"[1]"
    response = client.post("/stripe/webhook", data=body, headers=_signed(app, body))
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_signature"


def test_a_late_decline_of_an_order_already_expired_frees_its_grams_once(market, monkeypatch):
    pool = market.open_pool()
    _order(market, pool, "20")
    real_hold = gateway.hold

    def slow_decline(amount, currency, pm, metadata, **kw):
        # While the card is being checked, closing expires the pending order as abandoned.
        order_id = int(metadata["order_id"])
        db.session.execute(Order.__table__.update().where(Order.id == order_id)
                           .values(status="failed"))
        db.session.execute(Pool.__table__.update().where(Pool.id == pool.id)
                           .values(committed_g=Pool.committed_g - 10_000))
        db.session.commit()
        raise gateway.CardDeclined("card_declined", "declined")

    monkeypatch.setattr(gateway, "hold", slow_decline)
    with pytest.raises(PaymentDeclined):
        _order(market, pool, "10", buyer=1)
    monkeypatch.setattr(gateway, "hold", real_hold)
    assert _committed(pool.id) == 20_000  # not 10,000: the grams went back once
