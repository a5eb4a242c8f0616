"""Pytest plugin: the local Stripe sandbox (localstripe) for tests that go through the
real gateway over HTTP.

- `stripe_sandbox` (session): one localstripe child process on 127.0.0.1, a free port,
  a private store file; the app's STRIPE_SECRET_KEY / STRIPE_API_BASE /
  STRIPE_WEBHOOK_SECRET point at it. Stopped at the end of the session.
- `stripe_clean`: the same sandbox with its store emptied before the test.
- `live_server` (session): the app served over HTTP in a thread (werkzeug), so that
  localstripe can deliver webhooks to it. `live_server.url` is its base URL.
- `stripe_webhooks_to_app`: localstripe's webhooks go to the live app's
  /stripe/webhook, signed with STRIPE_WEBHOOK_SECRET, for the duration of the test.

localstripe sends an event about a second after the request that caused it, once,
with no retry, to whatever endpoint is registered at that moment: wait for it by
polling, and expect an event from the end of the previous test to arrive late.
"""
from __future__ import annotations

import secrets
import threading

import pytest

from devtools.sandbox import Sandbox

WEBHOOK_ID_APP = "minga-app"


@pytest.fixture(scope="session")
def stripe_sandbox(app):
    sandbox = Sandbox().start()
    saved = {k: app.config.get(k) for k in
             ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")}
    app.config.update(STRIPE_SECRET_KEY=sandbox.secret_key, STRIPE_API_BASE=sandbox.api_base,
                      STRIPE_WEBHOOK_SECRET="whsec_test_" + secrets.token_hex(16))
    try:
        yield sandbox
    finally:
        app.config.update(saved)
        sandbox.stop()


@pytest.fixture
def stripe_clean(stripe_sandbox):
    stripe_sandbox.reset()
    return stripe_sandbox


class LiveServer:
    def __init__(self, app):
        from werkzeug.serving import make_server
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="live-server")

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_server(app):
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe_webhooks_to_app(stripe_clean, live_server, app):
    stripe_clean.register_webhook(f"{live_server.url}/stripe/webhook",
                                  app.config["STRIPE_WEBHOOK_SECRET"], webhook_id=WEBHOOK_ID_APP)
    try:
        yield stripe_clean
    finally:
        stripe_clean.unregister_webhook(WEBHOOK_ID_APP)
