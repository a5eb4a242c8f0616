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


def database_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{Path(_TMP) / 'test.sqlite'}"


def is_postgres() -> bool:
    return database_url().startswith("postgresql")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"  # the browser suite's screenshots and downloads
