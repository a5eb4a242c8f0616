"""Settlement of one closed pool drained by N worker processes (bench/pools_bench.py): the
setup of orders and card holds in bulk, and the worker processes (spawned, each its own app
and connections, as Celery workers are), each running `coop.pools.settlement.drain`."""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from datetime import timedelta


def install_instant_gateway() -> None:
    """An in-process gateway that answers at once (what Minga costs when Stripe does not)."""
    from coop.payments import gateway

    def capture(intent_id, amount, metadata=None):
        return gateway.Hold(id=intent_id, status="succeeded", amount=amount, currency="COP",
                            charge_id=f"ch_{intent_id}")
    gateway.capture = capture
    gateway.cancel = lambda intent_id: "canceled"


def make_pool(app, coop_id, manager_id, buyer_ids, orders: int, *, sandbox: bool,
              kg_per_order: int = 10) -> int:
    """An open pool with `orders` authorized orders (their holds made at the sandbox in 8
    threads, or instant ids), their pending ledger holds, written in bulk."""
    from sqlalchemy import insert, update

    from coop.auth.models import User
    from coop.common.models import utcnow
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import bulk, services as ledger
    from coop.ledger.models import LedgerEntry, LedgerPosting
    from coop.payments import gateway
    from coop.pools import services as pools
    from coop.pools.models import Order, Pool
    from coop.pricing import services as pricing

    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        pool = pools.open_pool(coop, db.session.get(User, manager_id), crop="coffee",
                               grade="sca85", min_kg="1", max_kg=str(orders * kg_per_order),
                               closes_at=utcnow() + timedelta(days=6))
        db.session.commit()
        pool_id, currency = pool.id, pool.currency
        grams = kg_per_order * 1000
        amount = pricing.amount_for(pricing.highest(pool.price).buyer, grams)
        buyers = {u.id: u.buyer_id for u in db.session.query(User).filter(User.id.in_(buyer_ids))}
        intents = [f"pi_instant_{pool_id}_{n}" for n in range(orders)]
        rows = [{"pool_id": pool_id, "buyer_id": buyers[buyer_ids[n % len(buyer_ids)]],
                 "user_id": buyer_ids[n % len(buyer_ids)], "quantity_g": grams,
                 "status": "authorized", "currency": currency, "payment_method": "pm_card_visa",
                 "payment_intent_id": intents[n], "amount_authorized_minor": amount,
                 "created_at": utcnow(), "updated_at": utcnow()} for n in range(orders)]
        db.session.execute(insert(Order), rows)
        db.session.execute(update(Pool).where(Pool.id == pool_id)
                           .values(committed_g=orders * grams))
        ids = [i for (i,) in db.session.query(Order.id).filter(Order.pool_id == pool_id)
               .order_by(Order.id)]
        if sandbox:
            made: dict[int, str] = {}

            def hold(part):
                with app.app_context():
                    for order_id in part:
                        made[order_id] = gateway.hold(amount, currency, "pm_card_visa", {
                            "order_id": str(order_id), "pool_id": str(pool_id),
                            "coop_id": str(coop_id)}).id
            threads = [threading.Thread(target=hold, args=(ids[k::8],)) for k in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            table = Order.__table__
            db.session.execute(update(table).where(table.c.id == db.bindparam("oid"))
                               .values(payment_intent_id=db.bindparam("pi")),
                               [{"oid": k, "pi": v} for k, v in made.items()])
        lines = [ledger.debit("card_holds", amount), ledger.credit("card_holds_offset", amount)]
        accounts = bulk.open_accounts(coop, ["card_holds", "card_holds_offset"])
        fp = ledger.entry_fingerprint(lines, "pending")
        now = utcnow()
        bulk.insert_rows(LedgerEntry.__table__, [
            {"coop_id": coop_id, "idempotency_key": f"order:{i}:hold:bench", "fingerprint": fp,
             "kind": "card_hold", "memo": f"card hold, order {i}", "status": "pending",
             "currency": currency, "source_type": "order", "source_id": i, "created_at": now,
             "effective_on": now} for i in ids])
        entry_ids = dict(db.session.query(LedgerEntry.source_id, LedgerEntry.id).filter(
            LedgerEntry.source_type == "order", LedgerEntry.source_id.in_(ids)))
        bulk.insert_rows(LedgerPosting.__table__, [
            {"entry_id": entry_ids[i], "account_id": accounts[line.account][0],
             "amount_minor": line.amount_minor} for i in ids for line in lines])
        db.session.commit()
        return pool_id


def _worker(url: str, overrides: dict, instant: bool, ready, go, results) -> None:
    from sqlalchemy import event

    from coop import create_app
    from coop.extensions import db
    from coop.pools import settlement
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url, **overrides)
    if instant:
        install_instant_gateway()
    statements = [0]
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute",
                     lambda *a: statements.__setitem__(0, statements[0] + 1))
        db.session.execute(db.text("SELECT 1"))
        db.session.commit()
        ready.release()
        go.wait()
        runs = settlement.drain(timeout=1800, poll=0.02, tasks=(settlement.TASK,))
        results.put((os.getpid(), runs, statements[0], time.perf_counter()))


def settle_with_workers(app, url: str, pool_id: int, workers: int, *, instant: bool,
                        overrides: dict) -> dict:
    """Close the pool (decide + chunk jobs, timed), then `workers` spawned processes drain
    its settlement; captures per second from the moment they all start to the last done."""
    from sqlalchemy import func, select

    from coop.extensions import db
    from coop.pools import services as pools
    from coop.pools.models import Order, Pool
    with app.app_context():
        t0 = time.perf_counter()
        pools.close_pool(pool_id)
        decide = time.perf_counter() - t0
        db.session.remove()
        db.engine.dispose()
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, overrides, instant, ready, go, results))
             for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    go.set()
    ends = [results.get() for _ in procs]
    for p in procs:
        p.join()
    wall = max(end for *_rest, end in ends) - start
    from coop.pools import settlement
    with app.app_context():
        t0 = time.perf_counter()
        settlement.drain(tasks=(settlement.TELL_TASK,), timeout=600)
        tell = time.perf_counter() - t0
        counts = dict(db.session.execute(select(Order.status, func.count())
                                         .where(Order.pool_id == pool_id)
                                         .group_by(Order.status)).all())
        settled = db.session.get(Pool, pool_id).settled_at is not None
    captured = counts.get("captured", 0)
    return {"decide_s": decide, "wall_s": wall, "captured": captured, "settled": settled,
            "rate": captured / wall if wall else 0.0, "load": load, "tell_s": tell,
            "statements_per_capture": sum(s for _p, _r, s, _e in ends) / max(1, captured)}
