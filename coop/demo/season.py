"""A scripted season on the demo data (`flask demo-season`): pools, intake with a shortfall
(refunded at Stripe), a downgrade and an over-delivery, advances, share payments and
withholding, a payout batch with one failed line paid in the next batch, an operating cost,
premium spent, and the year-end close. Ends with the ledger check. Runs against the Stripe
that is configured (the local sandbox under `make run`)."""
from __future__ import annotations

import io
from datetime import date, timedelta

from sqlalchemy import select

from ..auth.models import User
from ..common.models import utcnow
from ..cooperatives import finance
from ..cooperatives.models import Cooperative
from ..extensions import db
from ..intake import services as intake
from ..ledger import services as ledger
from ..payouts import services as payouts
from ..pools import services as pools, settlement
from ..pools.models import Allocation, Pool
from ..shares import services as shares
from ..treasury import costs, year_end


def _user(email: str) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def _staff(coop: Cooperative, role: str) -> User:
    return next(m.user for m in coop.memberships if m.role == role)


def run_season(say=print, year: int | None = None) -> dict:
    """Play one season in every demo coop that has an open pool. Returns figures per coop."""
    figures = {}
    buyers = [_user(f"buyer{n}@example.org") for n in range(1, 6)]
    for coop in db.session.scalars(select(Cooperative).order_by(Cooperative.id)).all():
        pool = db.session.scalar(select(Pool).where(Pool.coop_id == coop.id,
                                                    Pool.status == "open").order_by(Pool.id))
        if pool is None:
            continue
        manager, treasurer = _staff(coop, "manager"), _staff(coop, "treasurer")
        # Shares: 10% withheld until 5 shares of 50.00 are paid; advances of 30% at intake.
        par = 50 * 10 ** 2
        finance.update_settings(coop, treasurer, par_minor=par, min_shares=5,
                                withholding_bps=1000, advance_bps=3000)
        members = [m.user_id for m in coop.memberships if m.role == "farmer"][:6]
        for member in members:
            shares.set_subscription(coop, treasurer, member, 5)
        shares.pay(coop, treasurer, members[0], par * 2, via="cash",
                   key=f"season:share-cash:{members[0]}")
        db.session.commit()

        # Buyers fill the pool; one card is declined and commits nothing.
        room_kg = (pool.max_g - pool.committed_g) // 1000
        parts = [room_kg // 2, room_kg // 4, room_kg // 8]
        for buyer, kg in zip(buyers, parts):
            pools.place_order(buyer, pool.id, quantity_kg=str(kg), payment_method="pm_card_visa",
                              idempotency_key=f"season:{pool.id}:{buyer.id}")
        try:
            pools.place_order(buyers[3], pool.id, quantity_kg="1",
                              payment_method="pm_card_chargeCustomerFail")
        except Exception as exc:  # the decline is part of the story
            say(f"  declined as expected: {getattr(exc, 'code', exc)}")
        pools.close_pool(pool.id)
        settlement.drain()  # the workers' part: capture the holds (here, in this process)
        db.session.expire_all()
        closed = db.session.get(Pool, pool.id)
        say(f"{coop.name}: pool {pool.id} {closed.status}, {closed.allocated_g / 1000:.3f} kg")

        # Intake: most deliver in full; one short (refunded to buyers), one over, one lower
        # grade (the difference refunded), one not delivered at all.
        allocations = list(db.session.scalars(select(Allocation).where(
            Allocation.pool_id == pool.id).order_by(Allocation.id)))
        lower = {"sca85": "sca80", "export": "ordinary"}.get(pool.grade.code, pool.grade.code)
        for n, allocation in enumerate(allocations):
            kg = allocation.quantity_g / 1000
            received, grade, missing = f"{kg:.3f}", pool.grade.code, False
            if n == 0:
                received = f"{kg * 0.8:.3f}"
            elif n == 1:
                received = f"{kg + 12.5:.3f}"
            elif n == 2:
                grade = lower
            elif n == 3:
                received, missing = "0", True
            intake.record_intake(manager, allocation.id, received_kg=received, grade=grade,
                                 not_delivered=missing, idempotency_key=f"season:{allocation.id}")
        intake.finish_refunds()
        db.session.commit()

        # Payouts: one batch, every line paid but one, which fails and is paid next time.
        batch, _ = payouts.create_batch(coop, treasurer, idempotency_key=f"season:{coop.id}:1")
        db.session.commit()
        lines = sorted(batch.lines, key=lambda line: line.id)
        rows = ["line_id,status,reference"] + [
            f"{line.id},{'failed' if i == 0 else 'paid'},SEASON-{line.id}"
            for i, line in enumerate(lines)]
        payouts.import_confirmations(batch, treasurer, "\n".join(rows) + "\n")
        db.session.commit()
        again, _ = payouts.create_batch(coop, treasurer, idempotency_key=f"season:{coop.id}:2")
        db.session.commit()
        payouts.import_confirmations(again, treasurer, "line_id,status,reference\n" + "".join(
            f"{line.id},paid,SEASON2-{line.id}\n" for line in again.lines))
        db.session.commit()

        # The coop's own money: a cost, premium spent by assembly decision.
        costs.record_operating_cost(coop, treasurer, amount="150000" if coop.currency == "COP"
                                       else "40", spent_on=date.today(),
                                       description="Collection point scale calibration",
                                       key=f"season:cost:{coop.id}")
        premium = ledger.balance(coop, "premium_fund")
        if premium > 0:
            ledger.post(coop, key=f"season:premium:{coop.id}", kind="premium_spend",
                        memo="Assembly decision: drying beds for the collection point",
                        user=treasurer, lines=[ledger.debit("premium_fund", premium // 2),
                                               ledger.credit("bank", premium // 2)])
        db.session.commit()

        # Year-end close of this year, as the treasurer would in January.
        close_year = year or utcnow().year
        plan = year_end.preview(coop, close_year)
        year_end.close_year(coop, treasurer, close_year, expected_surplus=plan.surplus_minor,
                            today=date(close_year + 1, 1, 15))
        db.session.commit()
        figures[coop.slug] = {
            "pool": closed.status, "allocations": len(allocations),
            "refunds": len(list(db.session.scalars(select(intake.Refund)
                                                   .join(intake.Intake).join(Allocation)
                                                   .where(Allocation.pool_id == pool.id)))),
            "batches": [len(lines), len(again.lines)], "surplus_minor": plan.surplus_minor}
        say(f"  {figures[coop.slug]}")
    return figures


__all__ = ["run_season", "io", "timedelta"]
