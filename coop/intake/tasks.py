"""Refunds after intake left pending (Stripe did not answer): made again every few minutes.
`flask intake finish-refunds` does the same by hand."""
from __future__ import annotations

from ..jobs import services as jobs


@jobs.periodic("intake.finish_refunds", 300)
def retry_pending_refunds() -> None:
    from . import services
    services.finish_refunds()
