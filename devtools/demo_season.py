"""`make demo-season`: `flask demo-season` against the local Stripe sandbox when no
STRIPE_SECRET_KEY is set (the sandbox lives as long as this process)."""
from __future__ import annotations

import sys

from flask.cli import main as flask_main

from .sandbox import ensure_dev_sandbox


def main() -> None:
    ensure_dev_sandbox("development")  # sets STRIPE_SECRET_KEY and STRIPE_API_BASE for the app
    sys.argv = ["flask", "demo-season"]
    flask_main()


if __name__ == "__main__":
    main()
