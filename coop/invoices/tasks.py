"""The farmers' weekly purchase documents, issued by a periodic job (hourly: the first run
after a week ends issues it; later runs find every farmer-week numbered and do nothing).
`flask invoices issue-week` does the same by hand."""
from __future__ import annotations

from ..jobs import services as jobs


@jobs.periodic("invoices.support_week", 3600)
def issue_support_documents() -> int:
    from . import support
    return support.issue_last_week_everywhere()
