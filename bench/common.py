"""Shared set-up for benchmarks: a fresh, migrated database on SQLite or PostgreSQL, its own
for each run, so that two runs at once (two people, two branches, `make bench` beside a single
bench) never wipe each other's.

- SQLite: a file in a temporary directory of the run, removed when the run ends.
- PostgreSQL: a database `minga_bench_<pid>_<random>` made for the run on the server of
  `BENCH_PG_URL` (through the server's `postgres` database, or BENCH_PG_URL's own when that
  one cannot be reached) and dropped when the run ends, also when it is stopped by Ctrl-C
  (SIGINT) or SIGTERM. BENCH_PG_URL's own database is never wiped. A run killed with
  SIGKILL leaves its database behind: `DROP DATABASE minga_bench_...` removes it."""
from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/minga_bench")

_RUN: dict = {"pg": None, "dirs": [], "handlers": False}


def _admin_engine():
    """An AUTOCOMMIT connection to the server of BENCH_PG_URL, to make and drop databases."""
    url = make_url(PG_URL)
    for name in ("postgres", url.database):
        engine = create_engine(url.set(database=name), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect():
                return engine
        except Exception:  # noqa: BLE001 - try the next maintenance database
            engine.dispose()
    raise RuntimeError(f"cannot reach PostgreSQL at {url.render_as_string(hide_password=True)}")


def _cleanup() -> None:
    """Drop the run's PostgreSQL database and remove its SQLite files (at exit, once), in the
    process that made them only: a forked client process (multiprocessing) inherits the
    handlers, and its SIGTERM at the end of a load must not wipe the run's database."""
    if _RUN.get("owner") != os.getpid():
        return
    name, _RUN["pg"] = _RUN["pg"], None
    if name:
        try:
            from coop.extensions import db  # the app's pools still hold connections to it
            db.session.remove()
        except Exception:  # noqa: BLE001
            pass
        try:
            admin = _admin_engine()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        except Exception as exc:  # noqa: BLE001 - say what is left behind
            print(f"bench: could not drop database {name}: {exc}", flush=True)
    for path in _RUN["dirs"]:
        shutil.rmtree(path, ignore_errors=True)
    _RUN["dirs"] = []


def _on_signal(signum, _frame) -> None:
    _cleanup()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_cleanup() -> None:
    if _RUN["handlers"]:
        return
    _RUN["handlers"] = True
    _RUN["owner"] = os.getpid()
    atexit.register(_cleanup)
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _on_signal)


def pg_run_url() -> str:
    """The URL of this run's own PostgreSQL database, made on first use (see the module)."""
    _install_cleanup()
    url = make_url(PG_URL)
    if _RUN["pg"] is None:
        name = f"minga_bench_{os.getpid()}_{secrets.token_hex(3)}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''))
        admin.dispose()
        _RUN["pg"] = name
    return url.set(database=_RUN["pg"]).render_as_string(hide_password=False)


def sqlite_run_url(name: str = "bench.sqlite") -> str:
    """A SQLite file of this run's own, removed when the run ends."""
    _install_cleanup()
    directory = tempfile.mkdtemp(prefix="minga-bench-")
    _RUN["dirs"].append(directory)
    return f"sqlite:///{Path(directory) / name}"


def databases(which: str) -> list[tuple[str, str]]:
    out = []
    if which in ("sqlite", "both"):
        out.append(("SQLite", sqlite_run_url()))
    if which in ("postgresql", "both"):
        out.append(("PostgreSQL", pg_run_url()))
    return out


def load() -> str:
    """The machine's load beside a figure ("load 1.2 / 2 cores"): a busy machine is slower."""
    try:
        one, _five, _fifteen = os.getloadavg()
    except OSError:
        return "load ?"
    return f"load {one:.1f} / {os.cpu_count()} cores"


def fresh_app(url: str, **overrides):
    """An app on an empty, migrated database: this run's own (`databases`, `pg_run_url`,
    `sqlite_run_url`); a PostgreSQL one has its schema dropped first, so that a bench may
    start again from empty within its run. Any other PostgreSQL database is refused: a bench
    wipes only what it made. The process's garbage collector is then set as a serving
    process's (coop/common/process.py)."""
    if url.startswith("postgresql"):
        name = make_url(url).database
        if name != _RUN["pg"]:
            raise RuntimeError(f"bench: refusing to wipe {name!r}, not this run's database "
                               "(use bench.common.databases or pg_run_url)")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    from flask_migrate import upgrade

    from coop import create_app
    config = {"SQLALCHEMY_DATABASE_URI": url,
              "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 60, "max_overflow": 10}}
    config.update(overrides)
    app = create_app("testing", **config)
    with app.app_context():
        upgrade(revision="heads")
    from coop.common.process import tune_gc
    tune_gc()  # the collector as wsgi.py and worker.py set it for the serving processes
    return app


@contextmanager
def timed(label: str, results: dict):
    start = time.perf_counter()
    yield
    results[label] = time.perf_counter() - start


def seed_market(app, *, farmers: int, listings_per_farmer: int = 1, buyers: int = 0,
                kg_per_listing: int = 50):
    """A coop with a coffee price, `farmers` farmers each listing, and `buyers` buyers, written
    with bulk inserts so that set-up does not dominate the run."""
    from datetime import date

    from sqlalchemy import insert, select

    from coop.auth import services as auth_services
    from coop.auth.models import Buyer, User
    from coop.catalog import services as catalog
    from coop.cooperatives import services as coop_services
    from coop.cooperatives.models import FarmerProfile, Membership
    from coop.extensions import db
    from coop.listings.models import Listing
    from coop.pricing import services as pricing

    with app.app_context():
        manager = auth_services.create_user(email="bench-manager@example.org", name="Manager",
                                            password="bench-password-1")
        coop = coop_services.create_verified_cooperative_for_seed(
            founder=manager, name="Bench Coop", country="CO", currency="COP", region="Cauca")
        pricing.set_price(coop, manager, crop="coffee", grade="sca85", floor="24000",
                          farmer_price="28000", commission_kind="bps", commission="800",
                          premium="1800", tiers_text="10000 600\n50000 400")
        crop, grade = catalog.resolve("coffee", "sca85")
        pw = manager.password_hash
        db.session.execute(insert(User), [
            {"email": f"f{n}@bench.org", "name": f"Farmer {n}", "password_hash": pw}
            for n in range(farmers)])
        ids = list(db.session.scalars(select(User.id).where(User.email.like("f%@bench.org"))
                                      .order_by(User.id)))
        db.session.execute(insert(Membership), [
            {"user_id": uid, "coop_id": coop.id, "role": "farmer"} for uid in ids])
        db.session.execute(insert(FarmerProfile), [
            {"coop_id": coop.id, "user_id": uid, "member_number": f"B{n}",
             "national_id": f"{10_000_000 + n}", "payout_rail": "nequi",
             "payout_account": f"3{n:09d}"} for n, uid in enumerate(ids)])
        today = date.today()
        db.session.execute(insert(Listing), [
            {"coop_id": coop.id, "farmer_user_id": uid, "crop_id": crop.id,
             "grade_id": grade.id, "quantity_g": (kg_per_listing + (n % 7)) * 1000 + n % 1000,
             "committed_g": 0, "harvested_on": today, "status": "available"}
            for n, uid in enumerate(ids) for _ in range(listings_per_farmer)])
        buyer_ids = []
        if buyers:
            db.session.execute(insert(Buyer), [{"organisation": f"Buyer {n}"}
                                               for n in range(buyers)])
            org_ids = list(db.session.scalars(select(Buyer.id).order_by(Buyer.id)))
            db.session.execute(insert(User), [
                {"email": f"b{n}@bench.org", "name": f"Buyer {n}", "password_hash": pw,
                 "buyer_id": bid} for n, bid in enumerate(org_ids)])
            buyer_ids = list(db.session.scalars(
                select(User.id).where(User.email.like("b%@bench.org")).order_by(User.id)))
            from coop.invoices import services as invoices
            for n, bid in enumerate(org_ids):  # an order needs its buyer's billing details
                invoices.save_billing(bid, legal_name=f"Buyer {n} GmbH", tax_id=f"DE{n:09d}",
                                      country="DE", address=f"Speicherstadt {n}, Hamburg")
        db.session.commit()
        return coop.id, manager.id, buyer_ids


def analyze(app) -> None:
    """Fresh planner statistics after a bulk set-up, as autovacuum would have them on a live
    PostgreSQL database (without them the planner takes a 20,000-row table for an empty one)."""
    from coop.extensions import db
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
