"""The intake's read side for other domains: which Stripe refund ids are the coop's own."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from ..extensions import db
from .models import Refund


def own_refund_ids(coop_id: int, ids: Iterable[str]) -> set[str]:
    """Those of `ids` that are a Stripe refund Minga made for this coop's buyers (one query)."""
    ids = [i for i in set(ids) if i]
    if not ids:
        return set()
    return set(db.session.scalars(select(Refund.stripe_refund_id).where(
        Refund.coop_id == coop_id, Refund.stripe_refund_id.in_(ids))))
