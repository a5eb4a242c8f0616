"""A buyer whose organisation has given no billing details places no order (an invoice needs
them, issue 14 part 2): the API's order, both with a payment_method and with card entry, is
422 billing_details_required, with nothing written and nothing asked of Stripe; once the
details are saved the same order goes through. The check rides on the pool's facts
statement that every order runs (tests/pools/test_order_budget.py counts it)."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select

from coop.common.errors import ValidationFailed
from coop.extensions import db
from coop.invoices import services as invoices
from coop.invoices.models import BuyerBilling
from coop.payments import cards as saved_cards, gateway
from coop.pools import services as pools
from coop.pools.models import Order, Pool

pytestmark = pytest.mark.usefixtures("ledger_sound")

BODIES = {"payment_method": {"quantity_kg": "10", "payment_method": "pm_card_visa"},
          "card_entry": {"quantity_kg": "10", "card_entry": True}}


@pytest.fixture
def no_stripe(monkeypatch):
    """Every call the order path could make to Stripe fails the test if it is made."""
    asked: list[str] = []

    def refuse(name):
        def call(*_args, **_kwargs):
            asked.append(name)
            raise AssertionError(f"Stripe asked ({name}) for a buyer without billing details")
        return call
    for name in ("hold", "card_intent", "confirm_card", "create_customer"):
        if hasattr(gateway, name):
            monkeypatch.setattr(gateway, name, refuse(name))
    monkeypatch.setattr(saved_cards, "ensure_customer", refuse("ensure_customer"))
    return asked


def _orders_of(buyer) -> int:
    return db.session.scalar(select(func.count()).select_from(Order)
                             .where(Order.buyer_id == buyer.buyer_id))


def _committed(pool_id) -> int:
    db.session.expire_all()
    return db.session.get(Pool, pool_id).committed_g


@pytest.mark.parametrize("path", sorted(BODIES))
def test_an_order_without_billing_details_is_refused_with_nothing_written(
        client, market, make_buyer, token, no_stripe, path):
    pool = market.open_pool(min_kg="100", max_kg="500")
    newcomer = make_buyer(organisation="Neu GmbH", billing=False)
    before = _committed(pool.id)
    for key in ("first", "first", None):  # a retry with the same key is refused alike
        headers = {**token(newcomer), "Accept-Language": "en",
                   **({"Idempotency-Key": key} if key else {})}
        answer = client.post(f"/api/v1/pools/{pool.id}/orders", json=BODIES[path],
                             headers=headers)
        assert answer.status_code == 422, answer.json
        error = answer.json["error"]
        assert error["code"] == "billing_details_required"
        assert "billing details" in error["message"]
    assert _committed(pool.id) == before  # nothing reserved
    assert _orders_of(newcomer) == 0      # no order row, so no key taken either
    assert no_stripe == []                # no PaymentIntent, no Customer


def test_the_same_order_goes_through_once_the_billing_details_are_saved(
        client, market, make_buyer, token, stripe_clean):
    pool = market.open_pool(min_kg="100", max_kg="500")
    newcomer = make_buyer(organisation="Neu GmbH", billing=False)
    headers = {**token(newcomer), "Idempotency-Key": "neu-1"}
    url = f"/api/v1/pools/{pool.id}/orders"
    assert client.post(url, json=BODIES["payment_method"], headers=headers).status_code == 422
    put = client.put("/api/v1/billing-details", headers=token(newcomer),
                     json={"legal_name": "Neu GmbH", "tax_id": "DE123456789", "country": "DE",
                           "address": "Hafenstraße 1, Hamburg"})
    assert put.status_code == 200, put.json
    placed = client.post(url, json=BODIES["payment_method"], headers=headers)
    assert placed.status_code == 201, placed.json
    assert placed.json["status"] == "authorized" and placed.json["quantity_kg"] == "10.000"
    card = client.post(url, json=BODIES["card_entry"],
                       headers={**headers, "Idempotency-Key": "neu-2"})
    assert card.status_code == 201, card.json
    assert card.json["status"] == "authorizing" and card.json["client_secret"]
    assert _committed(pool.id) == 20_000 and _orders_of(newcomer) == 2


def test_a_replay_of_an_order_placed_before_the_rule_answers_as_before(
        client, market, token, stripe_clean):
    """An order placed before billing details were asked (its buyer has none) still answers
    its Idempotency-Key's replay: the replay is answered before the rule is checked."""
    pool = market.open_pool(min_kg="100", max_kg="500")
    buyer = market.buyers[0]
    headers = {**token(buyer), "Idempotency-Key": "before-the-rule"}
    url = f"/api/v1/pools/{pool.id}/orders"
    first = client.post(url, json=BODIES["payment_method"], headers=headers)
    assert first.status_code == 201
    db.session.execute(delete(BuyerBilling).where(BuyerBilling.buyer_id == buyer.buyer_id))
    db.session.commit()
    again = client.post(url, json=BODIES["payment_method"], headers=headers)
    assert again.status_code == 201 and again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    fresh = client.post(url, json=BODIES["payment_method"],
                        headers={**headers, "Idempotency-Key": "after-the-rule"})
    assert fresh.status_code == 422
    assert fresh.json["error"]["code"] == "billing_details_required"
    assert _committed(pool.id) == 10_000


def test_the_services_and_the_preview_share_the_rule(market, make_buyer, no_stripe):
    """The HTML join page sends such a buyer to /my/billing first; its services refuse
    alike (the confirmation step's preview too), the one rule of the invoices domain."""
    pool = market.open_pool(min_kg="100", max_kg="500")
    newcomer = make_buyer(organisation="Neu GmbH", billing=False)
    assert not invoices.has_billing(newcomer.buyer_id)
    assert invoices.has_billing(market.buyers[0].buyer_id)
    for call in (lambda: pools.preview_order(newcomer, pool.id, quantity_kg="10",
                                             payment_method="pm_card_visa"),
                 lambda: pools.place_order(newcomer, pool.id, quantity_kg="10",
                                           payment_method="pm_card_visa")):
        with pytest.raises(ValidationFailed) as refused:
            call()
        assert refused.value.code == "billing_details_required"
    assert _committed(pool.id) == 0 and _orders_of(newcomer) == 0


def test_the_guide_and_the_openapi_document_name_the_refusal(client):
    from pathlib import Path
    guide = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    assert guide.count("billing_details_required") >= 3  # GET billing-details and both orders
    op = client.get("/api/v1/openapi.json").get_json()["paths"]["/pools/{id}/orders"]["post"]
    assert "billing_details_required" in op["responses"]["422"]["description"]
