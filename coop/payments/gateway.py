"""The one place Minga talks to Stripe (the official `stripe` library).

Card holds are PaymentIntents with capture_method="manual": `hold` authorises,
`capture` takes all or part of it (the rest is released), `cancel` releases it,
`refund` gives money back after a capture. Amounts are integers in minor units;
never a float.

Configuration comes from the Flask app: STRIPE_SECRET_KEY, STRIPE_API_BASE (empty for
Stripe itself, the sandbox URL otherwise), STRIPE_TIMEOUT_SECONDS (default 30) and
STRIPE_INTENT_EXTRA_PARAMS (a dict of extra PaymentIntent parameters for real Stripe,
e.g. {"statement_descriptor_suffix": "MINGA"}; the sandbox refuses unknown ones).
Every function works lazily from `current_app.config` (the client is built on first use).

Only parameters that both Stripe and localstripe accept are sent (see
stripe-sandbox.md). Stripe's idempotency keys are passed along (Stripe honours them,
the sandbox ignores them), but Minga's own idempotency must not depend on them.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import stripe
from flask import current_app

STRIPE_API_BASE_DEFAULT = "https://api.stripe.com"


class PaymentError(Exception):
    """Stripe refused or could not be reached. `code` is Stripe's error code
    (card_declined, resource_missing, ...) or one of ours (gateway_unavailable,
    gateway_not_configured, authentication_required, unexpected_state)."""

    def __init__(self, code: str, message: str = "", *, http_status: int | None = None,
                 decline_code: str | None = None, intent_id: str | None = None):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message or code
        self.http_status = http_status
        self.decline_code = decline_code
        self.intent_id = intent_id


class CardDeclined(PaymentError):
    """The card was declined: nothing is held."""


class GatewayUnavailable(PaymentError):
    """No answer from Stripe (network, timeout). The outcome of a write is unknown."""


class WebhookInvalid(Exception):
    """A webhook whose signature is missing, wrong or too old: refuse it (400)."""


@dataclass
class Hold:
    id: str
    status: str        # Stripe's PaymentIntent status: requires_capture, succeeded, canceled...
    amount: int        # the amount authorised, minor units
    currency: str      # ISO 4217, upper case ("COP")
    charge_id: str | None
    metadata: dict = field(default_factory=dict)   # what Minga tagged it with (strings)
    created: int | None = None                     # Stripe's creation time, Unix seconds
    payment_method: str | None = None              # the PaymentMethod id, once it has one
    client_secret: str | None = None               # for Stripe.js in the buyer's page only


# ------------------------------------------------------------------- the client
_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def _settings(config) -> tuple[str, str, float]:
    key = config.get("STRIPE_SECRET_KEY") or ""
    base = (config.get("STRIPE_API_BASE") or "").rstrip("/")
    timeout = float(config.get("STRIPE_TIMEOUT_SECONDS") or 30)  # seconds, fractions allowed
    return key, base, timeout


def is_sandbox(config=None) -> bool:
    """Whether the app talks to the local sandbox (localstripe) rather than Stripe."""
    base = _settings(config if config is not None else current_app.config)[1]
    return bool(base) and base != STRIPE_API_BASE_DEFAULT


STRIPE_JS_DEFAULT = "https://js.stripe.com/v3/"


def _origin(url: str) -> str:
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def stripe_js_url(config=None) -> str:
    """Where the card page loads Stripe.js from: STRIPE_JS_URL, else Stripe's own (never
    copied or bundled), or the sandbox's stand-in when the app talks to the sandbox."""
    config = config if config is not None else current_app.config
    configured = (config.get("STRIPE_JS_URL") or "").strip()
    if configured:
        return configured
    if is_sandbox(config):
        return _settings(config)[1] + "/js.stripe.com/v3/"
    return STRIPE_JS_DEFAULT


def card_page_csp(config=None) -> str:
    """The Content-Security-Policy of the card page only: the strict policy of every page,
    plus Stripe.js's script, its frames and its API (the sandbox's origin against the
    sandbox). Every other page keeps the policy that allows no third party."""
    config = config if config is not None else current_app.config
    js = _origin(stripe_js_url(config))
    if is_sandbox(config):
        api, frames = _origin(_settings(config)[1]), js
    else:
        api, frames = "https://api.stripe.com", f"{js} https://hooks.stripe.com"
    return ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
            f"script-src 'self' {js}; frame-src {frames}; connect-src 'self' {api}; "
            "frame-ancestors 'none'; form-action 'self'")


def _build_client(key: str, base: str, timeout: float) -> stripe.StripeClient:
    if not key:
        raise PaymentError("gateway_not_configured", "STRIPE_SECRET_KEY is not set.")
    sandbox = bool(base) and base != STRIPE_API_BASE_DEFAULT
    options: dict[str, Any] = {
        # The sandbox ignores idempotency keys: a retried POST could hold twice.
        "max_network_retries": 0 if sandbox else 2,
        "http_client": stripe.RequestsClient(timeout=timeout),
    }
    if base:
        options["base_addresses"] = {"api": base}
    return stripe.StripeClient(key, **options)


def _client_for(config) -> stripe.StripeClient:
    settings = _settings(config)
    client = _clients.get(settings)
    if client is None:
        with _clients_lock:
            client = _clients.get(settings)
            if client is None:
                client = _clients[settings] = _build_client(*settings)
    return client


def _client() -> stripe.StripeClient:
    return _client_for(current_app.config)


def _v1():
    return _client().v1


# ------------------------------------------------------------------ helpers
def _as_dict(obj) -> dict:
    """stripe-python 16's objects are not dicts: work with plain dicts from here on."""
    if obj is None:
        return {}
    if isinstance(obj, dict):
        return obj
    return obj.to_dict()


def _hold_from(intent) -> Hold:
    intent = _as_dict(intent)
    charge = intent.get("latest_charge")
    if charge is not None and not isinstance(charge, str):
        charge = charge.get("id")
    metadata = intent.get("metadata") or {}
    return Hold(id=intent["id"], status=intent["status"], amount=int(intent["amount"]),
                currency=str(intent["currency"]).upper(), charge_id=charge,
                metadata={str(k): str(v) for k, v in dict(metadata).items()},
                created=intent.get("created"), payment_method=_id_of(intent.get("payment_method")),
                client_secret=intent.get("client_secret"))


def _minor(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amounts are integers in minor units, not {type(amount).__name__}")
    if amount <= 0:
        raise ValueError("amount must be positive")
    return amount


def _error_body(exc: stripe.StripeError) -> dict:
    body = exc.json_body if isinstance(getattr(exc, "json_body", None), dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def _translate(exc: stripe.StripeError, intent_id: str | None = None) -> PaymentError:
    if isinstance(exc, stripe.APIConnectionError):
        return GatewayUnavailable("gateway_unavailable", exc.user_message or str(exc),
                                  intent_id=intent_id)
    status = getattr(exc, "http_status", None)
    body = _error_body(exc)
    code = getattr(exc, "code", None) or body.get("code")
    if not code:
        code = {401: "authentication_failed", 404: "resource_missing",
                429: "rate_limited"}.get(status) or ("gateway_error" if (status or 500) >= 500
                                                      else "invalid_request")
    message = getattr(exc, "user_message", None) or body.get("message") or str(exc)
    cls = CardDeclined if isinstance(exc, stripe.CardError) else PaymentError
    return cls(code, message, http_status=status, decline_code=body.get("decline_code"),
               intent_id=intent_id)


def _metadata(metadata: dict | None) -> dict[str, str]:
    # Stripe metadata values are strings (at most 50 keys, 500 characters each).
    return {str(k): "" if v is None else str(v) for k, v in (metadata or {}).items()}


# ----------------------------------------------------------------- operations
def _create_intent(params: dict, idempotency_key: str | None):
    """Create a PaymentIntent; a decline is CardDeclined with the declined intent (cancelled
    here, so it holds nothing), any other refusal its PaymentError."""
    options = {"idempotency_key": idempotency_key} if idempotency_key else {}
    try:
        return _v1().payment_intents.create(params=params, options=options)
    except stripe.CardError as exc:
        error = _translate(exc)
        error.intent_id = _declined_intent_id(exc)
        if error.intent_id:
            _cancel_quietly(error.intent_id)
        raise error from exc
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def hold(amount_minor: int, currency: str, payment_method: str, metadata: dict,
         *, idempotency_key: str | None = None, customer: str | None = None) -> Hold:
    """Authorise `amount_minor` on the card: a PaymentIntent with capture_method=manual,
    confirmed at creation. Returns a Hold in status "requires_capture". A decline raises
    CardDeclined; a card asking for 3-D Secure raises PaymentError
    "authentication_required"; in both cases the intent is cancelled, nothing is held."""
    params: dict[str, Any] = {
        "amount": _minor(amount_minor),
        "currency": currency.lower(),
        "payment_method": payment_method,
        # "card" only: real Stripe then needs no return_url for confirm=True.
        "payment_method_types": ["card"],
        "capture_method": "manual",
        "confirm": True,
        "metadata": _metadata(metadata),
        "expand": ["latest_charge"],
    }
    if customer:  # a card typed in the page is attached to the buyer's Customer
        params["customer"] = customer
    params.update(current_app.config.get("STRIPE_INTENT_EXTRA_PARAMS") or {})
    intent = _create_intent(params, idempotency_key)

    result = _hold_from(intent)
    if result.status != "requires_capture":
        _cancel_quietly(result.id)
        code = ("authentication_required" if result.status == "requires_action"
                else "unexpected_state")
        raise PaymentError(code, f"The payment is in state {result.status}, not held.",
                           intent_id=result.id)
    return result


def _declined_intent_id(exc: stripe.CardError) -> str | None:
    """Stripe puts the PaymentIntent in the error; localstripe only the charge id."""
    body = _error_body(exc)
    intent = body.get("payment_intent")
    if isinstance(intent, dict):
        return intent.get("id")
    if isinstance(intent, str):
        return intent
    charge_id = body.get("charge")
    if charge_id:
        try:
            charge = _as_dict(_v1().charges.retrieve(charge_id))
            return charge.get("payment_intent")
        except stripe.StripeError:
            return None
    return None


def find_intents(key: str, value: str) -> list[Hold]:
    """Every PaymentIntent whose metadata `key` is `value` (Minga tags each hold with
    order_id, pool_id and coop_id), oldest first. Stripe: the Search API (its index lags
    by up to a minute: callers wait that long before trusting "none"); the sandbox has no
    search, so its list is read whole and filtered (it answers at once)."""
    if not is_sandbox():
        query = f"metadata['{_search_text(key)}']:'{_search_text(value)}'"
        found = _search({"query": query, "limit": 100})
    else:
        found = [h for h in _list_all() if h.metadata.get(key) == value]
    return sorted(found, key=lambda h: (h.created or 0, h.id))


def live_holds() -> list[Hold]:
    """Every PaymentIntent holding money now (status requires_capture), with its metadata."""
    if not is_sandbox():
        return _search({"query": "status:'requires_capture'", "limit": 100})
    return [h for h in _list_all() if h.status == "requires_capture"]


def _search_text(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("'", "\\'")


def _search(params: dict) -> list[Hold]:
    try:
        page = _v1().payment_intents.search(params={**params, "expand": ["data.latest_charge"]})
        return [_hold_from(item) for item in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def _list_all() -> list[Hold]:
    try:
        page = _v1().payment_intents.list(params={"limit": 100})
        return [_hold_from(item) for item in page.auto_paging_iter()]
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def _cancel_quietly(intent_id: str) -> None:
    try:
        cancel(intent_id)
    except PaymentError:
        current_app.logger.warning("could not cancel PaymentIntent %s", intent_id)


def retrieve(intent_id: str) -> Hold:
    try:
        intent = _v1().payment_intents.retrieve(
            intent_id, params={"expand": ["latest_charge"]})
    except stripe.StripeError as exc:
        raise _translate(exc, intent_id) from exc
    return _hold_from(intent)


def cancel(intent_id: str) -> str:
    """Release a hold. Returns the intent's status ("canceled"). Cancelling an intent
    already cancelled is fine; one already captured raises PaymentError."""
    try:
        return _as_dict(_v1().payment_intents.cancel(intent_id))["status"]
    except stripe.StripeError as exc:
        if isinstance(exc, stripe.InvalidRequestError) and getattr(exc, "http_status", 0) == 400:
            current = retrieve(intent_id)
            if current.status == "canceled":
                return current.status
            raise PaymentError("unexpected_state",
                               f"Cannot cancel a payment in state {current.status}.",
                               http_status=400, intent_id=intent_id) from exc
        raise _translate(exc, intent_id) from exc


def capture(intent_id: str, amount_minor: int, metadata: dict | None = None) -> Hold:
    """Take `amount_minor` (at most the amount held) from the hold; a smaller amount
    releases the rest. An intent already captured is returned as it is, without error
    (check the amount captured against your own records). A cancelled or failed one
    raises PaymentError "unexpected_state".

    `metadata` (coop_id, pool_id, order_id) is what the captured payment must carry: an
    intent that lacks any of it (a hold made before Minga tagged holds) is tagged first, so
    every capture names its coop at Stripe. The sandbox refuses metadata on capture itself;
    Stripe and the sandbox both take it as an update of the intent.

    The state is read first: localstripe captures even a *cancelled* intent (Stripe
    refuses), which would put a charge in its balance that nobody holds."""
    amount = _minor(amount_minor)
    current = retrieve(intent_id)
    if current.status == "succeeded":
        return current
    if current.status != "requires_capture":
        raise PaymentError("unexpected_state",
                           f"Cannot capture a payment in state {current.status}.",
                           intent_id=intent_id)
    if amount > current.amount:
        raise PaymentError("amount_too_large",
                           f"Cannot capture {amount}: only {current.amount} is held.",
                           intent_id=intent_id)
    wanted = _metadata(metadata)
    if any(current.metadata.get(k) != v for k, v in wanted.items()):
        try:
            _v1().payment_intents.update(intent_id, params={"metadata": wanted})
        except stripe.StripeError as exc:
            raise _translate(exc, intent_id) from exc
    params = {"amount_to_capture": amount, "expand": ["latest_charge"]}
    try:
        intent = _v1().payment_intents.capture(intent_id, params=params)
    except stripe.StripeError as exc:
        if isinstance(exc, stripe.InvalidRequestError) and getattr(exc, "http_status", 0) == 400:
            current = retrieve(intent_id)  # captured meanwhile by someone else?
            if current.status == "succeeded":
                return current
            raise PaymentError("unexpected_state",
                               f"Cannot capture a payment in state {current.status}.",
                               http_status=400, intent_id=intent_id) from exc
        raise _translate(exc, intent_id) from exc
    return _hold_from(intent)


def refund(intent_id: str, amount_minor: int, idempotency_key: str,
           metadata: dict | None = None) -> str:
    """Refund `amount_minor` of a captured payment; returns the refund id. The sandbox
    neither checks the ceiling nor honours the idempotency key: callers check both.
    The key is also stored in the refund's metadata (minga_idempotency_key), with
    `metadata` (coop_id, pool_id, order_id: whose money it is)."""
    params = {"payment_intent": intent_id, "amount": _minor(amount_minor),
              "metadata": {**_metadata(metadata), "minga_idempotency_key": idempotency_key}}
    try:
        created = _v1().refunds.create(params=params,
                                       options={"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _translate(exc, intent_id) from exc
    return created["id"]


def balance_transactions(starting_after: str | None = None,
                         limit: int = 100) -> Iterator[dict]:
    """Every balance transaction (charges, refunds...), page by page (`limit` a page).
    Each a dict of id, type, source, amount, fee, net, currency, available_on, created,
    "charge" (for a refund, the charge it is on), "payment_intent" (the intent the charge
    or refund is of) and "coop_id" (the source's metadata coop_id, or None): the source is
    expanded to learn them. Amounts in minor units, currency upper case. Order is the
    API's: Stripe gives newest first; do not rely on it. The platform's one account holds
    every coop's money: the caller keeps only its own."""
    params: dict[str, Any] = {"limit": int(limit), "expand": ["data.source"]}
    if starting_after:
        params["starting_after"] = starting_after
    try:
        page = _v1().balance_transactions.list(params=params)
        for txn in page.auto_paging_iter():
            txn = _as_dict(txn)
            source, charge, intent, coop_id = txn.get("source"), None, None, None
            if source is not None and not isinstance(source, str):
                # Expanded: a refund names the charge it gives money back on; a charge or a
                # refund names its PaymentIntent and carries Minga's metadata.
                if source.get("object") == "refund":
                    charge = _id_of(source.get("charge"))
                intent = _id_of(source.get("payment_intent"))
                meta = source.get("metadata")
                if isinstance(meta, dict) and meta.get("coop_id"):
                    coop_id = str(meta["coop_id"])
                source = source.get("id")
            yield {"id": txn["id"], "type": txn["type"], "source": source, "charge": charge,
                   "payment_intent": intent, "coop_id": coop_id,
                   "amount": int(txn["amount"]), "fee": int(txn.get("fee") or 0),
                   "net": int(txn["net"]), "currency": str(txn["currency"]).upper(),
                   "available_on": txn.get("available_on"), "created": txn.get("created")}
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def _id_of(value) -> str | None:
    """An id, whether Stripe sent it as a string or as an expanded object."""
    if value is None or isinstance(value, str):
        return value or None
    return value.get("id") if isinstance(value, dict) else None


def verify_webhook(payload: bytes, sig_header: str | None, secret: str,
                   tolerance: int = 300) -> dict:
    """Check a webhook's Stripe-Signature (HMAC-SHA256 over "timestamp.payload" with the
    endpoint secret) and its age; return the event as a plain dict. Raises WebhookInvalid
    on a missing, wrong or stale signature, a timestamp more than `tolerance` seconds in the
    future (refused like a stale one: Stripe's library only checks the past), a missing
    secret, or a body that is not an event: not JSON, nested deeper than the parser can
    follow, or holding a NUL (which no database text column stores)."""
    if not secret:
        raise WebhookInvalid("No webhook secret is configured.")
    if not sig_header:
        raise WebhookInvalid("No Stripe-Signature header.")
    if not tolerance or tolerance <= 0:
        raise WebhookInvalid("A positive tolerance is required.")
    try:
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookInvalid(str(exc).split(". ")[0]) from exc
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError, KeyError) as exc:
        raise WebhookInvalid("The body is not a JSON event.") from exc
    if _signed_at(sig_header) > time.time() + tolerance:
        raise WebhookInvalid("Timestamp outside the tolerance zone")
    try:
        text = payload.decode("utf-8") if isinstance(payload, (bytes, bytearray)) else payload
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, TypeError, RecursionError) as exc:
        raise WebhookInvalid("The body is not a JSON event.") from exc
    if not isinstance(data, dict):
        raise WebhookInvalid("The body is not a Stripe event.")
    if "\x00" in text or _ESCAPED_NUL.search(text):
        raise WebhookInvalid("The event holds a NUL character.")
    if not data.get("id") or not data.get("type"):
        raise WebhookInvalid("The body is not a Stripe event.")
    return data


_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _signed_at(sig_header: str) -> int:
    """The t= of a Stripe-Signature header verify_header accepted."""
    for part in sig_header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t":
            return int(value)
    raise WebhookInvalid("No timestamp in the Stripe-Signature header.")


def find_refund(intent_id: str, idempotency_key: str) -> str | None:
    """The id of a refund of this payment made with `idempotency_key` (looked up in the
    refunds' metadata), or None. Lets a rerun after a crash find a refund Stripe already
    made, since the sandbox does not honour idempotency keys (and Stripe forgets them)."""
    try:
        page = _v1().refunds.list(params={"payment_intent": intent_id, "limit": 100})
        for item in page.auto_paging_iter():
            item = _as_dict(item)
            if (item.get("metadata") or {}).get("minga_idempotency_key") == idempotency_key \
                    and item.get("status") not in ("failed", "canceled"):
                return item["id"]
    except stripe.StripeError as exc:
        raise _translate(exc, intent_id) from exc
    return None


# ------------------------------------------------------------ card entry (Stripe.js)
# The two-step hold: the PaymentIntent is made here without a card (nothing held) and the
# buyer's page confirms it with Stripe.js (3-D Secure where the bank asks). Minga believes
# only what it retrieves from Stripe afterwards (see coop/pools/cards.py).

def card_intent(amount_minor: int, currency: str, metadata: dict, *,
                customer: str | None = None, payment_method: str | None = None,
                idempotency_key: str | None = None) -> Hold:
    """A manual-capture PaymentIntent for the buyer's page to confirm. Without
    `payment_method`: not confirmed (status requires_payment_method). With one (a saved
    card): confirmed at once; the answer may be requires_capture (held) or requires_action
    (the bank asks the buyer: the page finishes it); a decline raises CardDeclined with the
    intent cancelled."""
    params: dict[str, Any] = {
        "amount": _minor(amount_minor),
        "currency": currency.lower(),
        "payment_method_types": ["card"],
        "capture_method": "manual",
        "metadata": _metadata(metadata),
    }
    if customer:
        params["customer"] = customer
    if payment_method:
        params.update(payment_method=payment_method, confirm=True, expand=["latest_charge"])
    params.update(current_app.config.get("STRIPE_INTENT_EXTRA_PARAMS") or {})
    intent = _create_intent(params, idempotency_key)
    return _hold_from(intent)


def confirm_card(intent_id: str, payment_method: str) -> Hold:
    """Give a PaymentIntent the card a SetupIntent made and confirm it (server side: the
    sandbox refuses a payment method on confirm itself, so it is set by an update first).
    Returns the intent (requires_capture, or requires_action for the page to finish); a
    decline raises CardDeclined (the intent stays, asking for another card)."""
    try:
        _v1().payment_intents.update(intent_id, params={"payment_method": payment_method})
        intent = _v1().payment_intents.confirm(intent_id, params={"expand": ["latest_charge"]})
    except stripe.StripeError as exc:
        raise _translate(exc, intent_id) from exc
    return _hold_from(intent)


def create_customer(metadata: dict) -> str:
    """A Stripe Customer (for a buyer); returns its id."""
    try:
        return _as_dict(_v1().customers.create(params={"metadata": _metadata(metadata)}))["id"]
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def setup_intent(customer: str | None, metadata: dict) -> tuple[str, str]:
    """A SetupIntent for the buyer's page (Stripe.js confirmCardSetup turns the typed card
    into a PaymentMethod, with 3-D Secure where the bank asks). Returns (id, client_secret)."""
    params: dict[str, Any] = {"usage": "on_session", "payment_method_types": ["card"],
                              "metadata": _metadata(metadata)}
    if customer:
        params["customer"] = customer
    try:
        created = _as_dict(_v1().setup_intents.create(params=params))
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return created["id"], created["client_secret"]


def retrieve_setup_intent(setup_id: str) -> dict:
    """{"id", "status", "payment_method", "client_secret", "metadata"} of a SetupIntent."""
    try:
        found = _as_dict(_v1().setup_intents.retrieve(setup_id))
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    return {"id": found["id"], "status": found.get("status"),
            "payment_method": _id_of(found.get("payment_method")),
            "client_secret": found.get("client_secret"),
            "metadata": {str(k): str(v) for k, v in dict(found.get("metadata") or {}).items()}}


def card_details(payment_method: str) -> dict:
    """What a buyer recognises a card by: {"brand", "last4", "exp_month", "exp_year",
    "customer"} (empty values where Stripe says nothing)."""
    try:
        found = _as_dict(_v1().payment_methods.retrieve(payment_method))
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
    card = found.get("card") or {}
    return {"brand": str(card.get("brand") or "")[:20], "last4": str(card.get("last4") or "")[:4],
            "exp_month": int(card.get("exp_month") or 0), "exp_year": int(card.get("exp_year") or 0),
            "customer": _id_of(found.get("customer"))}


def attach_card(payment_method: str, customer: str) -> None:
    """Attach a PaymentMethod to a Customer (Stripe does it itself for a SetupIntent made
    with the customer; the sandbox does not)."""
    try:
        _v1().payment_methods.attach(payment_method, params={"customer": customer})
    except stripe.StripeError as exc:
        raise _translate(exc) from exc


def detach_card(payment_method: str) -> None:
    """Detach a saved card from its Customer: it can no longer be charged. One detached
    already (or unknown to Stripe) is fine."""
    try:
        _v1().payment_methods.detach(payment_method)
    except stripe.InvalidRequestError:
        pass
    except stripe.StripeError as exc:
        raise _translate(exc) from exc
