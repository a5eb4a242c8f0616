"""Refunds after intake left pending (Stripe did not answer): made again every few minutes.
`flask intake finish-refunds` does the same by hand."""
from __future__ import annotations

from ..jobs import services as jobs


@jobs.periodic("intake.finish_refunds", 300)
def retry_pending_refunds() -> None:
    from . import services
    services.finish_refunds()


@jobs.periodic("intake.missing", 3600)
def tell_missing_intake(now=None) -> int:
    """Managers hear, once per pool, of a pool confirmed INTAKE_MISSING_DAYS ago or more whose
    deliveries are still not all recorded (how many kilograms). Returns how many pools."""
    from datetime import timedelta

    from flask import current_app
    from sqlalchemy import func, select

    from ..common.models import utcnow
    from ..cooperatives import services as coops
    from ..extensions import db
    from ..messages import services as messages
    from ..messages.services import Kg
    from ..pools.models import Allocation, Pool
    from .models import Intake
    now = now or utcnow()
    days = int(current_app.config.get("INTAKE_MISSING_DAYS", 7))
    rows = db.session.execute(
        select(Pool.id, Pool.coop_id, Pool.decided_at, func.sum(Allocation.quantity_g))
        .join(Allocation, Allocation.pool_id == Pool.id)
        .outerjoin(Intake, Intake.allocation_id == Allocation.id)
        .where(Pool.status == "confirmed", Pool.decided_at <= now - timedelta(days=days),
               Intake.id.is_(None))
        .group_by(Pool.id, Pool.coop_id, Pool.decided_at)).all()
    for pool_id, coop_id, decided_at, grams in rows:
        for manager_id in coops.staff_ids(coop_id, "manager"):
            messages.notify(manager_id, "manager.intake_missing",
                            event=f"pool:{pool_id}:intake-missing", coop_id=coop_id,
                            pool=f"#{pool_id}", days=(now - decided_at).days, kg=Kg(grams),
                            link=f"/manage/pools/{pool_id}/intake")
    return len(rows)
