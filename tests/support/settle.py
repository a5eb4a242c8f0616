"""Closing a pool in a test and settling it at once: closing writes the settlement's chunk
jobs (coop/pools/settlement.py) and a test outside a request runs them itself."""
from __future__ import annotations

from coop.extensions import db
from coop.pools import services as pools, settlement
from coop.pools.models import Pool


def settle_now(pool_id: int | None = None):
    """Run every settlement job to the end; the pool fresh from the database (or None)."""
    settlement.drain()
    db.session.expire_all()
    return db.session.get(Pool, pool_id) if pool_id is not None else None


def close_and_settle(pool_id: int, **kwargs) -> Pool:
    """`pools.close_pool`, then its settlement run to the end, as the workers would."""
    pools.close_pool(pool_id, **kwargs)
    return settle_now(pool_id)


def cancel_and_settle(pool_id: int, **kwargs) -> Pool:
    pools.cancel_pool(pool_id, **kwargs)
    return settle_now(pool_id)
