"""Pool benchmark (issues 3 and 12): orders per second one pool accepts from 50 concurrent
clients, and the time to close a pool of 10,000 listings and 2,000 orders, allocation and
captures counted apart. Real card holds and captures against the local Stripe sandbox, and
the same against an instant in-process gateway.

Orders (issue 12, part 2b): with the instant gateway, 50 client threads post orders to ONE
pool through the API (bearer token, Idempotency-Key) in this one process, then shared out
over 2 forked worker processes as gunicorn runs its workers (--processes): orders/s, the
statements and commits of one order, its CPU; beside them the disk's ceilings measured by
pgbench on a scratch database of the same server (PostgreSQL only): simple-update (-N) at 50
clients, that TPS divided by the commits of an order, and 50 clients updating one row (each
order's reservation of its pool is one such commit, with the row locked until it is done).

    .venv/bin/python -m bench.pools_bench [--db sqlite|postgresql|both] [--listings 10000]
        [--orders 2000] [--clients 50] [--part all|orders|settle] [--no-sandbox]
        [--api-orders 20] [--pgbench-seconds 10] [--processes 1,2]
"""
from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import threading
import time
from datetime import timedelta

from .common import load


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


_INSTANT_IDS = itertools.count()  # one per process: every run's PaymentIntent ids are new


def install_instant_hold():
    """An in-process gateway whose card holds answer at once (what Minga costs when Stripe
    does not). Returns a function putting the real one back."""
    from coop.payments import gateway
    real_hold = gateway.hold
    counter, lock = _INSTANT_IDS, threading.Lock()

    def hold(amount, currency, payment_method, metadata, *, idempotency_key=None):
        with lock:
            n = next(counter)
        return gateway.Hold(id=f"pi_instant_{os.getpid()}_{n}", status="requires_capture",
                            amount=amount, currency=currency, charge_id=None,
                            metadata=dict(metadata))
    gateway.hold = hold
    return lambda: setattr(gateway, "hold", real_hold)


def api_app(url: str):
    """The app the API figure is measured on: production's behaviour where it costs (jobs
    handed to the queue at commit, not run in the request; no rate limiter), on the run's
    database, without wiping it. Celery's broker is kombu's in-memory transport: the hand-over
    costs what publishing costs, with no Redis to run."""
    from coop import create_app
    return create_app("testing", SQLALCHEMY_DATABASE_URI=url, JOBS_EAGER=False,
                      CELERY_BROKER_URL="memory://", RATELIMIT_ENABLED=False,
                      SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 60, "max_overflow": 10})


def orders_over_api(app, coop_id, manager_id, buyer_ids, clients: int, per_client: int,
                    warm: int = 20, processes: int = 1, url: str | None = None) -> dict:
    """Orders of 1 kg on ONE pool through the API (POST /api/v1/pools/<id>/orders, a bearer
    token each, an Idempotency-Key each), from `clients` threads, each its own test client
    and database connection, in this one process: the whole request path (auth, idempotency,
    reservation, the hold on the instant gateway, the ledger's entry, the buyer's message and
    its job, the JSON answer) without HTTP parsing. One Python process: the figure is what
    one worker process takes. First `warm` orders one at a time: the statements and commits
    of one order (the last half of them), counted by the engine's events."""
    from sqlalchemy import event

    from coop.auth import services as auth_services
    from coop.auth.models import User
    from coop.common.models import utcnow
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.pools import services as pools

    with app.app_context():
        pool = pools.open_pool(db.session.get(Cooperative, coop_id),
                               db.session.get(User, manager_id), crop="coffee", grade="sca85",
                               min_kg="1", max_kg=str(clients * per_client + warm),
                               closes_at=utcnow() + timedelta(days=6))
        tokens = [auth_services.issue_token(db.session.get(User, uid))
                  for uid in buyer_ids[:clients]]
        db.session.commit()
        pool_id, engine = pool.id, db.engine
    path = f"/api/v1/pools/{pool_id}/orders"
    body = {"quantity_kg": "1", "payment_method": "pm_card_visa"}
    counts = {"statements": 0, "commits": 0}

    def on_statement(*_args):
        counts["statements"] += 1

    def on_commit(*_args):
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        client = app.test_client()
        for n in range(warm):
            if n == warm // 2:  # the first orders open the coop's ledger accounts: not counted
                counts.update(statements=0, commits=0)
            answer = client.post(path, json=body, headers={
                "Authorization": f"Bearer {tokens[n % len(tokens)]}",
                "Idempotency-Key": f"warm-{pool_id}-{n}"})
            assert answer.status_code == 201, answer.get_data(as_text=True)
        per_order = {k: v / (warm - warm // 2) for k, v in counts.items()}
        # The concurrent run, counted too: the same per order, or more under contention.
        counts.update(statements=0, commits=0)
        if processes > 1:
            return _orders_in_processes(app, url, pool_id, tokens, path, body, clients,
                                        per_client, processes, per_order)
        barrier = threading.Barrier(clients + 1)
        errors: list[str] = []
        accepted = [0] * clients

        def run(n):
            own = app.test_client()
            headers = {"Authorization": f"Bearer {tokens[n]}"}
            barrier.wait()
            for i in range(per_client):
                answer = own.post(path, json=body,
                                  headers={**headers, "Idempotency-Key": f"c{pool_id}-{n}-{i}"})
                if answer.status_code == 201:
                    accepted[n] += 1
                else:
                    errors.append(f"{answer.status_code}: {answer.get_data(as_text=True)[:200]}")

        threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        cpu, start = time.process_time(), time.perf_counter()
        for t in threads:
            t.join()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
    total = sum(accepted)
    with app.app_context():
        from sqlalchemy import select
        from coop.pools.models import Pool
        committed = db.session.scalar(select(Pool.committed_g).where(Pool.id == pool_id))
        max_g = db.session.scalar(select(Pool.max_g).where(Pool.id == pool_id))
        db.session.remove()
    assert committed <= max_g
    return {"clients": clients, "rate": total / elapsed, "accepted": total, "elapsed": elapsed,
            "errors": errors[:3], "statements": per_order["statements"],
            "commits": per_order["commits"],
            "run_statements": counts["statements"] / max(total, 1),
            "cpu_ms": cpu / max(total, 1) * 1000, "load": load()}


def _process_orders(url, path, body, tokens, per_client, barrier, out):
    """One worker process of the multi-process run: its own app and connections (made after
    the fork), a thread per client token, the barrier shared with the parent."""
    app = api_app(url)
    restore = install_instant_hold()
    accepted, errors = [0] * len(tokens), []

    def run(n):
        own = app.test_client()
        headers = {"Authorization": f"Bearer {tokens[n]}"}
        barrier.wait()
        for i in range(per_client):
            answer = own.post(path, json=body, headers={
                **headers, "Idempotency-Key": f"p{os.getpid()}-{n}-{i}"})
            if answer.status_code == 201:
                accepted[n] += 1
            else:
                errors.append(f"{answer.status_code}: {answer.get_data(as_text=True)[:200]}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(tokens))]
    for t in threads:
        t.start()
    cpu = time.process_time()
    for t in threads:
        t.join()
    restore()
    out.put((sum(accepted), errors[:3], time.process_time() - cpu))


def _orders_in_processes(app, url, pool_id, tokens, path, body, clients, per_client,
                         processes, per_order) -> dict:
    """The same load from `processes` forked processes (as gunicorn runs several workers),
    the clients shared out between them, all released by one barrier."""
    import multiprocessing

    from coop.extensions import db
    with app.app_context():
        db.engine.dispose()  # no connection crosses the fork
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(clients + 1), ctx.Queue()
    shares = [tokens[k::processes] for k in range(processes)]
    children = [ctx.Process(target=_process_orders,
                            args=(url, path, body, share, per_client, barrier, out))
                for share in shares]
    for child in children:
        child.start()
    barrier.wait()
    start = time.perf_counter()
    results = [out.get(timeout=600) for _ in children]
    elapsed = time.perf_counter() - start
    for child in children:
        child.join()
    total = sum(r[0] for r in results)
    with app.app_context():
        from sqlalchemy import select

        from coop.pools.models import Pool
        committed, max_g = db.session.execute(
            select(Pool.committed_g, Pool.max_g).where(Pool.id == pool_id)).one()
        db.session.remove()
    assert committed <= max_g
    return {"clients": clients, "processes": processes, "rate": total / elapsed,
            "accepted": total, "elapsed": elapsed,
            "errors": [e for r in results for e in r[1]][:3],
            "statements": per_order["statements"], "commits": per_order["commits"],
            "run_statements": per_order["statements"],
            "cpu_ms": sum(r[2] for r in results) / max(total, 1) * 1000, "load": load()}


PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")


def pgbench_ceilings(clients: int = 50, seconds: int = 10) -> dict:
    """The disk's side: pgbench's simple-update (-N) at `clients` clients for `seconds`, and
    the same clients all updating ONE row (what every order's reservation of one pool does),
    on a scratch database made and dropped here, on BENCH_PG_URL's server. TPS each."""
    import re
    import shutil
    import subprocess

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from .common import PG_URL, _admin_engine
    binary = PGBENCH if os.path.exists(PGBENCH) else shutil.which("pgbench")
    if not binary:
        return {"error": "pgbench not found (set PGBENCH)"}
    url = make_url(PG_URL)
    name = f"minga_pgbench_{os.getpid()}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = url.password
    base = [binary, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
            "-U", url.username or "postgres"]
    out: dict = {}
    try:
        subprocess.run(base + ["-i", "-q", "-s", "1", name], check=True, env=env,
                       capture_output=True, text=True)

        def tps(args) -> float:
            done = subprocess.run(base + args + [name], check=True, env=env,
                                  capture_output=True, text=True)
            found = re.search(r"tps = ([0-9.]+)", done.stdout)
            return float(found.group(1)) if found else float("nan")

        jobs = str(min(clients, os.cpu_count() or 2))
        out["simple_update"] = tps(["-N", "-n", "-c", str(clients), "-j", jobs,
                                    "-T", str(seconds)])
        out["simple_update_load"] = load()
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            # What an order's reservation is: the pool's row updated, the order inserted,
            # one commit, the row locked until it is done.
            script.write("BEGIN;\n"
                         "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1;\n"
                         "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                         "VALUES (1, 1, 1, 1, CURRENT_TIMESTAMP);\n"
                         "END;\n")
        try:
            out["one_row"] = tps(["-n", "-f", script.name, "-c", str(clients), "-j", jobs,
                                  "-T", str(seconds)])
        finally:
            os.unlink(script.name)
        out["one_row_load"] = load()
    except subprocess.CalledProcessError as exc:
        out["error"] = (exc.stderr or exc.stdout or str(exc)).strip()[:300]
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return out


def print_order_figures(label: str, r: dict, ceilings: dict | None) -> None:
    processes = r.get("processes", 1)
    where = "in one process" if processes == 1 else f"in {processes} worker processes"
    print(f"[{label}] {r['accepted']} orders on ONE pool over the API from {r['clients']} client "
          f"threads, "
          f"instant gateway, {where}: {r['elapsed']:.2f} s = {r['rate']:.0f} orders/s "
          f"(target >= 100; one order: {r['statements']:.0f} SQL statements, "
          f"{r['commits']:.0f} commits; under load {r['run_statements']:.1f} statements and "
          f"{r['cpu_ms']:.1f} ms of the workers' CPU an order; {r['load']})"
          + (f"; errors: {r['errors']}" if r['errors'] else ""), flush=True)
    if not ceilings:
        return
    if "error" in ceilings:
        print(f"[{label}] pgbench: {ceilings['error']}", flush=True)
        return
    simple, one = ceilings["simple_update"], ceilings["one_row"]
    per = max(r["commits"], 1)
    print(f"[{label}] disk ceilings (pgbench, {r['clients']} clients, same server): simple-update -N "
          f"{simple:.0f} TPS ({ceilings['simple_update_load']}) = {simple / per:.0f} orders/s "
          f"at {per:.0f} commits an order; {r['clients']} clients updating ONE row (an order's "
          f"reservation of its pool) {one:.0f} TPS ({ceilings['one_row_load']}); Minga's "
          f"{r['rate']:.0f} orders/s is {r['rate'] / min(simple / per, one):.0%} of the lower",
          flush=True)


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
                        help="orders and settlement against the instant gateway only")
    parser.add_argument("--api-orders", type=int, default=20,
                        help="orders each client posts through the API (instant gateway)")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--processes", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 2], help="worker processes taking the API orders "
                        "(as gunicorn's workers), one run each")
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
            need_kg = args.orders * 10 * pools_run + args.clients * (
                args.per_client + args.api_orders * len(args.processes)) + 100
            coop_id, manager_id, buyers = seed_market(
                app, farmers=args.listings, buyers=max(args.clients, 100),
                kg_per_listing=max(50, need_kg // args.listings + 10))
            from .common import analyze
            analyze(app)
            if args.part in ("all", "orders") and not args.no_sandbox:
                rate, accepted, elapsed, errors, _ = orders_per_second(
                    app, coop_id, manager_id, buyers, args.clients, args.per_client)
                print(f"[{label}] {args.clients} concurrent clients: {accepted} orders in "
                      f"{elapsed:.2f} s = {rate:.0f} orders/s (each a real hold at the sandbox)"
                      + (f"; errors: {errors}" if errors else ""))
                sandbox.reset()
            if args.part in ("all", "orders"):
                ceilings = (pgbench_ceilings(args.clients, args.pgbench_seconds)
                            if url.startswith("postgresql") else None)
                for processes in args.processes:
                    api = api_app(url)
                    restore = install_instant_hold()
                    try:
                        figures = orders_over_api(api, coop_id, manager_id, buyers,
                                                  args.clients, args.api_orders,
                                                  processes=processes, url=url)
                    finally:
                        restore()
                    print_order_figures(label, figures, ceilings)
                    with api.app_context():
                        from coop.extensions import db
                        db.engine.dispose()
            if args.part in ("all", "settle"):
                from .common import analyze
                analyze(app)
                settle_figures(app, url, coop_id, manager_id, buyers, args.orders,
                               args.workers, label,
                               sandbox=None if args.no_sandbox else sandbox)
            sandbox.reset()


if __name__ == "__main__":
    main()
