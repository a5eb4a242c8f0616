"""The pools' background work: closing each pool at its time (celery beat looks every
minute) and finishing a settlement Stripe interrupted. `flask pools close-due` does the same
by hand."""
from __future__ import annotations

from sqlalchemy import select

from ..common.errors import DomainError, NotFound
from ..common.models import utcnow
from ..extensions import db
from ..jobs import services as jobs
from .models import Pool


@jobs.periodic("pools.close_due", 60)
def enqueue_due_closes() -> int:
    """A close job for every pool past its closing time, and for every close a crash left
    unsettled (one job per pool, however many times beat asks)."""
    now = utcnow()
    due = list(db.session.execute(select(Pool.id, Pool.coop_id).where(
        ((Pool.status == "open") & (Pool.closes_at <= now))
        | ((Pool.status != "open") & Pool.settled_at.is_(None)))))
    for pool_id, coop_id in due:
        jobs.enqueue("pools.close", key=f"pool-close:{pool_id}", coop_id=coop_id,
                     pool_id=pool_id)
    return len(due)


@jobs.task("pools.close")
def close(pool_id: int) -> None:
    """Close (decide, allocate, settle) one pool; a rerun finishes what is left (the saga's
    steps are each recorded). Stripe unreachable: raised, so the job is tried again."""
    from . import closing
    try:
        closing.close_pool(pool_id, on_demand=False)
    except NotFound:
        return  # no such pool (any more): nothing to close
    except DomainError as exc:
        if exc.code == "payment_unavailable":
            raise RuntimeError("Stripe unavailable") from exc
        if exc.code != "pool_closed":
            raise


@jobs.periodic("pools.resolve_holds", 120)
def resolve_unknown_holds() -> None:
    """Card holds whose outcome is unknown, settled against Stripe (`flask pools
    resolve-holds` by hand). Stripe unreachable: tried again at the next run."""
    from flask import current_app
    from ..payments.gateway import PaymentError
    from . import resolver
    if not current_app.config.get("STRIPE_SECRET_KEY") and \
            not current_app.config.get("STRIPE_API_BASE"):
        return
    try:
        resolver.resolve_holds()
    except PaymentError:
        db.session.rollback()


@jobs.periodic("pools.reminders", 3600)
def remind() -> None:
    """Pools closing within 24 hours: buyers told, managers told when it is short."""
    from . import notices
    notices.remind()


@jobs.periodic("pools.expire_card_orders", 60)
def expire_card_orders() -> None:
    """Orders whose card the buyer did not confirm in time (CARD_AUTH_TIMEOUT_SECONDS):
    checked with Stripe, else ended, their grams back in the pool, their PaymentIntents
    cancelled. Stripe unreachable: tried again at the next run."""
    from flask import current_app
    from ..payments.gateway import PaymentError
    from . import cards
    if not current_app.config.get("STRIPE_SECRET_KEY") and \
            not current_app.config.get("STRIPE_API_BASE"):
        return
    try:
        cards.expire_card_orders()
    except PaymentError:
        db.session.rollback()


@jobs.task("pools.confirm_card")
def confirm_card(order_id: int) -> None:
    """A webhook said an order's card may be confirmed: check with Stripe (once, whoever
    asks first). Stripe unreachable: raised, so the job is tried again."""
    from . import cards
    try:
        cards.confirm_card_order(order_id)
    except DomainError as exc:
        if exc.code == "payment_unavailable":
            raise RuntimeError("Stripe unavailable") from exc
        raise
