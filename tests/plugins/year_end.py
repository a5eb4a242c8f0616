"""Fixture: a coop's year of intakes, card fees and costs (the year-end close's tests)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from coop.ledger import services as ledger
from coop.treasury import costs

YEAR = 2025
TODAY = date(2026, 2, 1)


def on_day(month, day=15, year=YEAR):
    return datetime(year, month, day, 12, tzinfo=timezone.utc)



@pytest.fixture
def coop_year(make_coop, make_user, make_farmer):
    class C:
        pass
    c = C()
    c.treasurer = make_user(name="Tesorera")
    c.coop = make_coop(treasurer=c.treasurer)
    c.manager = next(x.user for x in c.coop.memberships if x.role == "manager")
    c.farmers = [make_farmer(c.coop) for _ in range(3)]
    c.n = 0

    def intake(farmer, farmer_amount, commission, when=None):
        """A capture and an intake: the farmer is owed, the commission earned."""
        c.n += 1
        total = farmer_amount + commission
        ledger.post(c.coop, key=f"cap:{c.n}", kind="capture", external_ref=f"ch_{c.n}",
                    effective_on=when or on_day(3),
                    lines=[ledger.debit("stripe_clearing", total),
                           ledger.credit("buyer_deposits", total)])
        return ledger.post(c.coop, key=f"intake:{c.n}", kind="intake",
                           effective_on=when or on_day(3),
                           lines=[ledger.debit("buyer_deposits", total),
                                  ledger.credit(ledger.farmer_payable(farmer.id), farmer_amount),
                                  ledger.credit("commission_income", commission)])

    def fee(amount, when=None):
        c.n += 1
        ledger.post(c.coop, key=f"fee:{c.n}", kind="card_fee", effective_on=when or on_day(4),
                    lines=[ledger.debit("card_fees", amount),
                           ledger.credit("stripe_clearing", amount)])

    def cost(amount, on=date(YEAR, 6, 1)):
        c.n += 1
        costs.record_operating_cost(c.coop, c.treasurer, amount=str(amount), spent_on=on,
                                       description="Alquiler bodega", key=f"k{c.n}")
    c.intake, c.fee, c.cost = intake, fee, cost
    return c
