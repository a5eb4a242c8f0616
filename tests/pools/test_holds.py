"""No card hold outlives its order (issue 10, §6). Each fault with the real sandbox: Stripe
hanging past the timeout (the sandbox paused with SIGSTOP), the worker killed between
Stripe's answer and the record (a process of its own, SIGKILL), the database dropping the
connection (pg_terminate_backend on PostgreSQL; the connection closed under SQLite). After
the resolver runs: no live hold at the sandbox without an authorized order, and Minga's and
the sandbox's sums equal."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from coop.common.errors import Conflict, DomainError, PaymentDeclined
from coop.common.models import utcnow
from coop.extensions import db
from coop.payments import gateway
from coop.pools import orders as pool_orders, services as pools
from coop.pools.models import Order, Pool
from tests.support import database_url, is_postgres
from tests.support.holds import (assert_holds_agree, live_holds, place_order_and_die,
                                 sandbox_intents)
from tests.support.settle import cancel_and_settle, close_and_settle

VISA, DECLINE = "pm_card_visa", "pm_card_chargeCustomerFail"
TIMEOUT = 1.0          # the Stripe client's timeout in these tests (30 s in production)
SETTLE = 1.5           # HOLD_RESOLVE_AFTER_SECONDS in these tests (120 s in production)


@pytest.fixture
def quick(app, stripe_clean):
    """The sandbox, with a Stripe timeout and a settle time of about a second."""
    saved = {k: app.config.get(k) for k in ("STRIPE_TIMEOUT_SECONDS",
                                            "HOLD_RESOLVE_AFTER_SECONDS", "HOLD_FAULT_HOOKS")}
    app.config.update(STRIPE_TIMEOUT_SECONDS=TIMEOUT, HOLD_RESOLVE_AFTER_SECONDS=SETTLE)
    try:
        yield stripe_clean
    finally:
        stripe_clean.resume()
        app.config.update(saved)


def _hooks(app, **hooks):
    app.config["HOLD_FAULT_HOOKS"] = hooks


def _order(kg="100", key=None, pm=VISA, buyer=None, market=None):
    return pools.place_order(buyer or market.buyers[0], market.pool.id, quantity_kg=kg,
                             payment_method=pm, idempotency_key=key)


def _committed(pool_id) -> int:
    db.session.expire_all()
    return db.session.get(Pool, pool_id).committed_g


def _orders() -> list[Order]:
    db.session.expire_all()
    return list(db.session.scalars(select(Order).order_by(Order.id)))


def _intents_of(sandbox, order_id) -> list[dict]:
    return [pi for pi in sandbox_intents(sandbox)
            if pi.get("metadata", {}).get("order_id") == str(order_id)]


def _wait_for(predicate, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _later():
    """A moment past the settle time: "no hold found" is trusted, pending is abandoned."""
    return utcnow() + timedelta(seconds=SETTLE + 1)


# ------------------------------------------------------------------ Stripe hangs

def test_a_hanging_stripe_leaves_the_order_unknown_and_the_resolver_settles_it(
        market, quick, client, token):
    pool = market.pool = market.open_pool()
    headers = {**token(market.buyers[0]), "Idempotency-Key": "hang-1"}
    body = {"quantity_kg": "100", "payment_method": VISA}
    quick.pause()
    try:
        started = time.monotonic()
        response = client.post(f"/api/v1/pools/{pool.id}/orders", json=body, headers=headers)
        assert time.monotonic() - started < TIMEOUT + 5  # the configured timeout, not 30 s
    finally:
        quick.resume()
    assert response.status_code == 503
    assert response.json["error"]["code"] == "payment_unknown"
    assert "Nothing was held" not in response.json["error"]["message"]
    [order] = _orders()
    assert order.status == "unknown" and _committed(pool.id) == 100_000
    # Resumed, the sandbox handles the request it was sent: the hold is live there.
    assert _wait_for(lambda: _intents_of(quick, order.id))
    [intent] = _intents_of(quick, order.id)
    assert intent["status"] == "requires_capture"
    assert intent["metadata"] == {"order_id": str(order.id), "pool_id": str(pool.id),
                                  "coop_id": str(pool.coop_id)}
    # The pool is open and Stripe holds exactly the order's amount: the order stands.
    result = pools.resolve_holds()
    assert result.stood == [order.id] and result.cancelled == []
    order = db.session.get(Order, order.id)
    assert order.status == "authorized" and order.payment_intent_id == intent["id"]
    assert_holds_agree(quick)
    # A replay with the same key returns the resolved order, never a second hold.
    again = client.post(f"/api/v1/pools/{pool.id}/orders", json=body, headers=headers)
    assert again.status_code == 201 and again.json["id"] == order.id
    assert again.json["status"] == "authorized"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox_intents(quick)) == 1
    # Running the resolver again changes nothing.
    assert pools.resolve_holds().cancelled == []
    assert_holds_agree(quick)


def test_an_unknown_order_whose_pool_closed_meanwhile_is_cancelled(market, quick):
    market.pool = market.open_pool(min_kg="100")
    quick.pause()
    try:
        with pytest.raises(DomainError) as err:
            _order("150", key="late", market=market)
    finally:
        quick.resume()
    assert err.value.code == "payment_unknown"
    [order] = _orders()
    assert _wait_for(lambda: _intents_of(quick, order.id))
    # The pool reached its closing time before anyone resolved the order: it cannot stand.
    result = pools.resolve_holds(now=market.pool.closes_at + timedelta(seconds=1))
    assert result.failed == [order.id] and len(result.cancelled) == 1
    order = db.session.get(Order, order.id)
    assert order.status == "failed" and _committed(market.pool.id) == 0
    assert _intents_of(quick, order.id)[0]["status"] == "canceled"
    assert_holds_agree(quick)
    # The replay answers what happened, not a second hold.
    with pytest.raises(Conflict) as err:
        _order("150", key="late", market=market)
    assert err.value.code == "order_failed"
    assert len(sandbox_intents(quick)) == 1


def test_an_unknown_hold_in_a_pool_the_manager_cancelled_is_released(market, quick,
                                                                      monkeypatch):
    market.pool = market.open_pool()
    real_hold = gateway.hold

    def held_then_lost(*args, **kwargs):
        real_hold(*args, **kwargs)
        raise gateway.GatewayUnavailable("gateway_unavailable", "read timed out")

    monkeypatch.setattr(gateway, "hold", held_then_lost)
    with pytest.raises(DomainError):
        _order("30", key="c1", market=market)
    monkeypatch.undo()
    cancel_and_settle(market.pool.id)
    assert len(live_holds(quick)) == 1
    result = pools.resolve_holds()
    assert len(result.failed) == 1 and len(result.cancelled) == 1
    assert [o.status for o in _orders()] == ["failed"]
    assert_holds_agree(quick)


def test_an_unknown_order_with_no_hold_at_stripe_fails_once_the_settle_time_passed(
        market, quick, monkeypatch):
    market.pool = market.open_pool()

    def no_answer(*args, **kwargs):  # the request never reached Stripe
        raise gateway.GatewayUnavailable("gateway_unavailable", "timed out")

    monkeypatch.setattr(gateway, "hold", no_answer)
    with pytest.raises(DomainError):
        _order("50", key="lost", market=market)
    monkeypatch.undo()
    [order] = _orders()
    # Too early to trust "none found" (a request on its way, Stripe's search index lag).
    assert pools.resolve_holds().waiting == [order.id]
    assert db.session.get(Order, order.id).status == "unknown"
    assert pools.resolve_holds(now=_later()).failed == [order.id]
    assert _committed(market.pool.id) == 0
    assert_holds_agree(quick)


def test_closing_with_stripe_unreachable_answers_at_once_and_the_workers_finish_later(
        app, market, quick, client, token, monkeypatch):
    market.pool = market.open_pool(min_kg="10")
    _order("100", market=market)
    from coop.jobs import services as jobs
    monkeypatch.setattr(jobs, "run_eager_jobs", lambda: None)  # the workers are elsewhere
    quick.pause()
    try:
        # Closing calls no Stripe: decided, allocated, answered at once (never a 500).
        response = client.post(f"/api/v1/pools/{market.pool.id}/close",
                               headers=token(market.manager))
        assert response.status_code == 202, response.json
        assert response.json["settlement"]["state"] == "settling"
        # A worker meets Stripe hanging: the job is tried again later, the hold kept.
        from coop.jobs.models import Job
        [job] = db.session.scalars(select(Job).where(Job.task == "pools.settle"))
        assert jobs.run(job.id).status == "pending"
        assert [o.status for o in _orders()] == ["authorized"]
    finally:
        quick.resume()
    # What was done is kept; the job's next run finishes it once.
    assert jobs.run(job.id, now=utcnow() + timedelta(hours=1)).status == "done"
    closed = db.session.get(Pool, market.pool.id)
    db.session.refresh(closed)
    assert closed.status == "confirmed" and closed.settled_at is not None
    assert [o.status for o in _orders()] == ["captured"]
    assert live_holds(quick) == {}


# ------------------------------------------------------------- the worker dies

def test_a_worker_killed_between_the_hold_and_its_record_is_settled_and_closing_goes_on(
        app, market, quick):
    market.pool = market.open_pool(min_kg="100")
    db.session.commit()
    place_order_and_die(database_url(), quick, market.buyers[0].id, market.pool.id, "120",
                        "killed-1")
    [order] = _orders()
    assert order.status == "pending" and order.payment_intent_id is None
    [intent] = _intents_of(quick, order.id)
    assert intent["status"] == "requires_capture"  # held at Stripe, not recorded
    # While its worker might still be waiting for Stripe, the order is left alone.
    assert pools.resolve_holds().waiting == [order.id]
    with pytest.raises(Conflict) as err:
        close_and_settle(market.pool.id)
    assert err.value.code == "orders_in_flight"
    # Past the settle time (minutes in production, not 15), closing settles it first.
    closed = close_and_settle(market.pool.id, now=_later())
    assert closed.status == "confirmed"
    order = db.session.get(Order, order.id)
    assert order.status == "captured" and order.payment_intent_id == intent["id"]
    assert [pi["status"] for pi in sandbox_intents(quick)] == ["succeeded"]
    assert_holds_agree(quick)


def test_a_replay_of_a_killed_workers_order_returns_it_resolved(app, market, quick):
    market.pool = market.open_pool()
    db.session.commit()
    place_order_and_die(database_url(), quick, market.buyers[0].id, market.pool.id, "80",
                        "killed-2")
    [order] = _orders()
    time.sleep(SETTLE + 0.2)  # the worker is gone for good: its order counts as abandoned
    again, created = _order("80", key="killed-2", market=market)
    assert not created and again.id == order.id and again.status == "authorized"
    assert len(sandbox_intents(quick)) == 1
    assert_holds_agree(quick)


# ------------------------------------------------------ the database drops out

def _drop_connection() -> None:
    """Kill the session's database connection under it, as a restarted or failing-over
    PostgreSQL (or a pgbouncer) does."""
    connection = db.session.connection()
    if is_postgres():
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        killer = create_engine(database_url())
        try:
            with killer.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            killer.dispose()
    else:
        connection.connection.dbapi_connection.close()


def test_a_dropped_connection_at_the_record_is_retried_on_a_new_one(app, market, quick):
    market.pool = market.open_pool()
    drops = []

    def once():
        if not drops:
            drops.append(1)
            _drop_connection()

    _hooks(app, record=once)
    order, created = _order("60", key="drop-once", market=market)
    assert created and drops == [1]
    assert order.status == "authorized"
    assert_holds_agree(quick)


def test_a_database_that_keeps_dropping_leaves_a_hold_the_resolver_records(app, market, quick):
    market.pool = market.open_pool()
    _hooks(app, record=_drop_connection)
    with pytest.raises(DomainError) as err:
        _order("70", key="drop-always", market=market)
    assert err.value.status == 503 and err.value.code == "payment_unknown"
    _hooks(app)
    [order] = _orders()
    assert order.status == "pending" and len(live_holds(quick)) == 1  # the fault reproduced
    result = pools.resolve_holds(now=_later())
    assert result.stood == [order.id]
    assert_holds_agree(quick)


# ------------------------------------------------------------ the sweep at Stripe

def test_a_live_hold_of_an_order_that_failed_is_cancelled_by_the_sweep(app, market, quick):
    market.pool = market.open_pool()
    with pytest.raises(PaymentDeclined):
        _order("10", pm=DECLINE, market=market)
    [order] = _orders()
    # A hold that appeared after its order was settled (a request Stripe ran late).
    stray = gateway.hold(1_000_000, "COP", VISA, {"order_id": str(order.id)})
    assert pools.resolve_holds().cancelled == []  # too young: it may be in flight
    assert pools.resolve_holds(now=_later()).cancelled == [stray.id]
    assert gateway.retrieve(stray.id).status == "canceled"
    assert_holds_agree(quick)


# ------------------------------------------------------------------ concurrency

def _in_threads(app, count, work) -> list:
    barrier = threading.Barrier(count)
    outcomes, lock = [], threading.Lock()

    def run(n):
        with app.app_context():
            barrier.wait(timeout=30)
            try:
                result = work(n)
            except Exception as exc:  # recorded so the assertions show it
                result = ("error", getattr(exc, "code", type(exc).__name__))
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == count
    return outcomes


def test_concurrent_resolvers_settle_each_order_once(app, market, quick, monkeypatch):
    market.pool = market.open_pool(max_kg="500")
    real_hold = gateway.hold

    def held_then_lost(*args, **kwargs):  # Stripe held the card; its answer never came
        real_hold(*args, **kwargs)
        raise gateway.GatewayUnavailable("gateway_unavailable", "read timed out")

    monkeypatch.setattr(gateway, "hold", held_then_lost)
    for n in range(8):
        with pytest.raises(DomainError):
            _order("10", key=f"u{n}", market=market, buyer=market.buyers[n % 2])
    monkeypatch.undo()
    assert {o.status for o in _orders()} == {"unknown"}
    outcomes = _in_threads(app, 6, lambda n: sorted(pools.resolve_holds().stood))
    assert not [o for o in outcomes if o and o[0] == "error"], outcomes
    stood = sorted(i for o in outcomes for i in o)
    assert stood == sorted(o.id for o in _orders())  # each order stood in one run only
    assert {o.status for o in _orders()} == {"authorized"}
    assert _committed(market.pool.id) == 80_000
    assert_holds_agree(quick)


def test_replays_of_an_order_in_flight_wait_for_its_outcome_never_201_then_declined(
        app, market, quick, monkeypatch):
    market.pool = market.open_pool()
    real_hold = gateway.hold
    started = threading.Event()

    def slow_decline(*args, **kwargs):
        started.set()
        time.sleep(1.0)
        return real_hold(*args, **kwargs)

    monkeypatch.setattr(gateway, "hold", slow_decline)
    buyer_id, pool_id = market.buyers[0].id, market.pool.id

    def place(n):
        from coop.auth.models import User
        user = db.session.get(User, buyer_id)
        if n:
            started.wait(timeout=30)
            time.sleep(0.1)
        order, _created = pools.place_order(user, pool_id, quantity_kg="10",
                                            payment_method=DECLINE, idempotency_key="dbl")
        return ("ok", order.status)

    outcomes = _in_threads(app, 6, place)
    assert set(outcomes) <= {("error", "payment_declined"), ("error", "in_progress")}, outcomes
    assert outcomes.count(("error", "payment_declined")) >= 1
    assert len(_orders()) == 1 and _committed(pool_id) == 0


def test_replays_of_an_order_in_flight_answer_409_in_progress_past_the_wait(
        app, market, quick, monkeypatch):
    market.pool = market.open_pool()
    monkeypatch.setattr(pool_orders, "REPLAY_WAIT_SECONDS", 0.2)
    release = threading.Event()
    entered = threading.Event()

    def stuck():
        entered.set()
        release.wait(timeout=30)

    _hooks(app, after_hold=stuck)
    buyer_id, pool_id = market.buyers[0].id, market.pool.id
    first: list = []

    def place():
        with app.app_context():
            from coop.auth.models import User
            try:
                order, _c = pools.place_order(db.session.get(User, buyer_id), pool_id,
                                              quantity_kg="10", payment_method=VISA,
                                              idempotency_key="slow")
                first.append(order.status)
            finally:
                db.session.remove()

    thread = threading.Thread(target=place)
    thread.start()
    assert entered.wait(timeout=30)
    _hooks(app)
    with pytest.raises(Conflict) as err:
        _order("10", key="slow", market=market)
    assert err.value.code == "in_progress"
    release.set()
    thread.join(timeout=30)
    assert first == ["authorized"]
    again, created = _order("10", key="slow", market=market)
    assert not created and again.status == "authorized"
    assert_holds_agree(quick)


# ------------------------------------------------------------------ the HTML form

def test_a_double_submitted_order_form_places_one_order(app, market, quick, client, login):
    import re
    market.pool = market.open_pool()
    login(market.buyers[0])
    page = client.get(f"/pools/{market.pool.id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', page) \
        or re.search(r'value="([^"]+)"[^>]*name="idempotency_key"', page)
    assert key, "the order form carries its own idempotency key"
    form = {"quantity_kg": "25", "payment_method": VISA, "idempotency_key": key.group(1)}
    tokens = []
    for _ in range(2):  # the form sent twice: two confirmation pages
        shown = client.post(f"/pools/{market.pool.id}", data=form).get_data(as_text=True)
        tokens.append(re.search(r'name="confirm_token" value="([^"]+)"', shown).group(1))
        time.sleep(1.05)  # so the two tokens differ
    assert tokens[0] != tokens[1]
    for confirm_token in tokens:  # and both confirmed
        done = client.post(f"/pools/{market.pool.id}",
                           data={**form, "confirm_token": confirm_token, "confirm": "yes"})
        assert done.status_code == 302
    assert len(_orders()) == 1 and _committed(market.pool.id) == 25_000
    assert len(sandbox_intents(quick)) == 1
    assert_holds_agree(quick)


def test_an_unknown_order_is_shown_to_the_buyer_as_not_known_yet(app, market, quick, client,
                                                                  login, monkeypatch):
    market.pool = market.open_pool()

    def no_answer(*args, **kwargs):
        raise gateway.GatewayUnavailable("gateway_unavailable", "timed out")

    monkeypatch.setattr(gateway, "hold", no_answer)
    with pytest.raises(DomainError):
        _order("30", key="shown", market=market)
    login(market.buyers[0])
    page = client.get("/my/orders", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Aún no sabemos si se retuvo el monto en su tarjeta" in page
    assert "No se retuvo nada" not in page


def test_the_resolver_runs_as_a_flask_command(app, market, quick, monkeypatch):
    market.pool = market.open_pool()
    real_hold = gateway.hold

    def held_then_lost(*args, **kwargs):
        real_hold(*args, **kwargs)
        raise gateway.GatewayUnavailable("gateway_unavailable", "read timed out")

    monkeypatch.setattr(gateway, "hold", held_then_lost)
    with pytest.raises(DomainError):
        _order("40", key="cli", market=market)
    monkeypatch.undo()
    out = app.test_cli_runner().invoke(args=["pools", "resolve-holds"])
    assert out.exit_code == 0, out.output
    assert "stood 1, failed 0" in out.output
    assert [o.status for o in _orders()] == ["authorized"]
    assert_holds_agree(quick)
    quick.pause()
    try:
        down = app.test_cli_runner().invoke(args=["pools", "resolve-holds"])
    finally:
        quick.resume()
    assert down.exit_code != 0 and "Stripe did not answer" in down.output
