"""The daily rates: celery beat asks every 6 hours (a central bank publishes once a working
day, at a time of its own); one fetch job per quarter day, however often beat asks. `flask
fx-fetch` does the same by hand."""
from __future__ import annotations

from flask import current_app

from ..common.models import utcnow
from ..jobs import services as jobs
from . import services

EVERY_SECONDS = 6 * 3600


@jobs.periodic("fx.fetch_due", EVERY_SECONDS)
def enqueue_fetch() -> int:
    """A fetch job for this quarter of the day, when a source is configured."""
    if not current_app.config.get("MINGA_FX_SOURCE"):
        return 0
    now = utcnow()
    jobs.enqueue("fx.fetch", key=f"fx-fetch:{now:%Y-%m-%d}:{now.hour // 6}")
    return 1


@jobs.task("fx.fetch")
def fetch() -> None:
    """Reads the source and stores its rates (idempotent: a second run stores nothing)."""
    services.fetch()
