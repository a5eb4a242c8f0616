"""SMS and WhatsApp providers behind one small interface, chosen by the SMS_PROVIDER setting.

A provider is a module here with a `Provider` subclass, and one line in PROVIDERS below:
nothing else in Minga names it. The delivery-report webhook is /messages/status/<name>."""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping

from flask import current_app

from ..outcomes import ChannelError, Sent

# name -> "module:class" in this package, imported when first used.
PROVIDERS = {
    "twilio": "twilio:Twilio",
}

Params = Mapping[str, str] | Iterable[tuple[str, str]]


class Provider:
    """One provider's account, built from the app's config. Subclasses set `name` and
    `signature_header` and implement the three methods."""

    name = ""
    signature_header = ""

    def __init__(self, config: Mapping):
        self.config = config

    def send(self, to: str, body: str, *, channel: str, status_callback: str | None,
             template: str | None = None, variables: dict | None = None) -> Sent:
        """Hand `body` to the provider for `to` ("+57..." for SMS, "whatsapp:+57..." for
        WhatsApp), or the approved `template` with its `variables` in its place; raise
        ChannelError (permanent when the provider refuses the message)."""
        raise NotImplementedError

    def verify_callback(self, url: str, params: Params, signature: str | None) -> bool:
        """Whether a delivery report POSTed to `url` with `params` carries the provider's
        signature for them (False when it is missing or the account has no secret)."""
        raise NotImplementedError

    def parse_callback(self, params: Mapping[str, str]) -> tuple[str, str, str | None]:
        """(provider_id, status, error code or None) of a verified delivery report."""
        raise NotImplementedError


def pairs(params: Params) -> list[tuple[str, str]]:
    """Every (name, value) of a form, a MultiDict's repeated names included."""
    if hasattr(params, "items"):
        try:
            return list(params.items(multi=True))  # werkzeug's MultiDict
        except TypeError:
            return list(params.items())
    return list(params)


def provider(name: str) -> Provider | None:
    """The adapter called `name` with the app's settings; None when there is none."""
    target = PROVIDERS.get(name)
    if target is None:
        return None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(current_app.config)


def configured() -> Provider:
    """The SMS_PROVIDER's adapter (ChannelError when the setting names none)."""
    name = current_app.config.get("SMS_PROVIDER") or ""
    found = provider(name)
    if found is None:
        raise ChannelError(f"no SMS provider called {name!r}", code="not_configured")
    return found
