"""What the tests share that is not a fixture: the test database's address, the fixtures'
password and names."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PASSWORD = "correct-horse-battery"
COLLECTION_POINTS = ("Vereda El Tambo", "Vereda La Esperanza", "Acopio central")
KEEP = {"crops", "grades", "alembic_version"}  # loaded by migrations, never emptied
_TMP = tempfile.mkdtemp(prefix="minga-tests-")


def worker() -> str:
    """The pytest-xdist worker running this process ("gw0", "gw1", ...), "" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_number() -> int:
    name = worker()
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


def database_url() -> str:
    """SQLite: a file in this process's own temporary folder. PostgreSQL: TEST_DATABASE_URL's
    database, or under pytest-xdist one database per worker beside it (`test_gw0`, ...),
    created by the `app` fixture, so that workers never empty each other's tables."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{Path(_TMP) / 'test.sqlite'}"
    if not worker():
        return base
    from sqlalchemy.engine import make_url
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker()}").render_as_string(hide_password=False)


def is_postgres() -> bool:
    return database_url().startswith("postgresql")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"  # the browser suite's screenshots and downloads
