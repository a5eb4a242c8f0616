"""Settling a decided pool on the queue: capture (confirmed) or cancel (failed, cancelled)
every card hold it left authorized, in chunk jobs that any number of workers share.

Closing decides the outcome in its request and, in the same transaction, writes one
`pools.settle` job per SETTLE_CHUNK_SIZE holds (`enqueue`). A chunk job:

1. takes one of its Stripe account's SETTLE_CONCURRENCY_PER_ACCOUNT slots
   (coop/payments/throttle.py: a lease in the database, so the bound holds across machines;
   none free, or the account backing off after a 429: `jobs.Later`, no attempt counted);
2. claims its holds still authorized in one UPDATE ... RETURNING (a claim is a lease too:
   SETTLE_CLAIM_SECONDS; a claim whose run died runs out and the job's next run takes it
   again) and commits: no transaction is open while Stripe answers;
3. calls Stripe for each hold (capture or cancel: both are no-ops on an intent already
   captured or cancelled, so a rerun after a crash between Stripe and the record never
   takes twice);
4. records the chunk in one transaction: the orders' statuses by executemany, the holds'
   ledger entries marked in one UPDATE, the capture entries through the ledger's bulk
   writer (the same idempotency keys as one capture at a time: a replay never posts twice);
   the slot freed.

Stripe's 429 stops the chunk: what was done is recorded, the rest is released, the account
backs off exponentially and the job runs again after it (`jobs.Later`). Any other failure
(no answer, a 5xx) records what was done and raises: the job is tried again with the
queue's back-off, then parked for the staff. The chunk that finds no hold of its pool left
authorized marks the pool settled (once: a conditional UPDATE) and writes the job that
tells its buyers what was captured or released (`pools.tell_settled`, once per pool)."""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, or_, select, update

from ..common.models import utcnow
from ..common.statuses import OrderStatus
from ..extensions import db
from ..invoices import services as invoices
from ..jobs import services as jobs
from ..ledger import bulk as ledger_bulk, services as ledger
from ..payments import gateway, throttle
from . import notices
from .models import Order, Pool

TASK = "pools.settle"
_orders = Order.__table__


def chunk_size() -> int:
    return max(1, int(current_app.config.get("SETTLE_CHUNK_SIZE", 50)))


def claim_seconds() -> float:
    return float(current_app.config.get("SETTLE_CLAIM_SECONDS", 300))


def _key_prefix(pool_id: int) -> str:
    return f"pool-settle:{pool_id}:"


def enqueue(pool: Pool, order_ids: list[int]) -> list[int]:
    """The chunk jobs that settle these orders of `pool`, in the current transaction."""
    if pool.status == "confirmed":
        # The accounts the captures post to, opened here once: chunks running at once must
        # not race to open them.
        for code in ("stripe_clearing", "buyer_deposits"):
            ledger.account(pool.coop, code)
    size = chunk_size()
    chunks = [order_ids[i:i + size] for i in range(0, len(order_ids), size)]
    batch = secrets.token_hex(4)
    return jobs.enqueue_many(
        TASK, [{"pool_id": pool.id, "order_ids": chunk} for chunk in chunks],
        coop_id=pool.coop_id,
        keys=[f"{_key_prefix(pool.id)}{batch}:{n}" for n in range(len(chunks))])


def held_ids(pool_id: int) -> list[int]:
    return list(db.session.scalars(select(Order.id).where(
        Order.pool_id == pool_id, Order.status == OrderStatus.AUTHORIZED).order_by(Order.id)))


def begin(pool: Pool, now: datetime) -> None:
    """In the transaction that decides the pool: what is left to settle, and its jobs (a
    pool with no hold is settled at once)."""
    ids = held_ids(pool.id)
    pool.settle_total = len(ids)
    if ids:
        enqueue(pool, ids)
    else:
        pool.settled_at = now


def resume(pool_id: int, now: datetime | None = None) -> None:
    """A decided pool not settled (closing again, close-due after a crash): marks it
    settled when nothing is left, or writes chunk jobs for the holds left when no job of
    its settlement is still to run (parked ones, or a pool decided before settlement ran on
    the queue). Commits."""
    pool = db.session.get(Pool, pool_id)
    if pool is None or pool.status == "open" or pool.settled_at is not None:
        db.session.commit()
        return
    ids = held_ids(pool_id)
    if not ids:
        db.session.commit()
        finish(pool_id, now)
        return
    if not jobs.live(TASK, _key_prefix(pool_id)):
        if not pool.settle_total:
            pool.settle_total = len(ids) + _settled_count(pool_id)
        enqueue(pool, ids)
    db.session.commit()


def _settled_count(pool_id: int) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Order).where(
        Order.pool_id == pool_id,
        Order.status.in_((OrderStatus.CAPTURED, OrderStatus.CANCELLED)))) or 0)


def finish(pool_id: int, now: datetime | None = None) -> bool:
    """Marks the pool settled when no hold of it is left authorized (in its own transaction,
    after the chunk's commit, so that of two chunks ending at once the later one sees the
    other's record). True for the one call that marked it."""
    left = db.session.scalar(select(func.count()).select_from(Order).where(
        Order.pool_id == pool_id, Order.status == OrderStatus.AUTHORIZED))
    if left:
        db.session.commit()
        return False
    marked = db.session.execute(
        update(Pool).where(Pool.id == pool_id, Pool.settled_at.is_(None), Pool.status != "open")
        .values(settled_at=now or utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1
    if marked:
        # What follows the settlement, once: the buyers told (a fan-out job of its own, so
        # that no chunk waits on it).
        coop_id = db.session.scalar(select(Pool.coop_id).where(Pool.id == pool_id))
        jobs.enqueue(TELL_TASK, key=f"pool-settled:{pool_id}", coop_id=coop_id,
                     pool_id=pool_id)
    db.session.commit()
    return marked


@jobs.task("pools.tell_settled")
def tell_settled(pool_id: int) -> None:
    """Each buyer of a settled pool told what was captured from their card, or that the hold
    was released; once each (the messages' event keys), however often it runs."""
    pool = db.session.get(Pool, pool_id)
    if pool is None or pool.settled_at is None:
        return
    rows = db.session.execute(select(
        Order.id, Order.user_id, Order.status, Order.currency, Order.quantity_g,
        Order.amount_due_minor, Order.amount_authorized_minor).where(
        Order.pool_id == pool_id, Order.status.in_((OrderStatus.CAPTURED,
                                                    OrderStatus.CANCELLED)))
        .order_by(Order.id)).all()
    notices.settled(pool, [r for r in rows if r.status == OrderStatus.CAPTURED],
                          [r for r in rows if r.status == OrderStatus.CANCELLED])
    db.session.commit()


TELL_TASK = "pools.tell_settled"


def progress(pool: Pool) -> dict:
    """Where the pool's settlement stands: state (open, settling, settled), how many holds
    it had to settle, how many are done, captured, cancelled and failed. One query."""
    counts = dict(db.session.execute(
        select(Order.status, func.count()).where(
            Order.pool_id == pool.id,
            Order.status.in_((OrderStatus.AUTHORIZED, OrderStatus.CAPTURED,
                              OrderStatus.CANCELLED, OrderStatus.FAILED)))
        .group_by(Order.status)).all())
    held = counts.get(OrderStatus.AUTHORIZED, 0)
    captured = counts.get(OrderStatus.CAPTURED, 0)
    cancelled = counts.get(OrderStatus.CANCELLED, 0)
    if pool.status == "open":
        return {"state": "open", "total": held, "done": 0, "captured": 0, "cancelled": 0,
                "failed": 0}
    total = pool.settle_total or (held + captured + cancelled)
    done = max(0, total - held)
    return {"state": "settled" if pool.settled_at is not None else "settling",
            "total": total, "done": done, "captured": captured, "cancelled": cancelled,
            "failed": max(0, done - captured - cancelled)}


# --------------------------------------------------------------------------- the chunk job

@jobs.task(TASK)
def settle_chunk(pool_id: int, order_ids: list[int]) -> None:
    """Capture or cancel these holds of the pool (see the module's docstring)."""
    pool = db.session.get(Pool, pool_id)
    if pool is None or pool.status == "open":
        db.session.commit()
        return
    capture = pool.status == "confirmed"
    coop_id, coop = pool.coop_id, pool.coop
    db.session.commit()
    account = throttle.account_key()
    holder = secrets.token_hex(8)
    lease = claim_seconds()
    wait = throttle.acquire(account, holder, lease_seconds=lease)
    if wait is not None:
        raise jobs.Later(wait)
    later = stop = None
    try:
        claimed = _claim(pool_id, order_ids, holder, lease)
        if claimed:
            done, stop = _call_stripe(claimed, capture, pool_id, coop_id, account, holder,
                                      lease)
            _record(coop, pool, done, [row.id for row in claimed[len(done):]], holder)
            if stop is None:
                throttle.cleared(account)
            elif _rate_limited(stop):
                later, stop = throttle.rate_limited(account), None
        else:
            busy = _busy_until(order_ids)
            if busy is not None:  # a run of this job that died, or is still at Stripe
                later = busy + timedelta(milliseconds=200)
        throttle.release(account, holder)
        db.session.commit()
    except Exception:
        # Only what a live worker sees (a killed one frees nothing: its leases run out).
        db.session.rollback()
        throttle.release(account, holder)
        db.session.commit()
        raise
    if later is not None:
        raise jobs.Later(later)  # nothing lost: the rest is released, tried after the wait
    if stop is not None:
        raise stop  # no answer, a 5xx: the queue tries again later; what was done is kept
    finish(pool_id)


def _rate_limited(exc: gateway.PaymentError) -> bool:
    return exc.http_status == 429 or exc.code in ("rate_limited", "rate_limit")


def _claim(pool_id: int, order_ids: list[int], holder: str, lease: float) -> list:
    now = utcnow()
    rows = db.session.execute(
        update(_orders).where(_orders.c.id.in_(order_ids), _orders.c.pool_id == pool_id,
                              _orders.c.status == OrderStatus.AUTHORIZED,
                              or_(_orders.c.settle_claim_until.is_(None),
                                  _orders.c.settle_claim_until < now))
        .values(settle_claim=holder, settle_claim_until=now + timedelta(seconds=lease))
        .returning(_orders.c.id, _orders.c.user_id, _orders.c.buyer_id,
                   _orders.c.payment_intent_id,
                   _orders.c.charge_id, _orders.c.amount_due_minor,
                   _orders.c.amount_authorized_minor, _orders.c.quantity_g,
                   _orders.c.currency)).all()
    db.session.commit()
    return sorted(rows, key=lambda row: row.id)


def _busy_until(order_ids: list[int]) -> datetime | None:
    """The end of the latest live claim among these orders still authorized (None: none)."""
    return db.session.scalar(select(func.max(Order.settle_claim_until)).where(
        Order.id.in_(order_ids), Order.status == OrderStatus.AUTHORIZED,
        Order.settle_claim_until.is_not(None)))


def _call_stripe(claimed, capture: bool, pool_id: int, coop_id: int, account: str,
                 holder: str, lease: float):
    """Each claimed hold at Stripe, in order; no transaction open. Returns the outcomes of
    those done, and the error that stopped the chunk (None: all done)."""
    from .orders import _fault_point
    done = []
    renewed = time.monotonic()
    for row in claimed:
        try:
            if capture:
                hold = gateway.capture(row.payment_intent_id, row.amount_due_minor,
                                       {"order_id": str(row.id), "pool_id": str(pool_id),
                                        "coop_id": str(coop_id)})
                # Captured at Stripe, not yet here: where tests kill a worker (tests/jobs).
                _fault_point("after_capture")
                done.append((row, OrderStatus.CAPTURED, hold.charge_id or row.charge_id))
            else:
                gateway.cancel(row.payment_intent_id)
                done.append((row, OrderStatus.CANCELLED, None))
        except gateway.PaymentError as exc:
            if exc.code in ("unexpected_state", "resource_missing"):
                # The hold is gone (expired, or cancelled outside Minga): nothing to take.
                done.append((row, OrderStatus.FAILED, str(exc)[:255]))
                continue
            return done, exc
        if time.monotonic() - renewed > lease / 3:  # a slow Stripe: keep the leases
            _renew(claimed[len(done):], account, holder, lease)
            renewed = time.monotonic()
    return done, None


def _renew(rows, account: str, holder: str, lease: float) -> None:
    if rows:
        db.session.execute(update(_orders).where(_orders.c.id.in_([r.id for r in rows]),
                                                 _orders.c.settle_claim == holder)
                           .values(settle_claim_until=utcnow() + timedelta(seconds=lease)))
    throttle.renew(account, holder, lease_seconds=lease)
    db.session.commit()


def _record(coop, pool: Pool, done: list, unprocessed: list[int], holder: str) -> None:
    """The chunk's outcomes in a handful of statements (see the module's docstring)."""
    now = utcnow()
    free = {"settle_claim": None, "settle_claim_until": None, "updated_at": now}
    by_status: dict[str, list[dict]] = {}
    for row, status, extra in done:
        values = {"oid": row.id}
        if status == OrderStatus.CAPTURED:
            values.update(amount=row.amount_due_minor, charge=extra)
        elif status == OrderStatus.FAILED:
            values["why"] = extra
        by_status.setdefault(status, []).append(values)
    authorized = (_orders.c.id == bindparam("oid")) & (_orders.c.status == OrderStatus.AUTHORIZED)
    if OrderStatus.CAPTURED in by_status:
        db.session.execute(update(_orders).where(authorized).values(
            status=OrderStatus.CAPTURED, amount_captured_minor=bindparam("amount"),
            charge_id=bindparam("charge"), **free), by_status[OrderStatus.CAPTURED])
    if OrderStatus.CANCELLED in by_status:
        db.session.execute(update(_orders).where(authorized).values(
            status=OrderStatus.CANCELLED, **free), by_status[OrderStatus.CANCELLED])
    if OrderStatus.FAILED in by_status:
        db.session.execute(update(_orders).where(authorized).values(
            status=OrderStatus.FAILED, failure_message=bindparam("why"), **free),
            by_status[OrderStatus.FAILED])
    if unprocessed:
        db.session.execute(update(_orders).where(_orders.c.id.in_(unprocessed),
                                                 _orders.c.settle_claim == holder)
                           .values(settle_claim=None, settle_claim_until=None))
    captured = [(row, extra) for row, status, extra in done if status == OrderStatus.CAPTURED]
    released = [row for row, status, _extra in done if status != OrderStatus.CAPTURED]
    if captured:
        ledger.settle_pending_many(coop, "order", [row.id for row, _c in captured],
                                   outcome="posted")
        # Each captured order's invoice, numbered as one block with the chunk's others:
        # built here, numbered last (the counter's row lock held only until the commit).
        invoiced = invoices.prepare_invoices(coop, pool, [
            invoices.Capture(order_id=row.id, buyer_id=row.buyer_id, quantity_g=row.quantity_g,
                             amount_minor=row.amount_due_minor, charge_id=charge)
            for row, charge in captured], now=now)
        # Captured money sits at Stripe (clearing) and is owed to the buyer until the goods
        # are received (deposits): the entry `core._ledger_capture` posts, keys and all.
        ledger_bulk.post_many(coop, [ledger_bulk.NewEntry(
            key=f"order:{row.id}:capture", kind="capture", source=("order", row.id),
            external_ref=charge, memo=f"card capture, order {row.id}",
            document=invoiced.ids.get(row.id),
            lines=[ledger.debit("stripe_clearing", row.amount_due_minor),
                   ledger.credit("buyer_deposits", row.amount_due_minor)])
            for row, charge in captured])
    if released:
        ledger.settle_pending_many(coop, "order", [row.id for row in released],
                                   outcome="voided")
    if captured:
        invoiced.issue()


# ------------------------------------------------------------------------ running in-process

def drain(*, timeout: float = 60.0, poll: float = 0.05,
          tasks: tuple[str, ...] = (TASK, TELL_TASK)) -> int:
    """Run the settlement jobs in this process until none is left to run, waiting out those
    deferred (no free slot, a 429's back-off, a claim of a dead run running out) up to
    `timeout` seconds. Several threads or processes may drain at once: each job runs once.
    For tests, benchmarks and `flask pools settle`; production's workers run them instead.
    Returns how many runs it made."""
    from ..common.statuses import JobStatus
    from ..jobs.models import Job
    deadline = time.monotonic() + timeout
    runs = 0
    while time.monotonic() < deadline:
        now = utcnow()
        ids = list(db.session.scalars(select(Job.id).where(
            Job.task.in_(tasks), Job.status == JobStatus.PENDING, Job.run_at <= now)
            .order_by(Job.run_at, Job.id).limit(100)))
        waiting = None
        if not ids:
            waiting = db.session.scalar(select(func.min(Job.run_at)).where(
                Job.task.in_(tasks),
                Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING))))
        db.session.commit()
        if not ids:
            if waiting is None:
                break
            time.sleep(poll)
            continue
        for job_id in ids:
            if jobs.run(job_id).status != "skipped":
                runs += 1
    return runs
