"""The one advisory lock: serialising writers that touch the same thing (the supply of one
crop and grade, a coop's payout batches) on PostgreSQL."""
from __future__ import annotations

import zlib

from sqlalchemy import text

from ..extensions import db


def advisory_lock(*name) -> None:
    """On PostgreSQL, a transaction-scoped advisory lock named by `name` (held until the
    transaction ends). SQLite serialises writers itself (one write transaction at a time),
    so this does nothing there."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    key = zlib.crc32(":".join(str(part) for part in name).encode())
    db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def supply_lock(coop_id: int, crop_id: int, grade_id: int) -> None:
    """A lock per coop, crop and grade, so a farmer withdrawing supply and a manager opening
    a pool cannot both pass their checks."""
    advisory_lock("supply", coop_id, crop_id, grade_id)


def payouts_lock(coop_id: int) -> None:
    """One payout batch (or import) at a time per coop, so two treasurers cannot put the
    same money in two batches. On SQLite the batch row is written first."""
    advisory_lock("payouts", coop_id)
