"""Invoice benchmark (issue 14, part 2): closing a pool of 2,000 orders issues 2,000 invoices
with contiguous numbers, in the settlement's own chunk transactions. Printed: the settlement's
wall time (captures recorded, invoices issued, ledger entries written) beside the time spent
issuing invoices in it, and the share of the counter's UPDATE (the one statement a chunk's
invoices serialise on); then the same pool settled by several worker threads (PostgreSQL)
to show the numbering does not serialise the captures. The gateway is the instant in-process
one (what Minga costs when Stripe does not).

    .venv/bin/python -m bench.invoices_bench [--db sqlite|postgresql|both] [--orders 2000]
        [--workers 1 4]
"""
from __future__ import annotations

import argparse
import threading
import time

from .common import analyze, databases, fresh_app, load, seed_market


def _timed_issuance(totals: dict):
    """Wrap the invoices' building and issuing and the counter's UPDATE with timers (seconds,
    summed over every thread); returns a function putting the real ones back."""
    from coop.invoices import numbering, services
    real_prepare, real_issue = services.prepare_invoices, services.PendingInvoices.issue
    real_take = numbering.take
    lock = threading.Lock()

    def timed(real, key):
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                with lock:
                    totals[key] += time.perf_counter() - t0
                    if key == "issue_s" and real is real_prepare:
                        totals["chunks"] += 1
        return run
    services.prepare_invoices = timed(real_prepare, "issue_s")
    services.PendingInvoices.issue = timed(real_issue, "issue_s")
    numbering.take = timed(real_take, "take_s")

    def restore():
        services.prepare_invoices, services.PendingInvoices.issue = real_prepare, real_issue
        numbering.take = real_take
    return restore


def run(app, coop_id, manager_id, buyers, orders: int, workers: int, label: str) -> None:
    from sqlalchemy import func, select

    from coop.extensions import db
    from coop.invoices.models import Invoice
    from coop.pools import services as pools, settlement
    from .settle_workers import install_instant_gateway, make_pool
    install_instant_gateway()
    pool_id = make_pool(app, coop_id, manager_id, buyers, orders, sandbox=False)
    with app.app_context():
        first = db.session.scalar(select(func.coalesce(func.max(Invoice.number), 0))
                                  .where(Invoice.coop_id == coop_id, Invoice.kind == "invoice"))
        t0 = time.perf_counter()
        pools.close_pool(pool_id)
        decide = time.perf_counter() - t0
        db.session.remove()
    totals = {"issue_s": 0.0, "take_s": 0.0, "chunks": 0}
    restore = _timed_issuance(totals)
    errors: list[str] = []

    def worker():
        with app.app_context():
            try:
                settlement.drain(timeout=1800, poll=0.02, tasks=(settlement.TASK,))
            except Exception as exc:  # noqa: BLE001 - printed below
                errors.append(repr(exc))
            finally:
                db.session.remove()
    machine = load()
    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    restore()
    with app.app_context():
        numbers = list(db.session.scalars(
            select(Invoice.number).where(Invoice.coop_id == coop_id, Invoice.kind == "invoice",
                                         Invoice.pool_id == pool_id).order_by(Invoice.number)))
    captured = len(numbers)
    contiguous = numbers == list(range(first + 1, first + 1 + orders))
    print(f"[{label}] close + settle a pool of {orders} orders, {workers} worker thread"
          f"{'s' if workers > 1 else ''}: decide {decide:.2f} s; settlement {wall:.2f} s "
          f"({captured / wall if wall else 0:.0f} captures/s) of which invoice issuance "
          f"{totals['issue_s']:.2f} s summed over {totals['chunks']} chunks "
          f"({totals['issue_s'] / max(wall * workers, 1e-9):.0%} of the workers' time), the "
          f"counter's block UPDATE {totals['take_s'] * 1000:.1f} ms in all; "
          f"{len(numbers)} invoices, numbers {numbers[0] if numbers else '-'}.."
          f"{numbers[-1] if numbers else '-'} contiguous={contiguous}, "
          f"unique={len(set(numbers)) == len(numbers)}; {machine}"
          + (f"; errors: {errors[:2]}" if errors else ""), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    for label, url in databases(args.db):
        app = fresh_app(url, SETTLE_CHUNK_SIZE=50, SETTLE_CONCURRENCY_PER_ACCOUNT=8)
        coop_id, manager_id, buyers = seed_market(app, farmers=max(10, args.orders // 20),
                                                  buyers=50, kg_per_listing=2000)
        analyze(app)
        for workers in args.workers:
            if workers > 1 and label == "SQLite":
                continue  # one writer at a time: more threads only queue on the file lock
            run(app, coop_id, manager_id, buyers, args.orders, workers, label)


if __name__ == "__main__":
    main()
