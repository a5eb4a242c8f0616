"""Reconciliation pulls from Stripe: every hour, one job per verified coop, each reconciling
its own balance transactions. The treasurer's button does the same at once."""
from __future__ import annotations

from datetime import datetime, timezone

from ..jobs import services as jobs


@jobs.periodic("treasury.pull_stripe", 3600)
def enqueue_pulls() -> int:
    from flask import current_app
    from ..cooperatives import services as coops
    if not current_app.config.get("STRIPE_SECRET_KEY"):
        return 0
    hour = datetime.now(timezone.utc).strftime("%Y%m%d%H")
    coop_ids = [coop.id for coop in coops.list_coops()]
    for coop_id in coop_ids:
        jobs.enqueue("treasury.pull_stripe", key=f"stripe-pull:{coop_id}:{hour}",
                     coop_id=coop_id, coop=coop_id)
    return len(coop_ids)


@jobs.task("treasury.pull_stripe")
def pull(coop: int) -> None:
    from ..cooperatives import services as coops
    from . import stripe_reconciliation
    stripe_reconciliation.pull_stripe(coops.get_coop(coop), None)
