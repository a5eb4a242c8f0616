"""A lot on its way in the demo's data (tests/test_page_growth.py): the demo grows its intakes
set-based, without the lots domain, so the settled pool's lot is formed here from its
recorded deliveries (lots.add_delivery, as intake does), then marked ready and dispatched,
one buyer's receipt confirmed and a problem reported."""
from __future__ import annotations

from sqlalchemy import select

from coop.catalog.models import Crop
from coop.cooperatives.models import Cooperative
from coop.extensions import db
from coop.intake.models import Intake
from coop.lots import dispatch
from coop.lots import services as lots
from coop.pools.models import Allocation, Order, Pool
from coop.pools.terms import local_today


def lot_on_its_way(pool_id: int, manager, buyer) -> int:
    """The pool's lot (formed from its intakes if it has none), dispatched; `buyer` confirmed
    receipt and reported a problem. Returns the lot's id."""
    pool = db.session.get(Pool, pool_id)
    lot = lots.lot_of_pool(pool_id)
    if lot is None:
        coop = db.session.get(Cooperative, pool.coop_id)
        slug = db.session.scalar(select(Crop.slug).where(Crop.id == pool.crop_id))
        for intake, allocation in db.session.execute(
                select(Intake, Allocation).join(Allocation, Allocation.id == Intake.allocation_id)
                .where(Allocation.pool_id == pool_id).order_by(Intake.id)):
            lots.add_delivery(intake, allocation, pool, coop, slug)
        lot = lots.lot_of_pool(pool_id)
    assert db.session.scalar(select(Order.id).where(
        Order.pool_id == pool_id, Order.buyer_id == buyer.buyer_id,
        Order.status == "captured")) is not None, "the buyer bought none of this pool"
    dispatch.record_step(manager, lot.id, "ready")
    dispatch.record_step(manager, lot.id, "dispatched", carrier="Transportes del Cauca",
                         document_number="REM-0001", on_date=local_today().isoformat())
    dispatch.confirm_receipt(buyer, lot.id, note="Llegó completo")
    dispatch.report_problem(buyer, lot.id, note="Un saco mojado", key="growth")
    db.session.commit()
    return lot.id
