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
