"""The payouts' background work: telling the farmers of a bank's confirmation file (the
import enqueues these jobs in its own transaction)."""
from __future__ import annotations

from ..extensions import db
from ..jobs import services as jobs
from . import services


@jobs.task(services.TELL_TASK)
def tell_confirmed(batch_id: int, line_ids: list[int]) -> None:
    services.tell_confirmed(batch_id, line_ids)
    db.session.commit()
