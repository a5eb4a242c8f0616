"""Pages at scale (issue 12 part 1): the demo grown 100 times (coop/demo/grow.py), then every
role's main pages through the test client: SQL queries, median server time of 5 requests, and
the HTML's size. Target: every page under 100 ms at 100x.

    .venv/bin/python -m bench.pages_bench [--db sqlite|postgresql|both] [--factor 100]

SQLite by default; PostgreSQL with --db postgresql (or when BENCH_PG_URL is set): each run on
databases of its own, made and dropped by bench/common.py."""
from __future__ import annotations

import argparse
import os
import statistics
import time

from sqlalchemy import event, select

from bench.common import analyze, databases, fresh_app

TARGET_MS = 100
MAX_KB = 60
RUNS = 5
STAFF = "staff@example.org"


def _targets():
    from coop.auth.models import User
    from coop.demo.grow import demo_coops
    from coop.extensions import db
    from coop.intake.models import Intake
    from coop.payouts.models import PayoutBatch
    from coop.pools.models import Pool
    coop = demo_coops()[0]
    farmer = db.session.scalar(select(User.id).where(User.email == "farmer1@example.org"))
    open_pool = db.session.scalar(select(Pool.id).where(Pool.coop_id == coop.id,
                                                        Pool.status == "open").order_by(Pool.id))
    settled = db.session.scalar(select(Pool.id).where(Pool.coop_id == coop.id,
                                                      Pool.status == "confirmed")
                                .order_by(Pool.id))
    intake = db.session.scalar(select(Intake.id).where(Intake.farmer_user_id == farmer)
                               .order_by(Intake.id))
    batch = db.session.scalar(select(PayoutBatch.id).where(PayoutBatch.coop_id == coop.id)
                              .order_by(PayoutBatch.id))
    return coop, open_pool, settled, intake, batch


def pages() -> dict[str, list[str]]:
    """Each role's login e-mail (None: a visitor) and main pages."""
    coop, open_pool, settled, intake, batch = _targets()
    c, s = f"/manage/coops/{coop.id}", coop.slug
    return {
        "visitor": [None, "/", "/supply", "/pools", f"/pools/{open_pool}", "/coops",
                    f"/coops/{s}", f"/coops/{s}/impact"],
        "buyer": ["buyer1@example.org", "/supply", "/pools", f"/pools/{open_pool}",
                  "/my/orders", "/account"],
        "farmer": ["farmer1@example.org", "/my/listings", "/my/sales", "/my/deliveries",
                   "/my/payments", "/my/statements", f"/my/statements/{intake}", "/my/shares",
                   "/account"],
        "manager": ["manager@example.org", "/manage", c, f"{c}/pools",
                    f"/manage/pools/{open_pool}", f"/manage/pools/{open_pool}/orders",
                    f"/manage/pools/{settled}", f"/manage/pools/{settled}/intake",
                    f"{c}/impact", f"{c}/statements", f"{c}/prices", f"{c}/audit",
                    f"{c}/treasury/reconciliation", f"{c}/messages"],
        "treasurer": ["treasurer@example.org", f"{c}/payables", f"/manage/payout-batches/{batch}",
                      f"{c}/shares", f"{c}/ledger", f"{c}/treasury/reconciliation",
                      f"{c}/statements", f"{c}/treasury/year-end", f"{c}/treasury/costs"],
        "staff": [STAFF, "/staff/coops", f"/staff/coops/{coop.id}", "/staff/audit"],
    }


def measure(engine, client, url: str) -> tuple[int, int, float, float, int]:
    """(status, queries, median wall ms and median CPU ms of this process over RUNS, bytes),
    after one warm-up request. The CPU time is the server's own work (with SQLite, the
    database's too), whatever else the machine's cores are doing."""
    client.get(url)
    statements = []

    def count(*_args):
        statements.append(1)

    times, cpu, response = [], [], None
    for n in range(RUNS):
        if n == 0:
            event.listen(engine, "before_cursor_execute", count)
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        if n == 0:
            event.remove(engine, "before_cursor_execute", count)
    return (response.status_code, len(statements), statistics.median(times),
            statistics.median(cpu), len(response.data))


def run(name: str, url: str, factor: int) -> list[str]:
    app = fresh_app(url)
    from coop.auth import services as auth_services
    from coop.demo.grow import grow
    from coop.demo.seed import PASSWORD
    from coop.extensions import db
    from coop.staff import services as staff
    with app.app_context():
        start = time.perf_counter()
        grow(factor)
        built = time.perf_counter() - start
        auth_services.create_user(email=STAFF, name="Personal Minga", password=PASSWORD)
        db.session.commit()
        staff.grant(STAFF)
        db.session.commit()
    analyze(app)
    load = os.getloadavg()[0]
    lines = [f"{name}: demo grown {factor}x in {built:.1f} s (load {load:.1f})",
             "| role | page | queries | ms (median of 5) | CPU ms | KB |",
             "|---|---|---|---|---|---|"]
    slow = []
    with app.app_context():
        roles = pages()
        engine = db.engine
    for role, (email, *urls) in roles.items():
        client = app.test_client()
        if email:
            response = client.post("/login", data={"login": email, "password": PASSWORD})
            assert response.status_code == 302, (role, response.status_code)
        for page in urls:
            status, queries, ms, cpu, size = measure(engine, client, page)
            mark = ""
            if status != 200:
                mark = f" (status {status})"
            elif min(ms, cpu) > TARGET_MS or size > MAX_KB * 1024:
                mark = " **over**"
                slow.append(f"{role} {page}")
            lines.append(f"| {role} | `{page}` | {queries} | {ms:,.0f} | {cpu:,.0f} | "
                         f"{size / 1024:,.1f}{mark} |")
    lines.append(f"over {TARGET_MS} ms (wall and CPU) or {MAX_KB} KB: "
                 f"{', '.join(slow) or 'none'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--factor", type=int, default=100)
    args = parser.parse_args()
    which = args.db
    if which == "sqlite" and os.environ.get("BENCH_PG_URL"):
        which = "both"
    for name, url in databases(which):
        print("\n".join(run(name, url, args.factor)), flush=True)


if __name__ == "__main__":
    main()
