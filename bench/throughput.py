"""Requests per second of Minga beside a bare Flask endpoint, under the same gunicorn (2 sync
workers) in the same run (issue 12, part 4). `.venv/bin/python -m bench.throughput`

Loads the demo data into a fresh database of the run's own (bench/common.py: a SQLite file, or
a PostgreSQL database made on BENCH_PG_URL's server and dropped at the end), starts gunicorn on
bench/throughput_wsgi.py (Minga, with bench/bare_app.py mounted at /bare/), then loads each
endpoint for --seconds with several client processes (http.client; each thread keeps its
connection when the server does) and prints req/s, p99 and the ratio to the bare endpoint.
Clients send Accept-Encoding: br, gzip like a browser. Options: --seconds 20, --clients 3
(processes), --threads 2 (per process), --db sqlite|postgresql, --workers 2, --only NAME."""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-throughput-secret"
# name, target ratio to bare (None: no target)
TARGETS = {"bare": None, "/api/v1/coops": 0.5, "/api/v1/crops": None, "/supply": 0.15,
           "/my/listings": None, "pool page": 0.15, "GET /api/v1/pools (bearer)": 0.15}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str) -> dict:
    """The demo in a fresh database; what the load needs: a farmer's session cookie, a
    buyer's bearer token, a pool's id."""
    os.environ["MINGA_BENCH_DB"] = url
    os.environ["MINGA_BENCH_SECRET"] = SECRET
    from bench.common import fresh_app
    migrated = fresh_app(url)
    with migrated.app_context():
        from coop.extensions import db
        db.engine.dispose()
    from sqlalchemy import select

    from bench.throughput_wsgi import BenchConfig
    from coop import create_app
    from coop.auth import services as auth_services
    from coop.auth.models import User
    from coop.demo.seed import seed_demo
    from coop.extensions import db
    from coop.pools.models import Pool
    app = create_app(BenchConfig, SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        seed_demo()
        db.session.commit()
        farmer = db.session.scalar(select(User).where(User.email == "farmer1@example.org"))
        buyer = db.session.scalar(select(User).where(User.email == "buyer1@example.org"))
        pool_id = db.session.scalar(select(Pool.id).where(Pool.status == "open")
                                    .order_by(Pool.id))
        token = auth_services.issue_token(buyer)
        session_id = farmer.get_id()
        db.session.commit()
        if url.startswith("postgresql"):
            from sqlalchemy import text
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        db.engine.dispose()
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    cookie = client.get_cookie("session").value
    return {"cookie": cookie, "token": token, "pool_id": pool_id}


def endpoints(info: dict) -> list[tuple[str, str, dict]]:
    cookie = {"Cookie": f"session={info['cookie']}"}
    bearer = {"Authorization": f"Bearer {info['token']}"}
    return [("bare", "/bare/", {}),
            ("/api/v1/coops", "/api/v1/coops", {}),
            ("/api/v1/crops", "/api/v1/crops", {}),
            ("/supply", "/supply", {}),
            ("/my/listings", "/my/listings", cookie),
            ("pool page", f"/pools/{info['pool_id']}", {}),
            ("GET /api/v1/pools (bearer)", "/api/v1/pools", bearer)]


HEADERS = {"Accept-Encoding": "br, gzip", "Accept-Language": "es-CO,es;q=0.9",
           "User-Agent": "minga-throughput"}


def _thread_load(port, path, headers, until, out):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat, errors = [], 0
    while True:
        start = time.perf_counter()
        if start >= until:
            break
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
            if response.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
        lat.append(time.perf_counter() - start)
    conn.close()
    out.append((lat, errors))


def _process_load(args):
    import threading
    port, path, headers, until, threads = args
    out: list = []
    workers = [threading.Thread(target=_thread_load, args=(port, path, headers, until, out))
               for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    lat = [x for part, _e in out for x in part]
    return lat, sum(e for _l, e in out)


def _client(args, pipe) -> None:
    try:
        pipe.send(_process_load(args))
    finally:
        pipe.close()


def load(port: int, path: str, headers: dict, seconds: float, clients: int,
         threads: int) -> dict:
    merged = dict(HEADERS, **headers)
    # A short warm-up (templates compiled, caches filled) outside the measured window.
    _process_load((port, path, merged, time.perf_counter() + 1.0, 1))
    until = time.perf_counter() + seconds
    # One forked process a client, each answering through its own pipe (not a Pool: its
    # terminate() at the end of the block hung twice here, a worker waiting forever on the
    # task queue's lock); a client stuck fails the run a minute past its window.
    context = multiprocessing.get_context("fork")
    clients_ = []
    for _ in range(clients):
        reader, writer = context.Pipe(duplex=False)
        process = context.Process(target=_client, args=((port, path, merged, until, threads),
                                                        writer))
        process.start()
        writer.close()
        clients_.append((process, reader))
    parts = []
    try:
        for process, reader in clients_:
            if not reader.poll(max(0.0, until + 60 - time.perf_counter())):
                raise RuntimeError(f"a client of {path} gave no answer a minute past its load")
            parts.append(reader.recv())
            process.join(timeout=30)
    finally:
        for process, reader in clients_:
            if process.is_alive():
                process.kill()
                process.join()
            reader.close()
    lat = sorted(x for part, _e in parts for x in part)
    errors = sum(e for _l, e in parts)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0
    return {"requests": len(lat), "rps": len(lat) / seconds, "p99_ms": p99 * 1000,
            "errors": errors}


def check(port: int, path: str, headers: dict) -> tuple[int, int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers=dict(HEADERS, **headers))
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, len(body), response.getheader("Content-Encoding") or "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per client process")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--db", choices=["sqlite", "postgresql"],
                        default="postgresql" if os.environ.get("BENCH_PG_URL") else "sqlite")
    parser.add_argument("--only", action="append", help="an endpoint's name (repeatable)")
    args = parser.parse_args(argv)
    from bench.common import databases  # this run's own database, dropped when it ends
    [(label, url)] = databases(args.db)
    info = prepare(url)
    port = _free_port()
    env = dict(os.environ, MINGA_BENCH_DB=url, MINGA_BENCH_SECRET=SECRET,
               PYTHONPATH=str(ROOT))
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", str(args.workers), "-k", "sync",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "bench.throughput_wsgi:app"],
        cwd=str(ROOT), env=env)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        rows = []
        for name, path, headers in endpoints(info):
            if args.only and name not in args.only and name != "bare":
                continue
            status, size, encoding = check(port, path, headers)
            if status != 200:
                print(f"{name}: {path} answered {status}", file=sys.stderr)
                return 1
            result = load(port, path, headers, args.seconds, args.clients, args.threads)
            result.update(name=name, bytes=size, encoding=encoding,
                          load=os.getloadavg()[0])
            rows.append(result)
            print(f"  {name}: {result['rps']:.0f} req/s", file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare = rows[0]["rps"] or 1.0
    print(f"\nThroughput on {label}: gunicorn {args.workers} sync workers, "
          f"{args.clients}x{args.threads} clients, {args.seconds:g} s each, "
          f"{os.cpu_count()} CPUs")
    print("| endpoint | req/s | p99 ms | × bare | target | bytes sent | load 1 min |")
    print("|---|---|---|---|---|---|---|")
    status = 0
    for r in rows:
        ratio = r["rps"] / bare
        target = TARGETS.get(r["name"])
        mark = "" if target is None else (f"≥ {target:g}× ✓" if ratio >= target
                                          else f"≥ {target:g}× ✗")
        if target is not None and ratio < target:
            status = 1
        errors = f" ({r['errors']} errors)" if r["errors"] else ""
        print(f"| {r['name']} | {r['rps']:,.0f}{errors} | {r['p99_ms']:.1f} | {ratio:.2f} | "
              f"{mark} | {r['bytes']:,} {r['encoding']} | {r['load']:.1f} |")
    return status


if __name__ == "__main__":
    sys.exit(main())
