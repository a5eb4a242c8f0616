"""Card entry with Stripe.js and 3-D Secure (issue 14 part 1), against the real sandbox: the
order waits for its card (authorizing) and is authorized only once Minga has seen the hold at
Stripe itself, once, whoever asks first (the page's return, the webhook's job, the expiry job);
an abandoned one gives its grams back and its PaymentIntent is cancelled; saved cards."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from coop.common.models import utcnow
from coop.common.errors import Conflict, NotFound, PaymentDeclined
from coop.extensions import db
from coop.ledger.models import LedgerEntry
from coop.payments import cards as saved_cards, gateway
from coop.payments.models import StripeCustomer, StripeEvent
from coop.pools import cards, services as pools
from coop.pools.models import Order, Pool
from tests.support.cards import (CHARGE_FAILS, DECLINED, PK, THREE_DS, VISA_NUMBER,
                                 authenticate, confirm_setup)


@pytest.fixture
def card_app(app, stripe_clean):
    saved = {k: app.config.get(k) for k in ("STRIPE_PUBLISHABLE_KEY", "CARD_AUTH_TIMEOUT_SECONDS")}
    app.config.update(STRIPE_PUBLISHABLE_KEY=PK, CARD_AUTH_TIMEOUT_SECONDS=900)
    try:
        yield stripe_clean
    finally:
        app.config.update(saved)


@pytest.fixture
def pool(market, card_app):
    return market.open_pool(min_kg="100", max_kg="500")


def _committed(pool_id) -> int:
    db.session.expire_all()
    return db.session.get(Pool, pool_id).committed_g


def _order(order_id) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


def _intent(intent_id) -> gateway.Hold:
    return gateway.retrieve(intent_id)


def _start(market, pool, kg="100", buyer=0, key=None):
    step, created = cards.place_card_order(market.buyers[buyer], pool.id, quantity_kg=kg,
                                           idempotency_key=key)
    return step


def _typed(market, pool, number, *, buyer=0, kg="100", save=False, accept_3ds=True,
           sandbox=None):
    """Step 1, the card page, the stand-in's confirmCardSetup and the page's setup POST."""
    step = _start(market, pool, kg=kg, buyer=buyer)
    page = cards.card_page(market.buyers[buyer], step.order.id)
    result = confirm_setup(sandbox.api_base, page.setup_secret, number, accept_3ds=accept_3ds)
    return step, page, result


def _holds(order_id) -> int:
    return db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.source_type == "order", LedgerEntry.source_id == order_id))


def test_the_order_waits_for_its_card_and_holds_nothing_until_stripe_says_so(market, pool,
                                                                             card_app):
    step = _start(market, pool)
    order = step.order
    assert order.status == "authorizing" and step.client_secret.startswith(order.payment_intent_id)
    assert _committed(pool.id) == 100_000           # the grams are reserved meanwhile
    assert _intent(order.payment_intent_id).status == "requires_payment_method"
    # The page's return before the card was confirmed: Stripe says nothing is held.
    assert cards.confirm_card_order(order.id, user=market.buyers[0]).status == "authorizing"
    assert _holds(order.id) == 0
    page = cards.card_page(market.buyers[0], order.id)
    assert page.setup_secret and not page.needs_action
    assert confirm_setup(card_app.api_base, page.setup_secret, VISA_NUMBER)["status"] == "succeeded"
    done = cards.use_setup_card(market.buyers[0], order.id)
    assert done.order.status == "authorized" and done.client_secret is None
    held = _intent(order.payment_intent_id)
    assert held.status == "requires_capture" and held.amount == order.amount_authorized_minor
    assert _order(order.id).payment_method == held.payment_method
    assert _holds(order.id) == 1
    # Once: the return, again, and the webhook's job change nothing more.
    cards.confirm_card_order(order.id, user=market.buyers[0])
    cards.confirm_card_order(order.id)
    assert _holds(order.id) == 1 and _committed(pool.id) == 100_000


def test_3ds_accepted_then_authorized_refused_then_nothing_held(market, pool, card_app):
    step, page, result = _typed(market, pool, THREE_DS, sandbox=card_app)
    assert result["status"] == "succeeded"
    asked = cards.use_setup_card(market.buyers[0], step.order.id)
    assert asked.order.status == "authorizing" and asked.client_secret
    assert _intent(step.order.payment_intent_id).status == "requires_action"
    assert cards.confirm_card_order(step.order.id).status == "authorizing"  # not yet
    authenticate(card_app.api_base, asked.client_secret, True)
    assert cards.confirm_card_order(step.order.id, user=market.buyers[0]).status == "authorized"

    other, _page, _r = _typed(market, pool, THREE_DS, buyer=1, sandbox=card_app)
    asked = cards.use_setup_card(market.buyers[1], other.order.id)
    authenticate(card_app.api_base, asked.client_secret, False)
    assert _committed(pool.id) == 200_000
    ended = cards.abandon_card_order(market.buyers[1], other.order.id, refused=True)
    assert ended.status == "failed"
    assert _committed(pool.id) == 100_000                       # back in the pool
    assert _intent(other.order.payment_intent_id).status == "canceled"
    assert _holds(other.order.id) == 0


def test_a_declined_card_keeps_the_order_waiting_for_another(market, pool, card_app):
    step, page, result = _typed(market, pool, DECLINED, sandbox=card_app)
    assert result["error"]["code"] == "card_declined"
    with pytest.raises(Conflict):
        cards.use_setup_card(market.buyers[0], step.order.id)
    assert _order(step.order.id).status == "authorizing"
    # Another card on the same page goes through.
    assert confirm_setup(card_app.api_base, page.setup_secret, VISA_NUMBER)["status"] == "succeeded"
    assert cards.use_setup_card(market.buyers[0], step.order.id).order.status == "authorized"


def test_a_hold_for_another_amount_is_not_the_order_s(market, pool, card_app):
    step = _start(market, pool)
    client = gateway._v1()
    client.payment_intents.update(step.order.payment_intent_id, params={"amount": 100})
    pm = client.payment_methods.create(params={"type": "card", "card": {
        "number": VISA_NUMBER, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    gateway.confirm_card(step.order.payment_intent_id, pm["id"])
    assert _intent(step.order.payment_intent_id).status == "requires_capture"
    order = cards.confirm_card_order(step.order.id, user=market.buyers[0])
    assert order.status == "failed" and _committed(pool.id) == 0
    assert _intent(step.order.payment_intent_id).status == "canceled"


def test_another_buyer_cannot_see_or_confirm_the_order(market, pool, card_app):
    step = _start(market, pool)
    for call in (lambda u: cards.card_page(u, step.order.id),
                 lambda u: cards.use_setup_card(u, step.order.id),
                 lambda u: cards.confirm_card_order(step.order.id, user=u),
                 lambda u: cards.abandon_card_order(u, step.order.id)):
        with pytest.raises(NotFound):
            call(market.buyers[1])
    assert _order(step.order.id).status == "authorizing"


def _signed(app, event: dict) -> tuple[bytes, dict]:
    payload = json.dumps(event).encode()
    stamp = int(time.time())
    sig = hmac.new(app.config["STRIPE_WEBHOOK_SECRET"].encode(), f"{stamp}.".encode() + payload,
                   hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={stamp},v1={sig}",
                     "Content-Type": "application/json"}


def test_the_webhook_authorizes_once_after_checking_with_stripe(app, client, market, pool,
                                                                card_app):
    step, page, _r = _typed(market, pool, THREE_DS, sandbox=card_app)
    asked = cards.use_setup_card(market.buyers[0], step.order.id)
    intent_id = step.order.payment_intent_id
    event = {"id": "evt_card_1", "object": "event",
             "type": "payment_intent.amount_capturable_updated",
             "data": {"object": {"id": intent_id, "object": "payment_intent",
                                 "status": "requires_capture"}}}
    # An event claiming a hold that is not there: checked with Stripe, nothing changes.
    payload, headers = _signed(app, event)
    assert client.post("/stripe/webhook", data=payload, headers=headers).status_code == 200
    assert _order(step.order.id).status == "authorizing"
    authenticate(card_app.api_base, asked.client_secret, True)
    for n, kind in enumerate(("payment_intent.amount_capturable_updated",
                              "payment_intent.succeeded")):
        payload, headers = _signed(app, {**event, "id": f"evt_card_{n + 2}", "type": kind})
        answer = client.post("/stripe/webhook", data=payload, headers=headers)
        assert answer.json["outcome"] in ("card_check", "no_change:authorized"), answer.json
    assert _order(step.order.id).status == "authorized"
    assert _holds(step.order.id) == 1
    # The page's return afterwards changes nothing.
    assert cards.confirm_card_order(step.order.id, user=market.buyers[0]).status == "authorized"
    assert _holds(step.order.id) == 1


def test_what_the_sandbox_delivers_for_a_card_that_fails_leaves_the_order_waiting(
        market, pool, stripe_webhooks_to_app, app):
    """localstripe sends no event when a manual-capture hold is in place (Stripe sends
    amount_capturable_updated); it does send payment_failed for a card whose charge fails:
    delivered for real, it leaves the order waiting for another card."""
    step, page, result = _typed(market, pool, CHARGE_FAILS, sandbox=stripe_webhooks_to_app)
    assert result["status"] == "succeeded"
    with pytest.raises(PaymentDeclined):
        cards.use_setup_card(market.buyers[0], step.order.id)
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline and seen is None:
        db.session.rollback()
        seen = db.session.scalar(select(StripeEvent).where(
            StripeEvent.object_id == step.order.payment_intent_id,
            StripeEvent.type == "payment_intent.payment_failed"))
        time.sleep(0.2)
    assert seen is not None and seen.outcome == "no_change:authorizing"
    assert _order(step.order.id).status == "authorizing"


def test_an_abandoned_order_expires_its_grams_back_its_intent_cancelled(app, market, pool,
                                                                        card_app):
    waiting = _start(market, pool)
    confirmed, _p, _r = _typed(market, pool, THREE_DS, buyer=1, sandbox=card_app)
    asked = cards.use_setup_card(market.buyers[1], confirmed.order.id)
    authenticate(card_app.api_base, asked.client_secret, True)  # its return was lost
    assert _committed(pool.id) == 200_000
    assert cards.expire_card_orders() == []            # not old enough yet
    later = utcnow() + timedelta(seconds=901)
    assert cards.expire_card_orders(now=later) == [waiting.order.id]
    assert _order(waiting.order.id).status == "failed"
    assert _intent(waiting.order.payment_intent_id).status == "canceled"
    assert _order(confirmed.order.id).status == "authorized"   # found held: recorded
    assert _committed(pool.id) == 100_000
    assert cards.expire_card_orders(now=later) == []            # idempotent
    # The buyer comes back too late: nothing is held, the page says so.
    assert cards.confirm_card_order(waiting.order.id, user=market.buyers[0]).status == "failed"


def test_closing_drops_the_orders_still_waiting_for_their_card(market, pool, card_app):
    from tests.support.settle import close_and_settle
    from coop.pools.models import Order as O
    pools.place_order(market.buyers[1], pool.id, quantity_kg="100",
                      payment_method="pm_card_visa")
    waiting = _start(market, pool)
    closed = close_and_settle(pool.id)
    assert closed.status == "confirmed" and closed.committed_g == 100_000
    assert db.session.get(O, waiting.order.id).status == "failed"
    assert _intent(waiting.order.payment_intent_id).status == "canceled"


def test_a_saved_card_is_one_step_next_time_and_can_be_removed(market, pool, card_app):
    step, page, _r = _typed(market, pool, VISA_NUMBER, sandbox=card_app)
    assert cards.use_setup_card(market.buyers[0], step.order.id, save=True).order.status \
        == "authorized"
    saved = saved_cards.saved_cards(market.buyers[0].buyer_id)
    assert [(c.brand, c.last4) for c in saved] == [("visa", "4242")]
    assert db.session.scalar(select(func.count()).select_from(StripeCustomer)) == 1
    customer = saved_cards.customer_of(market.buyers[0].buyer_id)
    assert gateway.card_details(saved[0].payment_method_id)["customer"] == customer
    other_pool = market.open_pool(min_kg="100", max_kg="100")
    again, created = cards.place_card_order(market.buyers[0], other_pool.id, quantity_kg="50",
                                            saved_card_id=saved[0].id)
    assert again.order.status == "authorized" and again.client_secret is None
    assert db.session.scalar(select(func.count()).select_from(StripeCustomer)) == 1
    # Change and withdraw work on it as on any order.
    changed = pools.change_order(market.buyers[0], again.order.id, quantity_kg="60")
    assert changed.quantity_g == 60_000 and _intent(changed.payment_intent_id).status \
        == "requires_capture"
    assert pools.withdraw_order(market.buyers[0], again.order.id).status == "released"
    # Another buyer can neither use nor remove it.
    with pytest.raises(NotFound):
        cards.place_card_order(market.buyers[1], other_pool.id, quantity_kg="10",
                               saved_card_id=saved[0].id)
    with pytest.raises(NotFound):
        saved_cards.remove_card(market.buyers[1].buyer_id, saved[0].id)
    pm = saved[0].payment_method_id
    saved_cards.remove_card(market.buyers[0].buyer_id, saved[0].id)
    assert saved_cards.saved_cards(market.buyers[0].buyer_id) == []
    assert gateway.card_details(pm)["customer"] is None


def test_a_saved_card_the_bank_questions_goes_to_the_page(market, pool, card_app):
    step, page, _r = _typed(market, pool, THREE_DS, sandbox=card_app)
    asked = cards.use_setup_card(market.buyers[0], step.order.id, save=True)
    authenticate(card_app.api_base, asked.client_secret, True)
    cards.confirm_card_order(step.order.id)
    card = saved_cards.saved_cards(market.buyers[0].buyer_id)[0]
    other_pool = market.open_pool(min_kg="100", max_kg="100")
    again, _c = cards.place_card_order(market.buyers[0], other_pool.id, quantity_kg="50",
                                       saved_card_id=card.id)
    assert again.order.status == "authorizing" and again.client_secret
    page = cards.card_page(market.buyers[0], again.order.id)
    assert page.needs_action and page.setup_secret is None
    authenticate(card_app.api_base, page.client_secret, True)
    assert cards.confirm_card_order(again.order.id).status == "authorized"


# ---------------------------------------------------------------- the API's two steps

def test_the_api_two_steps_and_the_one_step_payment_method(client, token, market, pool, card_app):
    headers = token(market.buyers[0])
    made = client.post(f"/api/v1/pools/{pool.id}/orders", headers=headers,
                       json={"quantity_kg": "10", "card_entry": True})
    assert made.status_code == 201, made.json
    body = made.json
    assert body["status"] == "authorizing" and body["client_secret"].startswith("pi_")
    assert body["stripe_publishable_key"] == PK
    # Checked with Stripe: nothing held yet.
    again = client.post(f"/api/v1/orders/{body['id']}/confirm", headers=headers)
    assert again.status_code == 200 and again.json["status"] == "authorizing"
    assert again.json["client_secret"] == body["client_secret"]
    # Another buyer: 404, and nothing changes.
    other = client.post(f"/api/v1/orders/{body['id']}/confirm", headers=token(market.buyers[1]))
    assert other.status_code == 404
    # The client's Stripe.js confirms it (here: the same calls, server to sandbox).
    intent_id = body["client_secret"].split("_secret_")[0]
    gateway.confirm_card(intent_id, "pm_card_visa")
    done = client.post(f"/api/v1/orders/{body['id']}/confirm", headers=headers)
    assert done.json["status"] == "authorized" and done.json["client_secret"] is None
    # The one-step payment_method stays as it was.
    one = client.post(f"/api/v1/pools/{pool.id}/orders", headers=headers,
                      json={"quantity_kg": "5", "payment_method": "pm_card_visa"})
    assert one.status_code == 201 and one.json["status"] == "authorized"
    bad = client.post(f"/api/v1/pools/{pool.id}/orders", headers=headers,
                      json={"quantity_kg": "5", "card_entry": "yes"})
    assert bad.status_code == 422
    missing = client.post(f"/api/v1/pools/{pool.id}/orders", headers=headers,
                          json={"quantity_kg": "5"})
    assert missing.status_code == 422


# ---------------------------------------------------------------- the pages

def test_only_the_card_page_allows_stripe_js(app, client, login, market, pool, card_app):
    login(market.buyers[0])
    step = _start(market, pool)
    page = client.get(f"/my/orders/{step.order.id}/card")
    assert page.status_code == 200, page.data[:500]
    policy = page.headers["Content-Security-Policy"]
    base = card_app.api_base
    assert f"script-src 'self' {base}" in policy and f"connect-src 'self' {base}" in policy
    assert f"frame-src {base}" in policy
    text = page.get_data(as_text=True)
    assert f'<script src="{base}/js.stripe.com/v3/"></script>' in text
    assert "<noscript>" in text and 'id="card-submit" hidden' in text
    assert "<script>" not in text                                 # no inline script
    assert page.headers["Cache-Control"] == "no-store"
    for other in (f"/pools/{pool.id}", "/my/orders", "/my/cards", "/pools"):
        answer = client.get(other)
        assert answer.headers["Content-Security-Policy"].startswith(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';")
        assert "js.stripe.com" not in answer.get_data(as_text=True), other


def test_production_policy_names_stripe(app):
    config = {"STRIPE_API_BASE": "", "STRIPE_JS_URL": ""}
    assert gateway.stripe_js_url(config) == "https://js.stripe.com/v3/"
    policy = gateway.card_page_csp(config)
    assert "script-src 'self' https://js.stripe.com;" in policy
    assert "frame-src https://js.stripe.com https://hooks.stripe.com;" in policy
    assert "connect-src 'self' https://api.stripe.com;" in policy


def test_who_may_reach_the_card_routes(app, client, login, market, pool, card_app, make_user):
    step = _start(market, pool)
    routes = [("get", f"/my/orders/{step.order.id}/card"),
              ("post", f"/my/orders/{step.order.id}/card/setup"),
              ("post", f"/my/orders/{step.order.id}/card/return"),
              ("post", f"/my/orders/{step.order.id}/card/cancel")]
    client.post("/logout")
    for method, url in routes:
        answer = getattr(client, method)(url)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], url
    for who in (market.buyers[1], market.farmers[0].user if hasattr(market.farmers[0], "user")
                else market.farmers[0], market.manager):
        login(who)
        for method, url in routes:
            answer = getattr(client, method)(url, headers={"Accept": "application/json"})
            assert answer.status_code in (403, 404), (who, url, answer.status_code)
    assert _order(step.order.id).status == "authorizing"
    login(market.buyers[1])
    assert client.get("/my/cards").status_code == 200
    assert client.post("/my/cards/999999/remove").status_code in (302, 404)


def test_the_join_form_offers_test_cards_only_against_the_sandbox(app, client, login, market,
                                                                   pool, card_app):
    login(market.buyers[0])
    text = client.get(f"/pools/{pool.id}").get_data(as_text=True)
    assert 'value="new"' in text and 'value="pm_card_visa"' in text
    saved = app.config["STRIPE_API_BASE"]
    app.config["STRIPE_API_BASE"] = ""           # as against Stripe itself
    try:
        text = client.get(f"/pools/{pool.id}").get_data(as_text=True)
        assert 'value="new"' in text and "pm_card_visa" not in text
        refused = client.post(f"/pools/{pool.id}", data={"quantity_kg": "1",
                                                         "payment_method": "pm_card_visa"})
        assert refused.status_code == 422
    finally:
        app.config["STRIPE_API_BASE"] = saved
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_the_page_s_return_is_checked_with_stripe(app, client, login, market, pool, card_app):
    login(market.buyers[0])
    step = _start(market, pool)
    client.get(f"/my/orders/{step.order.id}/card")
    answer = client.post(f"/my/orders/{step.order.id}/card/return",
                         headers={"Accept": "application/json"})
    assert answer.json["status"] == "waiting"          # the browser said done; Stripe did not
    assert _order(step.order.id).status == "authorizing"
    gateway.confirm_card(step.order.payment_intent_id, "pm_card_visa")
    answer = client.post(f"/my/orders/{step.order.id}/card/return",
                         headers={"Accept": "application/json"})
    assert answer.json["status"] == "authorized" and answer.json["redirect"] == "/my/orders"
