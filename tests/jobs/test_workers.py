"""Real worker processes (`celery -A worker worker`, `celery -A worker beat`) on the machine's
Redis and the test database: beat closes a due pool on time, a worker settles it at the Stripe
sandbox and sends the messages; a worker killed mid-settlement leaves the job to a second
worker once its lease runs out, and every card is captured exactly once."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from coop.common.models import utcnow
from coop.extensions import db
from coop.jobs.models import Job
from coop.messages import services as messages
from coop.messages.models import Message
from coop.messages.services import Kg, Money
from coop.pools import services as pools
from coop.pools.models import Order, Pool
from tests.support.intake import VISA
from tests.support.workers import BROKER_URL, Processes, flush_broker, wait_for, worker_env

pytestmark = pytest.mark.usefixtures("ledger_sound")


@pytest.fixture
def broker():
    flush_broker()
    yield BROKER_URL
    flush_broker()


def _due_pool(market, quantities):
    """A pool with an order of each quantity (buyers in turn), past its closing time."""
    pool = market.open_pool(min_kg="100", max_kg="500")
    orders = [pools.place_order(market.buyers[i % 2], pool.id, quantity_kg=kg,
                                payment_method=VISA)[0] for i, kg in enumerate(quantities)]
    db.session.execute(update(Pool).where(Pool.id == pool.id)
                       .values(closes_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    return pool.id, [o.id for o in orders]


def _fresh(model, key):
    db.session.rollback()  # a new snapshot: the workers commit in other processes
    return db.session.get(model, key, populate_existing=True)


def _settled(pool_id):
    pool = _fresh(Pool, pool_id)
    return pool if pool.settled_at is not None else None


def _close_job(pool_id) -> Job:
    db.session.rollback()
    return db.session.scalar(select(Job).where(Job.key == f"pool-close:{pool_id}"))


def _settle_job(pool_id) -> Job:
    db.session.rollback()
    return db.session.scalar(select(Job).where(Job.key.like(f"pool-settle:{pool_id}:%")))


def _captured_once_at_stripe(sandbox, orders: list[Order]) -> None:
    """Each intent captured once, for its order's amount: one charge, one balance movement."""
    from coop.payments import gateway
    moved = [(t["source"], t["amount"]) for t in gateway.balance_transactions()
             if t["type"] == "charge"]
    assert len(moved) == len(orders)
    for order in orders:
        intent = sandbox.get(f"/v1/payment_intents/{order.payment_intent_id}"
                             "?expand[]=latest_charge")
        charge = intent["latest_charge"]
        assert intent["status"] == "succeeded" and charge["captured"] is True
        # localstripe releases the rest of a hold as a refund of the difference.
        assert charge["amount"] - charge["amount_refunded"] == order.amount_due_minor
        assert order.amount_captured_minor == order.amount_due_minor
        assert moved.count((charge["id"], order.amount_due_minor)) == 1


def test_beat_closes_a_due_pool_on_time_a_worker_settles_it_and_sends_a_message(
        app, market, stripe_clean, broker, other_app, mailbox, tmp_path):
    pool_id, order_ids = _due_pool(market, ["200", "100"])
    web = other_app(JOBS_EAGER=False, CELERY_BROKER_URL=broker)
    env = worker_env(app, JOB_LEASE_SECONDS=60, JOBS_SWEEP_AFTER_SECONDS=2)
    with Processes(tmp_path) as procs:
        procs.start("worker", env)
        # Beat as in production, each periodic task every second instead of every minute.
        procs.start("beat", {**env, "MINGA_TEST_BEAT_SECONDS": "1"},
                    module="tests.support.worker_entry")
        # A web process tells a buyer something: the send job reaches Redis after its commit.
        buyer, buyer_email = market.buyers[0], market.buyers[0].email
        with web.app_context():
            [message] = messages.notify(buyer.id, "buyer.hold_placed", event="test:hold",
                                        amount=Money(640_800_000, "COP"), kg=Kg(200_000),
                                        pool=f"#{pool_id}", closes="hoy")
            db.session.commit()
            message_id = message.id
        pool = wait_for(lambda: _settled(pool_id), timeout=40, what="the pool settled",
                        processes=procs)
        wait_for(lambda: _fresh(Message, message_id).status == "sent", timeout=20,
                 what="the message sent", processes=procs)
        # Whatever else the close told people (its own messages) is sent too.
        wait_for(lambda: not db.session.scalar(select(Message.id).where(
            Message.status == "queued")), timeout=20, what="no message queued",
            processes=procs)
    assert pool.status == "confirmed"
    orders = [_fresh(Order, order_id) for order_id in order_ids]
    assert [o.status for o in orders] == ["captured"] * len(orders)
    _captured_once_at_stripe(stripe_clean, orders)
    job = _close_job(pool_id)
    assert job.status == "done" and job.attempts == 1
    sent = _fresh(Message, message_id)
    assert sent.provider_id and sent.sent_at is not None
    received = [m for m in mailbox if buyer_email in m.rcpt_tos]
    # Exactly once at the mail server: its Message-ID is the provider id recorded.
    assert [m.headers.get("Message-ID") for m in received].count(sent.provider_id) == 1
    assert sent.subject in [m.subject for m in received]


def test_a_worker_killed_mid_settlement_is_relieved_by_another_and_nothing_is_captured_twice(
        app, market, stripe_clean, broker, tmp_path):
    pool_id, order_ids = _due_pool(market, ["100", "100", "100"])
    hung = tmp_path / "hung"
    # A short lease: a job whose worker is gone is handed over within seconds (and so is
    # its claim on the holds it was settling).
    env = worker_env(app, JOB_LEASE_SECONDS=3, JOBS_SWEEP_AFTER_SECONDS=2,
                     SETTLE_CLAIM_SECONDS=3)
    with Processes(tmp_path) as procs:
        first = procs.start("worker", {**env, "MINGA_TEST_HANG_FILE": hung},
                            module="tests.support.worker_entry", name="first")
        procs.start("beat", {**env, "MINGA_TEST_BEAT_SECONDS": "1"},
                    module="tests.support.worker_entry")
        # The first worker has captured the second card at Stripe and not yet recorded it.
        wait_for(hung.exists, timeout=40, what="the first worker mid-settlement",
                 processes=procs)
        procs.kill(first)
        db.session.rollback()
        # The close was decided at once; its chunk's outcomes are recorded together: none yet.
        statuses = [_fresh(Order, order_id).status for order_id in order_ids]
        assert statuses == ["authorized", "authorized", "authorized"]
        assert _close_job(pool_id).status == "done"
        assert _settle_job(pool_id).status == "running"
        procs.start("worker", env, name="second")
        pool = wait_for(lambda: _settled(pool_id), timeout=40,
                        what="the second worker finishing the settlement", processes=procs)
        wait_for(lambda: _settle_job(pool_id).status == "done", timeout=10,
                 what="the settlement job done", processes=procs)
    assert pool.status == "confirmed"
    orders = [_fresh(Order, order_id) for order_id in order_ids]
    assert [o.status for o in orders] == ["captured"] * len(orders)
    _captured_once_at_stripe(stripe_clean, orders)
    job = _settle_job(pool_id)
    assert job.attempts == 2
    assert json.loads(job.payload) == {"pool_id": pool_id, "order_ids": order_ids}
    assert _close_job(pool_id).attempts == 1
