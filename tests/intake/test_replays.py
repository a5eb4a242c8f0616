"""Same-key intake replays return the first result: many requests with one Idempotency-Key
at once (real threads, each with its own connection) record one intake, and every one of
them answers with it, none with 409 intake_recorded."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from coop.extensions import db
from coop.intake import services as intake
from coop.intake.models import Intake

THREADS = 24


def test_concurrent_replays_of_one_key_all_answer_the_first_intake(app, sold):
    manager_id, allocation_id = sold.manager.id, sold.alloc[2].id
    barrier = threading.Barrier(THREADS)
    outcomes: list = []
    lock = threading.Lock()

    def record() -> None:
        with app.app_context():
            from coop.auth.models import User
            user = db.session.get(User, manager_id)
            db.session.commit()
            barrier.wait(timeout=30)
            try:
                got, _created = intake.record_intake(user, allocation_id, received_kg="150",
                                                     grade="sca85", idempotency_key="one-key")
                result = ("ok", got.id)
            except Exception as exc:  # recorded so the assertion shows it
                result = (getattr(exc, "code", type(exc).__name__), str(exc))
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=record) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    db.session.expire_all()
    ids = list(db.session.scalars(select(Intake.id)))
    assert len(ids) == 1
    assert outcomes == [("ok", ids[0])] * THREADS, sorted(set(outcomes))
    assert db.session.scalar(select(func.count()).select_from(Intake)) == 1


def test_a_replay_that_checked_its_key_just_before_the_first_committed_answers_it(
        app, sold, monkeypatch):
    """The window of the 409s: the replay finds no intake under its key, then the first
    request commits, then the replay checks the allocation: recorded already. It answers
    the first intake all the same."""
    manager_id, allocation_id = sold.manager.id, sold.alloc[1].id
    real_parse = intake._parse
    in_parse, first_done = threading.Event(), threading.Event()

    def parse(*args, **kwargs):
        if threading.current_thread().name == "replay":
            in_parse.set()
            first_done.wait(timeout=30)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(intake, "_parse", parse)
    answer: list = []

    def replay() -> None:
        with app.app_context():
            from coop.auth.models import User
            user = db.session.get(User, manager_id)
            try:
                got, created = intake.record_intake(user, allocation_id, received_kg="90",
                                                    grade="sca85", idempotency_key="k-late")
                answer.append(("ok", got.id, created))
            except Exception as exc:
                answer.append((getattr(exc, "code", type(exc).__name__), str(exc), None))
            finally:
                db.session.remove()

    thread = threading.Thread(target=replay, name="replay")
    thread.start()
    assert in_parse.wait(timeout=30)
    first, created = intake.record_intake(sold.manager, allocation_id, received_kg="90",
                                          grade="sca85", idempotency_key="k-late")
    db.session.commit()
    first_done.set()
    thread.join(timeout=60)
    assert created and answer == [("ok", first.id, False)]
