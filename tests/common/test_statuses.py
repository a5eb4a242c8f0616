"""The state machines in coop/common/statuses.py are the one spelling of each status list:
the CHECK constraints and the OpenAPI enums are built from them and say what they said."""
from __future__ import annotations

import pytest

from coop.common import statuses as st
from coop.intake.models import Refund
from coop.ledger.models import LedgerEntry
from coop.payouts.models import PayoutBatch, PayoutLine
from coop.pools.models import Order, Pool
from coop.shares.models import ShareAccount
from coop.treasury.models import BankStatementLine, StripeBalanceTxn

# The constraints as the migrations wrote them: building them from the enums changes nothing.
WRITTEN = {
    Pool: "status IN ('open', 'confirmed', 'failed', 'cancelled')",
    Order: ("status IN ('pending', 'authorized', 'captured', 'released', 'cancelled', 'failed', "
            "'unknown', 'authorizing')"),
    Refund: "status IN ('pending', 'succeeded', 'failed')",
    PayoutBatch: "status IN ('open', 'closed')",
    PayoutLine: "status IN ('pending', 'paid', 'failed')",
    ShareAccount: "status IN ('active', 'redeemed')",
    LedgerEntry: "status IN ('pending', 'posted', 'voided')",
    StripeBalanceTxn: ("status IN ('unmatched', 'matched', 'mismatch', 'missing_ledger', "
                       "'explained', 'released')"),
    BankStatementLine: "status IN ('unmatched', 'matched', 'mismatch', 'explained')",
}


@pytest.mark.parametrize("model", list(WRITTEN), ids=lambda m: m.__name__)
def test_check_constraints_are_built_from_the_machines_unchanged(model):
    checks = [c for c in model.__table__.constraints
              if getattr(c, "name", None) in ("status", f"ck_{model.__tablename__}_status")]
    assert [str(c.sqltext) for c in checks] == [WRITTEN[model]]


@pytest.mark.parametrize("machine", list(st.TRANSITIONS), ids=lambda m: m.__name__)
def test_transitions_stay_inside_their_machine_and_reach_every_status(machine):
    moves = st.TRANSITIONS[machine]
    assert all(isinstance(old, machine) for old in moves)
    assert all(isinstance(new, machine) for targets in moves.values() for new in targets)
    # From where its rows begin: the first status, and any no move leads to (an order paid
    # by card entry begins authorizing).
    starts = {next(iter(machine))} | (set(machine) - {new for targets in moves.values()
                                                      for new in targets})
    reached, todo = set(starts), list(starts)
    while todo:
        for new in moves.get(todo.pop(), ()):
            if new not in reached:
                reached.add(new)
                todo.append(new)
    assert reached == set(machine)


def test_every_state_machine_has_its_transitions():
    machines = {v for v in vars(st).values()
                if isinstance(v, type) and issubclass(v, st.StrEnum) and v is not st.StrEnum}
    assert machines == set(st.TRANSITIONS)


def test_moves_are_checked_against_the_machine():
    assert st.may_move(st.PoolStatus.OPEN, st.PoolStatus.CONFIRMED)
    assert not st.may_move(st.PoolStatus.CONFIRMED, st.PoolStatus.OPEN)
    assert not st.may_move(st.OrderStatus.CAPTURED, st.OrderStatus.RELEASED)
    assert st.OrderStatus.CAPTURED == "captured"  # members are the stored strings


def test_the_orm_refuses_a_move_its_machine_forbids(sold):
    """Every status attribute is guarded (statuses.guard): an allowed move passes, a forbidden
    one raises before anything reaches the database, an unchanged status is no move."""
    from coop.extensions import db
    order = sold.orders[0]
    assert order.status == "captured"
    order.status = "captured"
    with pytest.raises(st.ForbiddenMove, match="Order captured -> authorized"):
        order.status = "authorized"
    pool = db.session.get(Pool, sold.pool.id)
    with pytest.raises(st.ForbiddenMove, match="Pool confirmed -> open"):
        pool.status = "open"
    db.session.rollback()
    db.session.expire_all()  # the old status is loaded when the object is expired
    with pytest.raises(st.ForbiddenMove):
        db.session.get(Pool, sold.pool.id).status = "failed"
    db.session.rollback()


def test_the_orm_lets_an_allowed_move_pass(market):
    pool = market.open_pool()
    pool.status = "cancelled"  # open -> cancelled
    assert pool.status == "cancelled"
    from coop.extensions import db
    db.session.rollback()


def _status_enums(node, found):
    if isinstance(node, dict):
        status = node.get("properties", {}).get("status", {}) if isinstance(
            node.get("properties"), dict) else {}
        if "enum" in status:
            found.append(status["enum"])
        for value in node.values():
            _status_enums(value, found)
    elif isinstance(node, list):
        for value in node:
            _status_enums(value, found)
    return found


def test_openapi_enums_come_from_the_machines(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    assert schemas["Pool"]["properties"]["status"]["enum"] == [
        "open", "confirmed", "failed", "cancelled"]
    assert schemas["Listing"]["properties"]["status"]["enum"] == [
        "available", "committed", "sold", "withdrawn"]
    found = _status_enums(spec, [])
    for machine in (st.PoolStatus, st.OrderStatus, st.ListingStatus, st.RefundStatus,
                    st.PayoutBatchStatus, st.PayoutLineStatus):
        assert st.values(machine) in found, machine
