"""`make run`: serve the demo on http://127.0.0.1:5000 (starting the Stripe sandbox if needed)."""
from __future__ import annotations

import os

from coop import create_app

from .sandbox import ensure_dev_sandbox


def start_stripe_sandbox() -> None:
    """Without a STRIPE_SECRET_KEY, the local sandbox, its webhooks sent to this server."""
    port = os.environ.get("PORT", "5000")
    sandbox = ensure_dev_sandbox(os.environ.get("MINGA_ENV", "development"),
                                 webhook_url=f"http://127.0.0.1:{port}/stripe/webhook")
    if sandbox is not None:
        print(f"Stripe sandbox (localstripe) on {sandbox.api_base}; test card pm_card_visa")


def main() -> None:
    start_stripe_sandbox()
    app = create_app(os.environ.get("MINGA_ENV", "development"))
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")),
            debug=False, threaded=True)


if __name__ == "__main__":
    main()
