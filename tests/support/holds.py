"""Helpers of tests/pools/test_holds.py: what the sandbox holds, set against Minga's
records, and a worker process that dies between Stripe's answer and the record.

    python -m tests.support.holds DATABASE_URL API_BASE SECRET_KEY USER_ID POOL_ID KG KEY

places one order in a process of its own and kills itself (SIGKILL, no cleanup, as the
kernel's OOM killer or a gunicorn timeout would) right after the card hold is made."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from coop.extensions import db
from coop.ledger.models import LedgerEntry
from coop.pools.models import Order

ROOT = Path(__file__).resolve().parents[2]


def sandbox_intents(sandbox) -> list[dict]:
    """Every PaymentIntent the sandbox holds (id, status, amount, metadata)."""
    found, after = [], None
    while True:
        path = "/v1/payment_intents?limit=100" + (f"&starting_after={after}" if after else "")
        page = sandbox.get(path)
        found += page["data"]
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def live_holds(sandbox) -> dict[str, int]:
    """PaymentIntent id -> amount of every hold live at the sandbox (requires_capture)."""
    return {pi["id"]: pi["amount"] for pi in sandbox_intents(sandbox)
            if pi["status"] == "requires_capture"}


def authorized_orders() -> dict[str, int]:
    """PaymentIntent id -> amount of every order Minga records as authorized."""
    db.session.expire_all()
    return dict(db.session.execute(select(Order.payment_intent_id, Order.amount_authorized_minor)
                                   .where(Order.status == "authorized")).all())


def assert_holds_agree(sandbox) -> None:
    """No live hold at the sandbox without an authorized order (and the other way round),
    the sums equal, and the ledger's pending card holds are exactly those orders'."""
    live, authorized = live_holds(sandbox), authorized_orders()
    assert live == authorized
    assert sum(live.values()) == sum(authorized.values())
    pending = sorted(db.session.scalars(select(LedgerEntry.source_id).where(
        LedgerEntry.kind == "card_hold", LedgerEntry.status == "pending")))
    ids = sorted(db.session.scalars(select(Order.id).where(Order.status == "authorized")))
    assert pending == ids


def place_order_and_die(database_url: str, sandbox, user_id: int, pool_id: int, kg: str,
                        key: str) -> int:
    """Run the dying worker (see the module's docstring); returns its exit status."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.holds", database_url, sandbox.api_base,
         sandbox.secret_key, str(user_id), str(pool_id), kg, key],
        cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode(errors="replace")[-3000:]
    return proc.returncode


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _main(database_url, api_base, secret_key, user_id, pool_id, kg, key) -> None:
    from coop import create_app
    from coop.auth.models import User
    from coop.pools import services as pools
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url,
                     STRIPE_SECRET_KEY=secret_key, STRIPE_API_BASE=api_base,
                     HOLD_FAULT_HOOKS={"after_hold": _die})
    with app.app_context():
        user = db.session.get(User, int(user_id))
        pools.place_order(user, int(pool_id), quantity_kg=kg, payment_method="pm_card_visa",
                          idempotency_key=key)
    sys.exit("the worker was meant to die after the hold")


if __name__ == "__main__":
    _main(*sys.argv[1:8])
