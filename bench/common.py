"""Shared set-up for benchmarks: a fresh, migrated database on SQLite or PostgreSQL."""
from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

PG_URL = os.environ.get("BENCH_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/minga_bench")


def databases(which: str) -> list[tuple[str, str]]:
    out = []
    if which in ("sqlite", "both"):
        path = Path(tempfile.mkdtemp(prefix="minga-bench-")) / "bench.sqlite"
        out.append(("SQLite", f"sqlite:///{path}"))
    if which in ("postgresql", "both"):
        out.append(("PostgreSQL", PG_URL))
    return out


def fresh_app(url: str, **overrides):
    """An app on an empty, migrated database (PostgreSQL: the database is created if missing
    and its schema dropped first)."""
    if url.startswith("postgresql"):
        base, name = url.rsplit("/", 1)
        admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                {"n": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
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
