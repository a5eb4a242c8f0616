"""Reconciliation benchmark (issue 4): 100,000 Stripe balance transactions stored (streamed,
a thousand rows at a time), matched to 100,000 ledger captures in SQL, and a card fee entry
posted for each, then committed. Peak memory of the timed part: the process's max RSS
before and after (it must not grow with the count) and, with --tracemalloc, Python's peak.

    .venv/bin/python -m bench.reconcile_bench [--db sqlite|postgresql|both] [--count 100000]
        [--tracemalloc]
"""
from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

from bench.common import analyze, databases, fresh_app, seed_market

START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def amount(i: int) -> int:
    return 100_000 + (i * 7919) % 5_000_000


def seed_ledger(app, coop_id: int, count: int) -> None:
    """One capture per charge (Dr stripe_clearing Cr buyer_deposits, external_ref = charge
    id), written in bulk."""
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.ledger import bulk

    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        for start in range(0, count, 5000):
            bulk.post_many(coop, [bulk.NewEntry(
                key=f"order:{i}:capture", kind="capture", external_ref=f"ch_{i:08d}",
                effective_on=START + timedelta(seconds=i),
                lines=[ledger.debit("stripe_clearing", amount(i)),
                       ledger.credit("buyer_deposits", amount(i))])
                for i in range(start, min(count, start + 5000))])
            db.session.commit()


def stripe_rows(count: int):
    """What gateway.balance_transactions() yields, generated one at a time (minor units)."""
    for i in range(count):
        fee = amount(i) * 29 // 1000 + 90_000
        fee = min(fee, amount(i) // 2)
        yield {"txn_id": f"txn_{i:08d}", "type": "charge", "source": f"ch_{i:08d}",
               "amount_minor": amount(i), "fee_minor": fee, "net_minor": amount(i) - fee,
               "currency": "COP", "created": START + timedelta(seconds=i),
               "available_on": START + timedelta(days=2, seconds=i), "origin": "api"}


def run(name: str, url: str, count: int, trace: bool) -> None:
    app = fresh_app(url)
    coop_id, _manager, _buyers = seed_market(app, farmers=1)
    t0 = time.perf_counter()
    seed_ledger(app, coop_id, count)
    analyze(app)
    setup = time.perf_counter() - t0
    from sqlalchemy import func, select

    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.treasury import stripe_reconciliation
    from coop.treasury.models import StripeBalanceTxn

    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if trace:
            tracemalloc.start()
        fee_time = [0.0]
        real_post_fees = stripe_reconciliation.post_fees

        def timed_post_fees(*args, **kwargs):
            t = time.perf_counter()
            try:
                return real_post_fees(*args, **kwargs)
            finally:
                fee_time[0] += time.perf_counter() - t
        stripe_reconciliation.post_fees = timed_post_fees
        start = time.perf_counter()
        added = stripe_reconciliation._store_txns(coop, stripe_rows(count), [])
        stored = time.perf_counter()
        summary = stripe_reconciliation.reconcile(coop)
        reconciled = time.perf_counter()
        db.session.commit()
        elapsed = time.perf_counter() - start
        commit_time = time.perf_counter() - reconciled
        fees_posting = fee_time[0]
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        again = time.perf_counter()
        second = stripe_reconciliation.reconcile(coop)
        db.session.commit()
        again = time.perf_counter() - again
        assert added == count and summary["matched"] == count, summary
        assert summary["fees_posted"] == count and second["fees_posted"] == 0
        fees = sum(r["fee_minor"] for r in stripe_rows(count))
        assert ledger.balance(coop, "card_fees") == fees
        assert db.session.scalar(select(func.count()).select_from(StripeBalanceTxn)) == count
        problems = ledger.check()
        assert problems == [], problems[:3]
    print(f"{name}: {count:,} balance transactions: stored {stored - start:.2f} s, matched "
          f"{reconciled - stored - fees_posting:.2f} s, fee entries {fees_posting:.2f} s, "
          f"commit {commit_time:.2f} s;")
    print(f"  {name}: stored in {stored - start:.2f} s, "
          f"stored + matched + {summary['fees_posted']:,} fee entries + commit in "
          f"{elapsed:.2f} s; reconciled again (nothing to do) in {again:.2f} s; "
          f"max RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB"
          + (f"; tracemalloc peak {peak / 1e6:.1f} MB" if trace else "")
          + f" (ledger set-up {setup:.1f} s, not timed); ledger check OK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    for name, url in databases(args.db):
        run(name, url, args.count, args.tracemalloc)


if __name__ == "__main__":
    main()
