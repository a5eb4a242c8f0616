"""Helpers for tests of messages: a recorded delivery report replayed into the app."""
from __future__ import annotations


def replay(client, callback: dict, *, signature: str | None = None, params: dict | None = None):
    """POST a report the stand-in recorded to the app, as Twilio sends it (its path taken
    from the recorded URL; `signature` / `params` replace the recorded ones)."""
    from urllib.parse import urlsplit
    url = urlsplit(callback["url"])
    headers = {"X-Twilio-Signature": callback["signature"] if signature is None else signature}
    return client.post(url.path + (f"?{url.query}" if url.query else ""),
                       data=callback["params"] if params is None else params, headers=headers)
