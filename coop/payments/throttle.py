"""How many workers call one Stripe account at once, and the back-off after its 429.

A semaphore in the database, so that it holds across processes and machines: an account has
SETTLE_CONCURRENCY_PER_ACCOUNT slot rows; `acquire` takes a free one (or one whose lease ran
out: its holder died) in one UPDATE and commits, `release` frees it. The slot is a lease, not
a row lock: no transaction is open while its holder calls Stripe. A 429 puts the account in
back-off (`rate_limited`): nobody acquires a slot before it ends, and each 429 in a row
doubles it (SETTLE_BACKOFF_BASE_SECONDS up to SETTLE_BACKOFF_MAX_SECONDS); a call that went
through clears it (`cleared`)."""
from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from ..common.models import utcnow
from ..extensions import db
from .gateway import _settings
from .models import StripeSlot, StripeThrottle


def account_key(config=None) -> str:
    """A short name of the Stripe account the app is configured for (its key and address
    hashed: the key itself is never stored)."""
    key, base, _timeout = _settings(config if config is not None else current_app.config)
    return hashlib.sha256(f"{base}|{key}".encode()).hexdigest()[:24]


def concurrency() -> int:
    return max(1, int(current_app.config.get("SETTLE_CONCURRENCY_PER_ACCOUNT", 4)))


def _seconds(name: str, default: float) -> float:
    return float(current_app.config.get(name, default))


def acquire(account: str, holder: str, *, lease_seconds: float,
            now: datetime | None = None) -> datetime | None:
    """Take a slot of `account` for `holder` until now + lease (committed). Returns None when
    taken, else when to try again (the back-off's end, or in a second or so: all slots busy)."""
    now = now or utcnow()
    until = db.session.scalar(select(StripeThrottle.until).where(
        StripeThrottle.account == account))
    if until is not None and until > now:
        db.session.commit()
        return until + timedelta(milliseconds=random.randint(0, 250))
    limit = concurrency()
    for _try in range(2):
        if _take(account, holder, limit, now + timedelta(seconds=lease_seconds), now):
            db.session.commit()
            return None
        have = db.session.scalar(select(func.count()).select_from(StripeSlot).where(
            StripeSlot.account == account, StripeSlot.slot < limit))
        if have >= limit:
            break
        for slot in range(limit):  # first use of the account (or a larger limit)
            _add_slot(account, slot)
        db.session.commit()
    db.session.commit()
    return now + timedelta(milliseconds=500 + random.randint(0, 1000))


def _add_slot(account: str, slot: int) -> None:
    table = StripeSlot.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(table).values(account=account, slot=slot)
                       .on_conflict_do_nothing(index_elements=["account", "slot"]))


def _take(account: str, holder: str, limit: int, lease_until: datetime, now: datetime) -> bool:
    free = and_(StripeSlot.account == account, StripeSlot.slot < limit,
                or_(StripeSlot.holder.is_(None), StripeSlot.lease_until < now))
    pick = select(StripeSlot.slot).where(free).order_by(StripeSlot.slot).limit(1)
    if db.session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    taken = db.session.execute(
        update(StripeSlot).where(free, StripeSlot.slot == pick.scalar_subquery())
        .values(holder=holder, lease_until=lease_until)
        .returning(StripeSlot.slot).execution_options(synchronize_session=False)).first()
    return taken is not None


def renew(account: str, holder: str, *, lease_seconds: float) -> None:
    """Push the holder's lease on (a long chunk); the caller commits."""
    db.session.execute(update(StripeSlot).where(StripeSlot.account == account,
                                                StripeSlot.holder == holder)
                       .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
                       .execution_options(synchronize_session=False))


def release(account: str, holder: str) -> None:
    """Free the holder's slot; the caller commits."""
    db.session.execute(update(StripeSlot).where(StripeSlot.account == account,
                                                StripeSlot.holder == holder)
                       .values(holder=None, lease_until=None)
                       .execution_options(synchronize_session=False))


def rate_limited(account: str, now: datetime | None = None) -> datetime:
    """Stripe answered 429: the account backs off, twice as long as last time in a row.
    Returns when it may be called again; the caller commits."""
    now = now or utcnow()
    base = _seconds("SETTLE_BACKOFF_BASE_SECONDS", 2)
    cap = _seconds("SETTLE_BACKOFF_MAX_SECONDS", 120)
    if db.session.get(StripeThrottle, account) is None:
        _add_throttle(account)
    level = db.session.scalar(
        update(StripeThrottle).where(StripeThrottle.account == account)
        .values(level=StripeThrottle.level + 1).returning(StripeThrottle.level)
        .execution_options(synchronize_session=False))
    wait = min(cap, base * 2 ** max(0, level - 1))
    until = now + timedelta(seconds=wait * (1 + random.random() / 10))
    db.session.execute(update(StripeThrottle).where(StripeThrottle.account == account)
                       .values(until=until).execution_options(synchronize_session=False))
    return until


def _add_throttle(account: str) -> None:
    table = StripeThrottle.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    db.session.execute(insert(table).values(account=account, level=0)
                       .on_conflict_do_nothing(index_elements=["account"]))


def cleared(account: str) -> None:
    """Calls went through: the next 429 starts the back-off from its base again (no write
    when there is nothing to clear); the caller commits."""
    db.session.execute(update(StripeThrottle).where(StripeThrottle.account == account,
                                                    StripeThrottle.level > 0)
                       .values(level=0).execution_options(synchronize_session=False))
