"""The payment gateway against the real local Stripe sandbox (localstripe) over HTTP:
holds, declines, captures, cancels, refunds, balance transactions, signed webhooks."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from coop.payments import gateway
from coop.payments.gateway import CardDeclined, Hold, PaymentError, WebhookInvalid
from devtools.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sandbox(stripe_clean):
    return stripe_clean


def intent(sandbox, intent_id):
    return sandbox.get(f"/v1/payment_intents/{intent_id}?expand[]=latest_charge")


# ---------------------------------------------------------------------- holds
def test_hold_authorises_without_taking(sandbox):
    held = gateway.hold(123_450, "COP", "pm_card_visa", {"order_id": 7, "pool_id": 3})
    assert isinstance(held, Hold)
    assert held.status == "requires_capture"
    assert held.amount == 123_450 and isinstance(held.amount, int)
    assert held.currency == "COP"
    assert held.id.startswith("pi_") and held.charge_id.startswith("ch_")
    remote = intent(sandbox, held.id)
    assert remote["capture_method"] == "manual"
    assert remote["metadata"] == {"order_id": "7", "pool_id": "3"}
    assert remote["latest_charge"]["captured"] is False
    assert gateway.retrieve(held.id) == held
    # Nothing has reached the balance yet: a hold is not money.
    assert list(gateway.balance_transactions()) == []


def test_decline_raises_and_holds_nothing(sandbox):
    with pytest.raises(CardDeclined) as caught:
        gateway.hold(50_000, "COP", "pm_card_chargeCustomerFail", {"order_id": 1})
    error = caught.value
    assert isinstance(error, PaymentError)
    assert error.code == "card_declined"
    assert error.message
    assert error.intent_id  # found through the charge: localstripe's error omits it
    assert gateway.retrieve(error.intent_id).status == "canceled"
    assert list(gateway.balance_transactions()) == []


def test_amounts_are_positive_integers(sandbox):
    with pytest.raises(TypeError):
        gateway.hold(12.5, "COP", "pm_card_visa", {})
    with pytest.raises(TypeError):
        gateway.hold(True, "COP", "pm_card_visa", {})
    with pytest.raises(ValueError):
        gateway.hold(0, "COP", "pm_card_visa", {})
    assert sandbox.get("/v1/payment_intents")["data"] == []


def test_unknown_payment_method_is_a_payment_error(sandbox):
    with pytest.raises(PaymentError) as caught:
        gateway.hold(1000, "COP", "pm_does_not_exist", {})
    assert not isinstance(caught.value, CardDeclined)
    assert caught.value.code == "resource_missing"


def test_not_configured(app, sandbox, monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "")
    with pytest.raises(PaymentError) as caught:
        gateway.hold(1000, "COP", "pm_card_visa", {})
    assert caught.value.code == "gateway_not_configured"


def test_the_client_is_built_from_the_app_config_on_first_use(app, sandbox):
    assert gateway.hold(1000, "COP", "pm_card_visa", {}).status == "requires_capture"


# ------------------------------------------------------------------- captures
def test_partial_capture_takes_less_and_releases_the_rest(sandbox):
    held = gateway.hold(100_000, "COP", "pm_card_visa", {})
    captured = gateway.capture(held.id, 60_000)
    assert captured.id == held.id
    assert captured.status == "succeeded"
    assert captured.amount == 100_000  # what was authorised
    charge = intent(sandbox, held.id)["latest_charge"]
    assert charge["captured"] is True
    # localstripe models the release as a refund of the difference (Stripe reports
    # amount_captured instead): the net taken is what was asked.
    assert charge["amount"] - charge["amount_refunded"] == 60_000
    assert sum(t["amount"] for t in gateway.balance_transactions()) == 60_000


def test_full_capture(sandbox):
    held = gateway.hold(42_000, "USD", "pm_card_visa", {})
    captured = gateway.capture(held.id, 42_000)
    assert captured.status == "succeeded" and captured.currency == "USD"
    txns = list(gateway.balance_transactions())
    assert [(t["type"], t["amount"], t["source"]) for t in txns] == [
        ("charge", 42_000, held.charge_id)]


def test_capturing_twice_returns_the_state_without_taking_more(sandbox):
    held = gateway.hold(30_000, "COP", "pm_card_visa", {})
    first = gateway.capture(held.id, 20_000)
    again = gateway.capture(held.id, 20_000)
    assert again == first
    assert sum(t["amount"] for t in gateway.balance_transactions()) == 20_000


def test_capture_more_than_held_is_refused(sandbox):
    held = gateway.hold(10_000, "COP", "pm_card_visa", {})
    with pytest.raises(PaymentError) as caught:
        gateway.capture(held.id, 10_001)
    assert caught.value.code == "amount_too_large"
    assert gateway.retrieve(held.id).status == "requires_capture"


# -------------------------------------------------------------------- cancels
def test_cancel_releases_and_is_idempotent(sandbox):
    held = gateway.hold(25_000, "COP", "pm_card_visa", {})
    assert gateway.cancel(held.id) == "canceled"
    assert gateway.cancel(held.id) == "canceled"
    assert gateway.retrieve(held.id).status == "canceled"
    assert list(gateway.balance_transactions()) == []


def test_a_cancelled_hold_cannot_be_captured(sandbox):
    # localstripe itself would capture it (Stripe refuses): the gateway checks first.
    held = gateway.hold(25_000, "COP", "pm_card_visa", {})
    gateway.cancel(held.id)
    with pytest.raises(PaymentError) as caught:
        gateway.capture(held.id, 25_000)
    assert caught.value.code == "unexpected_state"
    assert list(gateway.balance_transactions()) == []


def test_a_captured_payment_cannot_be_cancelled(sandbox):
    held = gateway.hold(25_000, "COP", "pm_card_visa", {})
    gateway.capture(held.id, 25_000)
    with pytest.raises(PaymentError) as caught:
        gateway.cancel(held.id)
    assert caught.value.code == "unexpected_state"
    assert gateway.retrieve(held.id).status == "succeeded"


def test_cancel_unknown_intent(sandbox):
    with pytest.raises(PaymentError) as caught:
        gateway.cancel("pi_doesnotexist")
    assert caught.value.code == "resource_missing"


# -------------------------------------------------------------------- refunds
def test_partial_refund(sandbox):
    held = gateway.hold(80_000, "COP", "pm_card_visa", {})
    gateway.capture(held.id, 80_000)
    refund_id = gateway.refund(held.id, 15_000, idempotency_key="shortfall-order-1")
    assert refund_id.startswith("re_")
    remote = sandbox.get(f"/v1/refunds/{refund_id}")
    assert remote["amount"] == 15_000
    assert remote["payment_intent"] == held.id
    assert remote["metadata"] == {"minga_idempotency_key": "shortfall-order-1"}
    txns = list(gateway.balance_transactions())
    assert sorted((t["type"], t["amount"]) for t in txns) == [("charge", 80_000),
                                                             ("refund", -15_000)]
    refund_txn = next(t for t in txns if t["type"] == "refund")
    assert refund_txn["source"] == refund_id and refund_txn["net"] == -15_000
    assert refund_txn["payment_intent"] == held.id and refund_txn["coop_id"] is None
    # A refund that names its coop: the metadata travels with the key, and the balance
    # transaction says whose it is.
    tagged = gateway.refund(held.id, 5_000, idempotency_key="k2",
                            metadata={"coop_id": 4, "order_id": 9, "pool_id": 2})
    assert sandbox.get(f"/v1/refunds/{tagged}")["metadata"] == {
        "coop_id": "4", "order_id": "9", "pool_id": "2", "minga_idempotency_key": "k2"}
    assert next(t for t in gateway.balance_transactions()
                if t["source"] == tagged)["coop_id"] == "4"


def test_refund_amount_must_be_an_integer(sandbox):
    with pytest.raises(TypeError):
        gateway.refund("pi_x", 10.0, idempotency_key="k")


# ------------------------------------------------------- balance transactions
def test_balance_transactions_page_through_everything(sandbox):
    sources = set()
    for amount in (1_000, 2_000, 3_000, 4_000, 5_000):
        held = gateway.hold(amount, "COP", "pm_card_visa", {})
        gateway.capture(held.id, amount)
        sources.add(held.charge_id)
    first_page = sandbox.get("/v1/balance_transactions?limit=2")
    assert len(first_page["data"]) == 2 and first_page["has_more"] is True

    txns = list(gateway.balance_transactions(limit=2))
    assert len(txns) == 5
    assert len({t["id"] for t in txns}) == 5
    assert {t["source"] for t in txns} == sources
    assert sum(t["amount"] for t in txns) == 15_000
    for t in txns:
        assert set(t) == {"id", "type", "source", "charge", "payment_intent", "coop_id",
                          "amount", "fee", "net", "currency", "available_on", "created"}
        assert all(isinstance(t[k], int) for k in ("amount", "fee", "net"))
        assert t["net"] == t["amount"] - t["fee"] and t["currency"] == "COP"
        assert t["charge"] is None  # only a refund names the charge it is on
        assert t["payment_intent"].startswith("pi_")  # the charge's intent, from the source
        assert t["coop_id"] is None  # these holds named no coop

    rest = list(gateway.balance_transactions(starting_after=txns[1]["id"], limit=2))
    assert [t["id"] for t in rest] == [t["id"] for t in txns[2:]]


def test_a_refund_names_its_charge_and_a_partial_capture_shows_how_the_sandbox_books_it(
        sandbox):
    """The sandbox books a partial capture as a charge of the whole hold plus a refund of
    the rest on the same charge (Stripe books one charge of the amount captured); either
    way the refund's charge is known, which reconciliation needs."""
    held = gateway.hold(10_000, "COP", "pm_card_visa", {})
    gateway.capture(held.id, 7_000)
    txns = list(gateway.balance_transactions())
    charge = next(t for t in txns if t["type"] == "charge")
    assert charge["source"] == held.charge_id and charge["charge"] is None
    assert sum(t["amount"] for t in txns) == 7_000
    for t in txns:
        if t["type"] == "refund":
            assert t["charge"] == held.charge_id and t["source"].startswith("re_")


# ------------------------------------------------------------------- webhooks
class Receiver:
    """A tiny HTTP endpoint on a free 127.0.0.1 port that keeps what it receives."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((body, self.headers.get("Stripe-Signature")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout=10.0):  # ~1 s normally; slack for a loaded machine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body, signature in list(self.received):
                if predicate(json.loads(body)):
                    return body, signature
            time.sleep(0.05)
        kinds = [json.loads(b).get("type") for b, _ in self.received]
        raise AssertionError(f"no matching webhook within {timeout}s; got {kinds}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(sandbox):
    receiver = Receiver()
    secret = "whsec_receiver_" + os.urandom(8).hex()
    webhook_id = f"test-{os.getpid()}-{id(receiver)}"
    sandbox.register_webhook(receiver.url, secret, webhook_id=webhook_id)
    receiver.secret = secret
    try:
        yield receiver
    finally:
        sandbox.unregister_webhook(webhook_id)
        receiver.close()


def for_intent(event_type, intent_id):
    return lambda event: (event.get("type") == event_type
                          and event["data"]["object"]["id"] == intent_id)


def test_signed_webhook_from_the_sandbox_verifies(receiver):
    held = gateway.hold(9_000, "COP", "pm_card_visa", {"order_id": 99})
    gateway.capture(held.id, 9_000)
    body, signature = receiver.wait_for(for_intent("payment_intent.succeeded", held.id))
    assert signature and signature.startswith("t=")

    event = gateway.verify_webhook(body, signature, receiver.secret)
    assert isinstance(event, dict)
    assert event["type"] == "payment_intent.succeeded"
    assert event["id"].startswith("evt_")
    assert event["data"]["object"]["id"] == held.id
    assert event["data"]["object"]["metadata"] == {"order_id": "99"}

    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(body, signature, "whsec_someone_else")
    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(body.replace(held.id.encode(), b"pi_forged0000000"),
                               signature, receiver.secret)


def test_webhook_for_a_decline(receiver):
    with pytest.raises(CardDeclined) as caught:
        gateway.hold(9_000, "COP", "pm_card_chargeCustomerFail", {})
    body, signature = receiver.wait_for(
        for_intent("payment_intent.payment_failed", caught.value.intent_id))
    event = gateway.verify_webhook(body, signature, receiver.secret)
    assert event["type"] == "payment_intent.payment_failed"


SECRET = "whsec_unit_test_secret"


def sign(payload: bytes, timestamp: int, secret: str = SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


EVENT = json.dumps({"id": "evt_test_1", "object": "event", "type": "payment_intent.succeeded",
                    "created": 1700000000,
                    "data": {"object": {"id": "pi_1", "object": "payment_intent",
                                        "amount": 1000}}}).encode()


def test_verify_webhook_accepts_a_fresh_signature():
    event = gateway.verify_webhook(EVENT, sign(EVENT, int(time.time())), SECRET)
    assert event["id"] == "evt_test_1" and event["data"]["object"]["amount"] == 1000


def test_verify_webhook_refuses_a_tampered_payload():
    header = sign(EVENT, int(time.time()))
    tampered = EVENT.replace(b'"amount": 1000', b'"amount": 1')
    assert tampered != EVENT
    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(tampered, header, SECRET)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=123", "v1=abc"])
def test_verify_webhook_refuses_a_missing_or_malformed_header(header):
    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(EVENT, header, SECRET)


def test_verify_webhook_refuses_a_stale_timestamp():
    old = int(time.time()) - 301
    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(EVENT, sign(EVENT, old), SECRET)
    # ...and accepts it with a wider tolerance: the signature itself is right.
    assert gateway.verify_webhook(EVENT, sign(EVENT, old), SECRET, tolerance=600)["id"]


def test_verify_webhook_refuses_without_a_secret():
    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(EVENT, sign(EVENT, int(time.time()), ""), "")


def test_verify_webhook_refuses_a_signed_body_that_is_not_an_event():
    body = b'{"hello": "world"}'
    with pytest.raises(WebhookInvalid):
        gateway.verify_webhook(body, sign(body, int(time.time())), SECRET)


# -------------------------------------------------------------------- sandbox
def test_sandbox_has_its_own_store_and_port(stripe_sandbox):
    assert stripe_sandbox.api_base.startswith("http://127.0.0.1:")
    assert stripe_sandbox.store_path != Path("/tmp/localstripe.pickle")
    with Sandbox() as other:
        assert other.port != stripe_sandbox.port
        assert other.store_path != stripe_sandbox.store_path
        assert other.get("/v1/payment_intents")["data"] == []  # answers, empty
        other.reset()  # a write: the store is saved to its own file
        proc, store = other._proc, other.store_path
        assert store.exists()
    assert proc.poll() is not None  # stopped
    assert not store.exists()  # private files removed


def test_reset_empties_the_store(stripe_sandbox):
    stripe_sandbox.reset()
    stripe_sandbox.register_webhook("http://127.0.0.1:9/", "s", webhook_id="reset-test")
    held = gateway.hold(1_000, "COP", "pm_card_visa", {})
    assert stripe_sandbox.get("/v1/payment_intents")["data"]
    stripe_sandbox.reset()
    assert stripe_sandbox.get("/v1/payment_intents")["data"] == []
    with pytest.raises(PaymentError):
        gateway.retrieve(held.id)
    stripe_sandbox.unregister_webhook("reset-test")


def test_sandbox_exits_when_its_parent_dies():
    """Even a parent killed with SIGKILL (no atexit) leaves no localstripe behind."""
    script = ("import sys, time\n"
              "from devtools.sandbox import Sandbox\n"
              "s = Sandbox().start()\n"
              "print(s._proc.pid, s.store_path.parent, flush=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid, private_dir = parent.stdout.readline().split()
        child_pid = int(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        # A zombie of an orphan is reaped by init; check its state.
        try:
            state = Path(f"/proc/{child_pid}/stat").read_text().split()[2]
            if state == "Z":
                break
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(child_pid, signal.SIGKILL)
        raise AssertionError("localstripe outlived its parent")
    assert not Path(private_dir).exists()  # and took its private files with it


def test_dev_sandbox_for_make_run(tmp_path, monkeypatch):
    from devtools import sandbox as sandbox_module
    monkeypatch.setattr(sandbox_module, "_dev_sandbox", None)
    env = {"MINGA_SANDBOX_STORE": str(tmp_path / "dev.pickle"), "PORT": "5999"}
    received = Receiver()
    dev = sandbox_module.ensure_dev_sandbox(env, port=0, webhook_url=received.url)
    try:
        assert dev is not None and dev.running
        assert env["STRIPE_SECRET_KEY"].startswith("sk_test_")
        assert env["STRIPE_API_BASE"] == dev.api_base
        assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
        assert env["STRIPE_PUBLISHABLE_KEY"].startswith("pk_test_")  # card entry on
        assert sandbox_module.ensure_dev_sandbox(env) is None  # a key is set now
        del env["STRIPE_SECRET_KEY"]
        assert sandbox_module.ensure_dev_sandbox(env) is dev  # one per process
        assert sandbox_module.ensure_dev_sandbox("testing") is None
        dev.reset()
        assert (tmp_path / "dev.pickle").exists()  # its store is where it was told
    finally:
        dev.stop()
        received.close()
    assert (tmp_path / "dev.pickle").exists()  # kept for the next `make run`


def test_live_server_serves_the_app_over_http(live_server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
    try:
        conn.request("GET", "/login")
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    assert response.status == 200
