"""A request that only read ends its transaction with COMMIT on PostgreSQL, so that psycopg
keeps the statements it prepared (a ROLLBACK makes it forget them all); anything that wrote,
or may have, is rolled back as before (coop/common/transactions.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from coop import create_app
from coop.common import transactions
from coop.common.refcache import reference_versions
from coop.extensions import db
from tests.support import database_url

postgres_only = pytest.mark.skipif(not database_url().startswith("postgresql"),
                                   reason="psycopg's prepared statements: PostgreSQL only")

PROBE = "SELECT count(*) FROM reference_versions WHERE version > :v"


@pytest.fixture()
def one_connection():
    """An app of its own over the test database whose pool holds one connection, so that
    each app context below gets the same one."""
    other = create_app("testing", SQLALCHEMY_DATABASE_URI=database_url(),
                       SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})
    yield other
    with other.app_context():
        db.engine.dispose()


def _names() -> set[str]:
    return set(db.session.scalars(text("SELECT name FROM reference_versions")))


@postgres_only
def test_a_transaction_that_only_read_keeps_the_prepared_statements(one_connection):
    with one_connection.app_context():
        for _ in range(6):  # psycopg prepares a statement at its sixth run on a connection
            db.session.execute(text(PROBE), {"v": 0})
        assert db.session.scalar(text(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE "
            "'SELECT count(*) FROM reference_versions%'")) == 1
    with one_connection.app_context():
        kept = db.session.scalar(text(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE "
            "'SELECT count(*) FROM reference_versions%'"))
    assert kept == 1  # ended with COMMIT: a ROLLBACK would have deallocated it


@postgres_only
@pytest.mark.parametrize("how", ["core", "copy", "orm pending", "error"])
def test_a_transaction_that_wrote_is_rolled_back_at_the_end(one_connection, how):
    with pytest.raises(RuntimeError) if how == "error" else _nothing():
        with one_connection.app_context():
            db.session.execute(text(PROBE), {"v": 0})  # a read first: then the write
            if how == "core":
                db.session.execute(reference_versions.insert().values(name="core", version=1))
            elif how == "copy":
                with transactions.driver_cursor(db.session.connection()) as cursor:
                    with cursor.copy("COPY reference_versions (name, version) FROM STDIN") as c:
                        c.write_row(("copy", 1))
            elif how == "orm pending":
                from coop.catalog.models import Crop
                db.session.add(Crop(slug="orm-pending", name_en="Pending", name_es="Pendiente"))
            else:
                raise RuntimeError("the view failed")
    with one_connection.app_context():
        assert _names() == set()
        from coop.catalog.models import Crop
        assert db.session.query(Crop).filter_by(slug="orm-pending").count() == 0


@postgres_only
def test_ending_reads_says_what_it_did(one_connection):
    with one_connection.app_context():
        assert transactions.end_reads() is False  # no session yet
        db.session.execute(text(PROBE), {"v": 0})
        assert transactions.end_reads(RuntimeError("boom")) is False
        assert transactions.end_reads() is True
        db.session.execute(reference_versions.insert().values(name="x", version=1))
        assert transactions.end_reads() is False
        db.session.rollback()


@pytest.mark.skipif(database_url().startswith("postgresql"), reason="the SQLite half")
def test_sqlite_ends_as_before(app):
    with app.app_context():
        db.session.execute(text(PROBE), {"v": 0})
        assert transactions.end_reads() is False


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_drivers_cursor_is_reached_only_through_driver_cursor():
    """A write SQLAlchemy's events cannot see must mark its transaction: every use of the
    driver's own connection goes through `transactions.driver_cursor`."""
    from pathlib import Path
    root = Path(transactions.__file__).resolve().parents[1]
    users = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                   if "driver_connection" in path.read_text(encoding="utf-8"))
    assert users == ["common/transactions.py"], users


@postgres_only
def test_a_connection_the_server_ended_is_replaced_at_checkout(one_connection):
    """No ping at checkout: the socket of a connection PostgreSQL ended (a restart, a
    failover, an idle timeout) is readable, and the pool connects anew before anyone uses
    it. Here the server ends the pooled connection between two requests."""
    client = one_connection.test_client()
    assert client.get("/api/v1/coops").status_code == 200
    with one_connection.app_context():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        db.session.commit()
    with db.engine.connect() as admin:  # the suite's own engine: another connection
        assert admin.scalar(text("SELECT pg_terminate_backend(:p)"), {"p": pid}) is True
    import time
    time.sleep(0.2)  # the server's farewell reaches the socket
    response = client.get("/api/v1/coops")
    assert response.status_code == 200, response.data[:300]
    with one_connection.app_context():
        assert db.session.scalar(text("SELECT pg_backend_pid()")) != pid
        db.session.commit()


READS_ONLY_VIEWS = {"api.coops": "/api/v1/coops", "api.crops": "/api/v1/crops",
                    "api.list_pools": "/api/v1/pools", "api.get_pool": "/api/v1/pools/{pool}",
                    "catalog.supply": "/supply", "catalog.crops": "/crops",
                    "pools.detail": "/pools/{pool}"}


def test_every_reads_only_view_is_tested_here(app):
    marked = {name for name, view in app.view_functions.items()
              if getattr(view, "minga_reads_only", False)}
    assert marked == set(READS_ONLY_VIEWS)


@postgres_only
def test_the_reads_only_views_answer_in_autocommit(one_connection, market, token):
    """Each marked view answers its GET (a visitor, a buyer with a token or a session) with
    every statement on an autocommit connection: no BEGIN, no COMMIT, nothing written."""
    from sqlalchemy import event
    pool = market.open_pool()
    buyer = market.buyers[0]
    bearer = token(buyer)
    seen: list[tuple[str, bool]] = []

    def spy(conn, cursor, statement, *args):
        seen.append((statement, bool(conn.get_execution_options().get(
            transactions.READS_ONLY))))
    with one_connection.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", spy)
    try:
        for name, url in READS_ONLY_VIEWS.items():
            path = url.format(pool=pool.id)
            for who in ("visitor", "buyer"):
                client = one_connection.test_client()
                headers = {}
                if who == "buyer":
                    if path.startswith("/api/"):
                        headers = bearer
                    else:
                        with client.session_transaction() as session:
                            session["_user_id"] = buyer.get_id()
                            session["_fresh"] = True
                elif path.startswith("/api/v1/pools"):
                    continue  # the pools API asks for a token
                seen.clear()
                response = client.get(path, headers=headers)
                assert response.status_code == 200, (name, who, response.status_code)
                assert seen and all(autocommit for _s, autocommit in seen), (name, who, seen)
    finally:
        event.remove(engine, "before_cursor_execute", spy)


@postgres_only
def test_a_reads_only_view_that_writes_is_stopped_before_the_write(one_connection):
    @one_connection.get("/_test/writes")
    @transactions.reads_only
    def writes():
        db.session.execute(reference_versions.insert().values(name="written", version=1))
        return "written"

    assert one_connection.test_client().get("/_test/writes").status_code == 500
    with one_connection.app_context():
        assert _names() == set()
