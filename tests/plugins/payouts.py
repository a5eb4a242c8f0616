"""Fixture `world`: two coops whose farmers are owed money on each rail; helpers that owe,
read what is due and write a bank's confirmation file."""
from __future__ import annotations

import pytest

from coop.cooperatives import services as coop_services
from coop.extensions import db
from coop.ledger import services as ledger
from coop.payouts import services as payouts

_keys = iter(range(1, 10**9))


def owe(coop, farmer, amount_minor):
    """Make the coop owe the farmer (as an intake would): Dr bank, Cr farmer_payable."""
    ledger.post(coop, key=f"test-intake:{next(_keys)}", kind="intake",
                lines=[ledger.debit("bank", amount_minor),
                       ledger.credit(ledger.farmer_payable(farmer.id), amount_minor)])
    db.session.commit()


def due_of(coop, farmer) -> int:
    return next((p.amount_due_minor for p in payouts.payables(coop) if p.farmer_id == farmer.id),
                0)


def set_account(coop, farmer, rail, account, bank_name=""):
    """Write a member record's payout details directly (as old data or a changed rule would
    leave them), bypassing the form's checks."""
    profile = coop_services.farmer_profile(coop.id, farmer.id)
    profile.payout_rail, profile.payout_account, profile.bank_name = rail, account, bank_name
    db.session.commit()


def bank_confirmation(*rows, header="line_id,status,reference"):
    return "\r\n".join([header] + [",".join(str(c) for c in row) for row in rows]) + "\r\n"


@pytest.fixture
def world(make_coop, make_user, make_farmer, make_buyer):
    class World:
        pass

    w = World()
    w.treasurer = make_user(name="Tesorera")
    w.coop = make_coop(treasurer=w.treasurer)
    w.manager = next(m.user for m in w.coop.memberships if m.role == "manager")
    w.nequi = make_farmer(w.coop, name="Ana", rail="nequi", account="3001234567")
    w.bank = make_farmer(w.coop, name="Beto", rail="bank", account="12345678")
    set_account(w.coop, w.bank, "bank", "12345678", "Banco Agrario")
    w.cash = make_farmer(w.coop, name="Carla", rail="cash")
    w.idle = make_farmer(w.coop, name="Dora", rail="nequi", account="3109876543")  # owed nothing
    owe(w.coop, w.nequi, 150_000_00)
    owe(w.coop, w.bank, 80_000_50)
    owe(w.coop, w.cash, 20_000_00)
    w.other_treasurer = make_user(name="Other treasurer")
    w.other = make_coop(treasurer=w.other_treasurer)
    w.other_farmer = make_farmer(w.other, name="Otro", rail="nequi", account="3201112233")
    owe(w.other, w.other_farmer, 10_000_00)
    w.buyer = make_buyer()
    return w
