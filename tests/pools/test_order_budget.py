"""Placing an order costs a fixed number of SQL statements and commits (issue 12, part 2b):
through the API, with a bearer token and an Idempotency-Key, the same for an early order of a
pool as for one placed after many more pools and orders exist. The card hold is an instant
in-process one (the sandbox's time is not what is measured) and the jobs an order commits
are counted as handed over, not run (production hands them to the workers)."""
from __future__ import annotations

import itertools
from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from coop.extensions import db
from coop.jobs import services as jobs
from coop.ledger.models import LedgerEntry
from coop.messages.models import Message
from coop.payments import gateway
from coop.pools.models import Order

# The budget: auth (1), the key's earlier order (1), the pool and its price (1), the
# reservation (1), the order (1), the hold recorded (1), its ledger entry and postings (2),
# the job that tells the buyer (and the managers, at the pool's minimum) on a worker (1).
STATEMENTS = 9
COMMITS = {"postgresql": 2, "sqlite": 3}  # SQLite ends the reads first (it cannot upgrade)


@pytest.fixture
def instant_hold(monkeypatch):
    counter = itertools.count()

    def hold(amount, currency, payment_method, metadata, *, idempotency_key=None):
        return gateway.Hold(id=f"pi_budget_{next(counter)}", status="requires_capture",
                            amount=amount, currency=currency, charge_id=None,
                            metadata=dict(metadata))
    monkeypatch.setattr(gateway, "hold", hold)


@pytest.fixture
def handed_over(monkeypatch):
    """The jobs committed, as they would be handed to Celery (not run in the request)."""
    handed: list = []
    monkeypatch.setattr(jobs, "dispatch", handed.extend)
    return handed


@contextmanager
def counted():
    seen = {"statements": 0, "commits": 0}

    def statement(_conn, _cursor, sql, *_args):
        seen["statements"] += 1
        seen.setdefault("sql", []).append(" ".join(sql.split())[:90])

    def commit(*_args):
        seen["commits"] += 1
    engine = db.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


def _order(client, headers, pool_id, key, kg="1"):
    response = client.post(f"/api/v1/pools/{pool_id}/orders",
                           json={"quantity_kg": kg, "payment_method": "pm_card_visa"},
                           headers={**headers, "Idempotency-Key": key})
    assert response.status_code == 201, response.json
    return response


@pytest.mark.usefixtures("instant_hold")
def test_placing_an_order_runs_a_fixed_number_of_statements(app, client, market, make_buyer,
                                                            token, handed_over):
    dialect = db.engine.dialect.name
    pool_id = market.open_pool(min_kg="1", max_kg="200").id
    buyers = [token(b) for b in market.buyers]
    for n in range(3):  # the coop's first hold opens its ledger accounts; managers told
        _order(client, buyers[n % 2], pool_id, f"warm-{n}")
    with counted() as early:
        answer = _order(client, buyers[0], pool_id, "early")
    assert answer.json["status"] == "authorized" and answer.json["quantity_kg"] == "1.000"
    assert early["statements"] <= STATEMENTS, early
    assert early["commits"] <= COMMITS[dialect], early
    # More of everything: other pools, other buyers, many orders.
    others = [market.open_pool(min_kg="1", max_kg="100").id for _ in range(3)]
    more = [token(make_buyer(organisation=f"More {n}")) for n in range(3)]
    for n in range(30):
        _order(client, more[n % 3], others[n % 3] if n % 2 else pool_id, f"more-{n}")
    with counted() as late:
        answer = _order(client, more[0], pool_id, "late")
    assert late["statements"] == early["statements"]  # not one more for more data
    assert late["commits"] == early["commits"]
    # What the order wrote: the order, its hold's ledger entry (two postings), and the job
    # telling its buyer, handed over once the transaction committed; run (as a worker
    # would), it writes one message to the buyer, however often it runs.
    order = db.session.get(Order, answer.json["id"])
    told = select(func.count()).select_from(Message).where(
        Message.event == f"order:{order.id}:hold:{order.payment_intent_id}")
    assert db.session.scalar(told) == 0  # not written in the order's request
    assert handed_over
    for job_id, _at in list(handed_over):
        assert jobs.run(job_id).status == "done"
    assert db.session.scalar(told) == 1
    assert order.status == "authorized" and order.payment_intent_id
    entry = db.session.scalar(select(LedgerEntry).where(
        LedgerEntry.idempotency_key == f"order:{order.id}:hold:{order.payment_intent_id}"))
    assert entry.status == "pending" and sorted(p.amount_minor for p in entry.postings) == \
        [-order.amount_authorized_minor, order.amount_authorized_minor]
    # The pool's managers were told of its minimum once, whatever the number of orders.
    assert db.session.scalar(select(func.count()).select_from(Message).where(
        Message.event == f"pool:{pool_id}:minimum")) == 1
    # A replay answers from the first order, in a few statements and without a commit
    # that writes.
    with counted() as replay:
        again = _order(client, more[0], pool_id, "late")
    assert again.json == answer.json and again.headers["Idempotent-Replayed"] == "true"
    assert replay["statements"] <= 2, replay
