"""The buyer's browser against the sandbox, without a browser: what localstripe's stand-in
for Stripe.js sends (tests/e2e types into the real stand-in)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

PK = "pk_test_minga_cards"
VISA_NUMBER, THREE_DS, DECLINED, CHARGE_FAILS = (
    "4242424242424242", "4000002500003155", "4000000000000002", "4000000000000341")


def _post(api_base: str, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(api_base + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def confirm_setup(api_base: str, setup_secret: str, number: str, *, accept_3ds=True) -> dict:
    """stripe.confirmCardSetup(secret, {payment_method: {card}}) as the stand-in runs it,
    with its 3-D Secure prompt answered `accept_3ds`. The SetupIntent (or {"error": ...})."""
    seti = setup_secret.split("_secret_")[0]
    card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    status, body = _post(api_base, f"/v1/setup_intents/{seti}/confirm", {
        "key": PK, "use_stripe_sdk": True, "client_secret": setup_secret,
        "payment_method_data": {"type": "card", "card": card}})
    if status != 200 or body.get("status") != "requires_action":
        return body if status == 200 else {"error": body.get("error", body)}
    step = "confirm" if accept_3ds else "cancel"
    status, body = _post(api_base, f"/v1/setup_intents/{seti}/{step}",
                         {"key": PK, "use_stripe_sdk": True, "client_secret": setup_secret})
    return body if status == 200 else {"error": body.get("error", body)}


def authenticate(api_base: str, client_secret: str, success: bool) -> dict:
    """stripe.confirmCardPayment(secret) on a PaymentIntent the bank questions: the stand-in's
    3-D Secure prompt, accepted or refused."""
    pi = client_secret.split("_secret_")[0]
    status, body = _post(api_base, f"/v1/payment_intents/{pi}/_authenticate"
                         f"?success={'true' if success else 'false'}",
                         {"key": PK, "client_secret": client_secret})
    return body
