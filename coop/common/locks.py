"""Serialising writers that touch the same supply (listings and pools of one crop and grade)."""
from __future__ import annotations

import zlib

from sqlalchemy import text

from ..extensions import db


def supply_lock(coop_id: int, crop_id: int, grade_id: int) -> None:
    """On PostgreSQL, a transaction-scoped advisory lock per coop, crop and grade, so a farmer
    withdrawing supply and a manager opening a pool cannot both pass their checks. SQLite
    serialises writers itself (one write transaction at a time)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = zlib.crc32(f"supply:{coop_id}:{crop_id}:{grade_id}".encode())
    db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
