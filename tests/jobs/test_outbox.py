"""The outbox: a job exists only if the transaction that asked for it committed; it runs once
per success; failures are retried with backoff, then parked; a dead worker's lease runs out."""
from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Blueprint
from sqlalchemy import func, select

from coop.common.models import utcnow
from coop.common.web import unit_of_work
from coop.extensions import db
from coop.jobs import services as jobs
from coop.jobs.models import Job

RAN: list[dict] = []
FAIL: dict = {"times": 0}


@jobs.task("tests.record")
def _record(**payload):
    if FAIL["times"] > 0:
        FAIL["times"] -= 1
        raise RuntimeError("provider down")
    RAN.append(payload)


@pytest.fixture(autouse=True)
def _reset():
    RAN.clear()
    FAIL["times"] = 0
    yield
    FAIL["times"] = 0


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(Job))


def test_a_rolled_back_transaction_leaves_no_job_and_runs_nothing():
    jobs.enqueue("tests.record", n=1)
    db.session.rollback()
    assert _count() == 0
    assert jobs.drain() == []
    assert RAN == []


def test_a_committed_job_runs_once_however_often_it_is_handed_over():
    job = jobs.enqueue("tests.record", n=2)
    db.session.commit()
    assert jobs.run(job.id).status == "done"
    assert jobs.run(job.id).status == "skipped"   # a second delivery of the same job
    assert jobs.drain() == []
    assert RAN == [{"n": 2}]


def test_the_same_key_is_one_job():
    first = jobs.enqueue("tests.record", key="k:1", n=1)
    second = jobs.enqueue("tests.record", key="k:1", n=2)
    db.session.commit()
    assert first.id == second.id and _count() == 1
    jobs.drain()
    assert RAN == [{"n": 1}]


def test_a_failing_job_is_retried_with_backoff_then_parked_and_retried_by_hand(app):
    parked = []
    jobs.on_parked(parked.append)
    app.config["JOB_MAX_ATTEMPTS"] = 3
    try:
        FAIL["times"] = 5
        job = jobs.enqueue("tests.record", n=3)
        db.session.commit()
        first = jobs.run(job.id)
        assert first.status == "pending" and "provider down" in first.error
        row = db.session.get(Job, job.id)
        assert row.run_at > utcnow() + timedelta(seconds=25)      # backoff, not at once
        assert jobs.run(job.id).status == "skipped"               # not due yet
        later = utcnow() + timedelta(hours=3)
        outcomes = jobs.drain(now=later)
        assert [o.status for o in outcomes] == ["pending", "parked"]
        db.session.expire_all()
        row = db.session.get(Job, job.id)
        assert row.status == "parked" and row.attempts == 3
        assert [j.id for j in parked] == [job.id]
        assert [j.id for j in jobs.parked()] == [job.id]
        assert RAN == []
        jobs.retry(job.id)
        db.session.commit()
        FAIL["times"] = 0
        assert [o.status for o in jobs.drain()] == ["done"]
        assert RAN == [{"n": 3}]
    finally:
        app.config["JOB_MAX_ATTEMPTS"] = 8
        jobs._ON_PARKED.remove(parked.append)


def test_only_a_parked_job_can_be_retried():
    from coop.common.errors import Conflict
    job = jobs.enqueue("tests.record", n=4)
    db.session.commit()
    with pytest.raises(Conflict):
        jobs.retry(job.id)


def test_a_dead_workers_job_is_taken_over_once_its_lease_runs_out():
    job = jobs.enqueue("tests.record", n=5)
    db.session.commit()
    now = utcnow()
    # A worker claimed it and died: running, with a lease.
    db.session.execute(Job.__table__.update().where(Job.id == job.id).values(
        status="running", lease_until=now + timedelta(minutes=15), attempts=1))
    db.session.commit()
    assert jobs.run(job.id, now=now).status == "skipped"         # its lease still holds
    assert jobs.sweep(now=now) == 0
    after = now + timedelta(minutes=16)
    assert jobs.sweep(now=after) == 1                              # handed over again
    assert jobs.run(job.id, now=after).status == "done"
    assert RAN == [{"n": 5}]
    assert db.session.get(Job, job.id).attempts == 2


def test_the_sweeper_hands_over_a_job_no_broker_took():
    job = jobs.enqueue("tests.record", n=6)
    db.session.commit()
    now = utcnow()
    assert jobs.sweep(now=now) == 0                                # just written: not lost
    assert jobs.sweep(now=now + timedelta(minutes=3)) == 1
    assert jobs.sweep(now=now + timedelta(minutes=4)) == 0        # once per grace period
    assert jobs.sweep(now=now + timedelta(minutes=6)) == 1
    assert db.session.get(Job, job.id).status == "pending"


def test_a_job_due_later_is_left_to_the_sweeper_until_it_is_due():
    at = utcnow() + timedelta(hours=10)
    job = jobs.enqueue("tests.record", run_at=at, n=7)
    db.session.commit()
    assert db.session.get(Job, job.id).deferred is True
    assert jobs.sweep(now=at - timedelta(minutes=1)) == 0
    assert jobs.sweep(now=at) == 1
    assert jobs.drain(now=at)[0].status == "done"


_bp = Blueprint("jobs_probe", __name__)


@_bp.route("/_probe/jobs", methods=["POST"])
@unit_of_work
def _probe():
    from flask import request
    n = int(request.args["n"])
    jobs.enqueue("tests.record", n=n)
    if n < 0:
        return "refused", 422          # rolled back: its job never existed
    return "ok", 200


@pytest.fixture
def probe_client(other_app):
    probe = other_app()
    probe.register_blueprint(_bp)
    return probe


def test_in_a_request_the_committed_job_runs_after_the_view_and_a_refused_one_never(
        probe_client):
    with probe_client.app_context():
        client = probe_client.test_client()
        assert client.post("/_probe/jobs?n=8").status_code == 200
        assert RAN == [{"n": 8}]
        assert client.post("/_probe/jobs?n=-1").status_code == 422
        assert RAN == [{"n": 8}]
        assert db.session.scalar(select(func.count()).select_from(Job)) == 1
        db.session.remove()
