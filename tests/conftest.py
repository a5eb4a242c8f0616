"""Test fixtures: one migrated database per run (SQLite file, or TEST_DATABASE_URL's
PostgreSQL), emptied after every test; factories that return callables."""
from __future__ import annotations

pytest_plugins = ["tests.plugins.stripe", "tests.plugins.apps", "tests.plugins.market",
                  "tests.plugins.payouts", "tests.plugins.year_end", "tests.plugins.messaging"]

import itertools
from datetime import date, timedelta

import pytest
from flask import g
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import event, text

from coop import create_app
from coop.extensions import db
from tests.support import COLLECTION_POINTS, PASSWORD, database_url
from tests.support.database import empty_tables
from tests.support.listings import ensure_collection_point


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # a worker's own database (tests.support.database_url)
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
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
    def make(organisation="Tostadores Test", email=None, billing=True):
        """A buyer; `billing`: with the billing details asked before a first order."""
        n = next(_seq)
        user = services.sign_up_buyer(organisation=organisation,
                                      email=email or f"buyer{n}@example.org", password=PASSWORD)
        if billing:
            from coop.invoices import services as invoices
            invoices.save_billing(user.buyer_id, legal_name=f"{organisation} S.A.S.",
                                  tax_id="DE123456789",
                                  country="DE", address="Hafenstraße 1, 20457 Hamburg")
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
    def make(coop, name="Farmer", phone=None, rail="cash", account="", plots=1):
        """A farmer member; with `plots` plots (one by default: their coffee and cacao
        listings name it, as the EUDR asks)."""
        from coop.plots import services as plot_services
        n = next(_seq)
        profile = services.add_farmer(coop, name=f"{name} {n}", email=f"farmer{n}@example.org",
                                      password=PASSWORD, phone=phone, member_number=f"M-{n}",
                                      national_id=f"{1000000 + n}", payout_rail=rail,
                                      payout_account=account, gender="female")
        for k in range(plots):
            plot_services.add_plot(profile, name=f"Finca {n}-{k + 1}", hectares="1.5",
                                   replaced_crop=None, illicit_hectares="0")
        db.session.commit()
        return profile.user
    return make


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



@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs pytest-xdist with `--dist loadscope`: each test module goes whole to
    one worker, and the browser suite (tests/e2e: one served app, sandbox and Chromium, and
    steps that build on each other across its files) counts as one module. (The
    `xdist_group` markers of `--dist loadgroup` do nothing with pytest 9: xdist 3.8 renames a
    test's `_nodeid`, which pytest 9 no longer reads.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class BrowserSuiteTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith("tests/e2e/"):
                return "tests/e2e"
            return super()._split_scope(nodeid)

    return BrowserSuiteTogether(config, log)
