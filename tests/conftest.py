"""Test fixtures: one migrated database per run (SQLite file, or TEST_DATABASE_URL's
PostgreSQL), emptied after every test; factories that return callables."""
from __future__ import annotations

pytest_plugins = ["tests.fixtures_stripe"]

import itertools
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from flask import g
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import event, text

from coop import create_app
from coop.extensions import db

PASSWORD = "correct-horse-battery"
COLLECTION_POINTS = ("Vereda El Tambo", "Vereda La Esperanza", "Acopio central")
KEEP = {"crops", "grades", "alembic_version"}  # loaded by migrations, never emptied
_TMP = tempfile.mkdtemp(prefix="minga-tests-")


def database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{Path(_TMP) / 'test.sqlite'}"


def is_postgres() -> bool:
    return database_url().startswith("postgresql")


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class FreshGlobalsClient(FlaskClient):
    """Each test keeps an app context pushed, and Flask reuses it for the client's requests,
    so `g` (Flask-Login's user, Flask-Babel's locale) would leak from one request into the
    next, even into another client's. Production starts every request with an empty `g`;
    the test's own `g` (its English locale, see _clean) is put back after the request."""

    def open(self, *args, **kwargs):
        saved = dict(g.__dict__) if g else None
        if g:
            g.__dict__.clear()
        try:
            return super().open(*args, **kwargs)
        finally:
            if saved is not None:
                g.__dict__.clear()
                g.__dict__.update(saved)


@pytest.fixture(scope="session")
def app():
    url = database_url()
    overrides = {"SQLALCHEMY_DATABASE_URI": url}
    if url.startswith("postgresql"):
        _reset_postgres(url)
        # A test database need not wait for its commits to reach the disk (visibility to
        # other connections is unchanged): the suite's many small commits get cheaper.
        from config import TestingConfig
        overrides["SQLALCHEMY_ENGINE_OPTIONS"] = {
            **TestingConfig.SQLALCHEMY_ENGINE_OPTIONS,
            "connect_args": {"options": "-c synchronous_commit=off"}}
    app = create_app("testing", **overrides)
    app.test_client_class = FreshGlobalsClient
    with app.app_context():
        upgrade(revision="heads")
    return app


def _tables_to_empty() -> list:
    """Every table but KEEP's, children before their parents (the order deletes need)."""
    return [t for t in reversed(db.metadata.sorted_tables) if t.name not in KEEP]


def empty_tables() -> None:
    """Empties what the test wrote, in one short transaction, without TRUNCATE.

    PostgreSQL: TRUNCATE ... RESTART IDENTITY CASCADE of ~30 tables took about 0.6 s a test
    (each truncated table and index gets a new file). Instead one query names the tables
    that hold rows and the sequences that moved; only those are emptied (DELETE, children
    first; the ledger's own triggers, which refuse deletes, are lifted meanwhile) and reset
    (setval, so ids start at 1 again as they did after RESTART IDENTITY). Rows committed by
    any connection are found, so tests may commit, use threads, other apps, live servers.
    SQLite: every table is emptied with the ledger's triggers dropped and re-created."""
    tables = _tables_to_empty()
    db.session.remove()
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            _empty_postgres(conn, tables)
        else:
            from coop.ledger import ddl
            for statement in ddl.drop_statements("sqlite"):
                conn.execute(text(statement))
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for t in tables:
                conn.execute(t.delete())
            for statement in ddl.statements("sqlite"):
                conn.execute(text(statement))


_SEQUENCES: dict[str, str] = {}  # table -> its id sequence (PostgreSQL), read once


def _empty_postgres(conn, tables) -> None:
    if not _SEQUENCES:
        _SEQUENCES.update(conn.execute(text(
            "SELECT t.relname, s.relname FROM pg_class s"
            " JOIN pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')"
            " JOIN pg_class t ON t.oid = d.refobjid"
            " WHERE s.relkind = 'S' AND t.relname = ANY(:names)"),
            {"names": [t.name for t in tables]}).all())
    filled = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM \"{t.name}\")" for t in tables)
    full = {row[0] for row in conn.execute(text(filled))}
    moved = [row[0] for row in conn.execute(text(
        "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
        " AND last_value IS NOT NULL AND sequencename = ANY(:seqs)"),
        {"seqs": list(_SEQUENCES.values())})]
    guarded = [name for name in ("ledger_entries", "ledger_postings") if name in full]
    for name in guarded:
        conn.execute(text(f'ALTER TABLE "{name}" DISABLE TRIGGER USER'))
    for t in tables:
        if t.name in full:
            conn.execute(t.delete())
    for name in guarded:
        conn.execute(text(f'ALTER TABLE "{name}" ENABLE TRIGGER USER'))
    if moved:
        conn.execute(text("SELECT " + ", ".join(
            f"setval('\"{seq}\"', 1, false)" for seq in moved)))


@pytest.fixture(autouse=True)
def _clean(app):
    ctx = app.app_context()
    ctx.push()
    from coop.extensions import limiter
    limiter.reset()
    # Services called straight from a test (no request) answer in English, so tests can
    # match their messages; requests still choose their language as in production.
    from flask_babel import force_locale
    with force_locale("en"):
        yield
    db.session.rollback()
    empty_tables()
    ctx.pop()


@pytest.fixture
def client(app):
    return app.test_client()


_seq = itertools.count(1)


@pytest.fixture
def make_user():
    from coop.auth import services
    def make(email=None, name="Test Person", phone=None, password=PASSWORD):
        n = next(_seq)
        user = services.create_user(email=email or f"user{n}@example.org", name=name,
                                    password=password, phone=phone)
        db.session.commit()
        return user
    return make


@pytest.fixture
def make_buyer():
    from coop.auth import services
    def make(organisation="Tostadores Test", email=None):
        n = next(_seq)
        user = services.sign_up_buyer(organisation=organisation,
                                      email=email or f"buyer{n}@example.org", password=PASSWORD)
        db.session.commit()
        return user
    return make


@pytest.fixture
def make_coop(make_user):
    from coop.cooperatives import services
    def make(name=None, country="CO", currency="COP", manager=None, treasurer=None,
             pending=False):
        """A verified coop (as the demo's are); `pending`: as a founder makes one, waiting
        for the platform's staff (a valid NIT, a one-page PDF)."""
        n = next(_seq)
        manager = manager or make_user(name=f"Manager {n}")
        if pending:
            from coop.cooperatives.verification import Upload, nit_check_digit
            base = f"{900_000_000 + n}"
            coop = services.create_cooperative(
                founder=manager, name=name or f"Coop {n}", country=country, currency=currency,
                region="Cauca", legal_name=f"Cooperativa {n} Ltda.",
                tax_id=f"{base}-{nit_check_digit(base)}" if country == "CO" else f"TAX-{n}",
                document=Upload("registro.pdf", b"%PDF-1.4\n% registration\n%%EOF\n"))
        else:
            coop = services.create_verified_cooperative_for_seed(
                founder=manager, name=name or f"Coop {n}", country=country,
                currency=currency, region="Cauca")
        if treasurer is not None:
            services.grant_role(coop, treasurer, "treasurer")
        for point in COLLECTION_POINTS:  # farmers choose from the coop's own list
            services.add_collection_point(coop, name=point)
        db.session.commit()
        return coop
    return make


@pytest.fixture
def make_farmer():
    from coop.cooperatives import services
    def make(coop, name="Farmer", phone=None, rail="cash", account=""):
        n = next(_seq)
        profile = services.add_farmer(coop, name=f"{name} {n}", email=f"farmer{n}@example.org",
                                      password=PASSWORD, phone=phone, member_number=f"M-{n}",
                                      national_id=f"{1000000 + n}", payout_rail=rail,
                                      payout_account=account, gender="female")
        db.session.commit()
        return profile.user
    return make


def ensure_collection_point(farmer, coop_id, name):
    """The farmer's coop (the one given, or their only one) has a collection point `name`."""
    from coop.cooperatives import services as coop_services
    from coop.listings.services import farmer_coop_for
    coop = coop_services.get_coop(farmer_coop_for(farmer, coop_id))
    if coop_services.collection_point_named(coop.id, name) is None:
        coop_services.add_collection_point(coop, name=name)
    return coop


@pytest.fixture
def make_listing():
    from coop.listings import services
    def make(farmer, crop="coffee", grade="sca85", kg="100", days_ago=5, coop_id=None):
        ensure_collection_point(farmer, coop_id, "Vereda El Tambo")
        listing, _ = services.create_listing(
            farmer, crop=crop, grade=grade, quantity_kg=kg,
            harvested_on=date.today() - timedelta(days=days_ago), coop_id=coop_id,
            collection_point="Vereda El Tambo")
        db.session.commit()
        return listing
    return make


@pytest.fixture
def login(client):
    def do(user, password=PASSWORD):
        client.post("/logout")
        response = client.post("/login", data={"login": user.email, "password": password})
        assert response.status_code == 302, response.data[:500]
        return client
    return do


@pytest.fixture
def token(client):
    def get(user, password=PASSWORD):
        response = client.post("/api/v1/auth/tokens",
                               json={"email": user.email, "password": password})
        assert response.status_code == 201, response.json
        return {"Authorization": f"Bearer {response.json['token']}"}
    return get


class QueryCounter:
    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app):
    """Counts SQL statements sent while the `with` block runs."""
    from contextlib import contextmanager

    @contextmanager
    def counting():
        counter = QueryCounter()
        event.listen(db.engine, "before_cursor_execute", counter)
        try:
            yield counter
        finally:
            event.remove(db.engine, "before_cursor_execute", counter)
    return counting
