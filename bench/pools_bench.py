"""Pool benchmark (issue 3): orders per second one pool accepts from 50 concurrent clients,
and the time to close a pool of 10,000 listings and 2,000 orders, allocation and captures
counted apart. Real card holds and captures against the local Stripe sandbox.

    .venv/bin/python -m bench.pools_bench [--db sqlite|postgresql|both] [--listings 10000]
        [--orders 2000] [--clients 50]
"""
from __future__ import annotations

import argparse
import threading
import time
from datetime import timedelta


def orders_per_second(app, coop_id, manager_id, buyer_ids, clients: int, per_client: int):
    from coop.auth.models import User
    from coop.common.models import utcnow
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.pools import services as pools

    with app.app_context():
        pool = pools.open_pool(db.session.get(Cooperative, coop_id),
                               db.session.get(User, manager_id), crop="coffee", grade="sca85",
                               min_kg="1", max_kg=str(clients * per_client),
                               closes_at=utcnow() + timedelta(days=6))
        db.session.commit()
        pool_id = pool.id
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def client(n):
        with app.app_context():
            user = db.session.get(User, buyer_ids[n % len(buyer_ids)])
            barrier.wait()
            for _ in range(per_client):
                try:
                    pools.place_order(user, pool_id, quantity_kg="1",
                                      payment_method="pm_card_visa")
                except Exception as exc:  # counted, not hidden
                    errors.append(f"{type(exc).__name__}: {exc}")
            db.session.remove()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    accepted = clients * per_client - len(errors)
    return accepted / elapsed, accepted, elapsed, errors[:3], pool_id


def settle_figures(app, url, coop_id, manager_id, buyers, orders: int, workers_list,
                   label: str, sandbox=None) -> None:
    """Settlement of a closed pool of `orders` orders drained by 1, 2, 4... worker processes
    (spawned, each its own app and connections, as Celery workers are), against the instant
    in-process gateway and against the local sandbox; captures per second."""
    from .settle_workers import make_pool, settle_with_workers
    gateways = [("instant gateway", True)] + ([("sandbox", False)] if sandbox else [])
    for name, instant in gateways:
        overrides = {} if instant else {"STRIPE_SECRET_KEY": sandbox.secret_key,
                                        "STRIPE_API_BASE": sandbox.api_base}
        for workers in workers_list:
            t0 = time.perf_counter()
            pool_id = make_pool(app, coop_id, manager_id, buyers, orders, sandbox=not instant)
            setup = time.perf_counter() - t0
            r = settle_with_workers(app, url, pool_id, workers, instant=instant,
                                    overrides=overrides)
            print(f"[{label}] settle {orders} orders, {name}, {workers} worker process"
                  f"{'es' if workers > 1 else ''}: {r['captured']} captured in "
                  f"{r['wall_s']:.2f} s = {r['rate']:.0f} captures/s "
                  f"({r['statements_per_capture']:.1f} statements a capture with the "
                  f"queue's polling; close itself {r['decide_s'] * 1000:.0f} ms; buyers told "
                  f"afterwards by one job in {r['tell_s']:.1f} s; "
                  f"settled={r['settled']}; load {r['load']:.2f}; set-up {setup:.1f} s)",
                  flush=True)
            if sandbox is not None:
                sandbox.reset()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=4)
    parser.add_argument("--part", default="all", choices=["all", "orders", "settle"])
    parser.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 2, 4], help="worker processes draining a settlement")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="settlement against the instant gateway only")
    args = parser.parse_args()

    from devtools.sandbox import Sandbox

    from .common import databases, fresh_app, seed_market
    with Sandbox(persist=False) as sandbox:
        for label, url in databases(args.db):
            app = fresh_app(url, STRIPE_SECRET_KEY=sandbox.secret_key,
                            STRIPE_API_BASE=sandbox.api_base)
            # Enough listed for every pool of the run (orders' 10 kg each, per worker count
            # and gateway), over --listings farmers.
            pools_run = len(args.workers) * (1 if args.no_sandbox else 2) + 1
            need_kg = args.orders * 10 * pools_run + args.clients * args.per_client * 6
            coop_id, manager_id, buyers = seed_market(
                app, farmers=args.listings, buyers=max(args.clients, 100),
                kg_per_listing=max(50, need_kg // args.listings + 10))
            if args.part in ("all", "orders"):
                rate, accepted, elapsed, errors, _ = orders_per_second(
                    app, coop_id, manager_id, buyers, args.clients, args.per_client)
                print(f"[{label}] {args.clients} concurrent clients: {accepted} orders in "
                      f"{elapsed:.2f} s = {rate:.0f} orders/s (each a real hold at the sandbox)"
                      + (f"; errors: {errors}" if errors else ""))
                sandbox.reset()
                # The same load with an in-process gateway that answers at once: what the
                # database side can take when Stripe is not the bottleneck.
                from coop.payments import gateway
                real_hold = gateway.hold
                counter = iter(range(10**9))
                gateway.hold = lambda amount, currency, pm, metadata: gateway.Hold(
                    id=f"pi_instant_{next(counter)}", status="requires_capture", amount=amount,
                    currency=currency, charge_id=None)
                try:
                    rate2, accepted2, elapsed2, errors2, _ = orders_per_second(
                        app, coop_id, manager_id, buyers, args.clients, args.per_client * 5)
                finally:
                    gateway.hold = real_hold
                print(f"[{label}] {args.clients} concurrent clients, instant gateway: {accepted2} "
                      f"orders in {elapsed2:.2f} s = {rate2:.0f} orders/s (database side only)"
                      + (f"; errors: {errors2}" if errors2 else ""))
            if args.part in ("all", "settle"):
                from .common import analyze
                analyze(app)
                settle_figures(app, url, coop_id, manager_id, buyers, args.orders,
                               args.workers, label,
                               sandbox=None if args.no_sandbox else sandbox)
            sandbox.reset()


if __name__ == "__main__":
    main()
