"""Many buyers at once never push a pool past max_kg: 60 threads, each with its own
database connection and its own card hold at the sandbox, at a pool with room for 30."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from coop.common.errors import Conflict
from coop.extensions import db
from coop.pools import services as pools
from coop.pools.models import Order, Pool
from tests.support.settle import close_and_settle

THREADS = 60
ROOM_KG = 30


@pytest.mark.usefixtures("stripe_clean")
def test_simultaneous_orders_never_pass_max(app, market, make_buyer):
    pool = market.open_pool(min_kg="1", max_kg=str(ROOM_KG))
    buyer_ids = [make_buyer(organisation=f"Concurrent {n}").id for n in range(THREADS)]
    pool_id = pool.id
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def buy(user_id: int) -> None:
        with app.app_context():
            from coop.auth.models import User
            user = db.session.get(User, user_id)
            connection_id = id(db.session.connection().connection.dbapi_connection)
            barrier.wait(timeout=30)
            try:
                pools.place_order(user, pool_id, quantity_kg="1", payment_method="pm_card_visa")
                result = "ok"
            except Conflict as exc:
                result = exc.code
            except Exception as exc:  # recorded so the assertion below shows it
                result = f"error:{type(exc).__name__}:{exc}"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)
                connections.add(connection_id)

    connections: set[int] = set()
    threads = [threading.Thread(target=buy, args=(uid,)) for uid in buyer_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == THREADS
    assert len(connections) == THREADS  # each thread used a connection of its own
    assert outcomes.count("ok") == ROOM_KG, sorted(set(outcomes))
    assert outcomes.count("pool_full") == THREADS - ROOM_KG
    db.session.expire_all()
    committed = db.session.get(Pool, pool_id).committed_g
    held = db.session.scalar(select(func.coalesce(func.sum(Order.quantity_g), 0))
                             .where(Order.pool_id == pool_id, Order.status == "authorized"))
    assert committed == held == ROOM_KG * 1000
    closed = close_and_settle(pool_id)
    assert closed.allocated_g == ROOM_KG * 1000
