"""`flask jobs run|tick|status|retry`: the background work by hand."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from coop.common.models import utcnow
from coop.extensions import db
from coop.jobs import services as jobs
from coop.jobs.models import Job
from coop.pools.models import Pool

RAN: list[dict] = []
FAIL = {"times": 0}


@jobs.task("tests.cli")
def _cli_task(**payload):
    if FAIL["times"]:
        FAIL["times"] -= 1
        raise RuntimeError("provider down")
    RAN.append(payload)


@pytest.fixture(autouse=True)
def _reset():
    RAN.clear()
    FAIL["times"] = 0
    yield
    FAIL["times"] = 0


@pytest.fixture
def flask_jobs(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["jobs", *args])


def _job(status="pending", *, ago=0, attempts=0, error=None, coop_id=None) -> Job:
    job = Job(task="tests.cli", payload='{"n": 1}', status=status, attempts=attempts,
              last_error=error, run_at=utcnow() - timedelta(seconds=ago), coop_id=coop_id)
    db.session.add(job)
    db.session.commit()
    return job


def _status(job_id) -> str:
    db.session.rollback()
    return db.session.get(Job, job_id, populate_existing=True).status


def test_run_drains_the_due_jobs_in_process_and_says_what_failed(flask_jobs):
    jobs.enqueue("tests.cli", n=1)
    jobs.enqueue("tests.cli", run_at=utcnow() + timedelta(hours=1), n=2)   # not due
    db.session.commit()
    result = flask_jobs("run")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "done 1"
    assert RAN == [{"n": 1}]
    FAIL["times"] = 1
    failing = jobs.enqueue("tests.cli", n=3)
    db.session.commit()
    result = flask_jobs("run")
    assert "pending 1" in result.output
    assert f"job {failing.id}: pending: RuntimeError: provider down" in result.output
    assert flask_jobs("run").output.strip() == "no job due"   # its retry waits (backoff)


def test_tick_runs_the_periodic_tasks_once(flask_jobs, market):
    pool = market.open_pool()
    db.session.execute(update(Pool).where(Pool.id == pool.id)
                       .values(closes_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    result = flask_jobs("tick", "pools.close_due")
    assert result.exit_code == 0 and result.output.strip() == "pools.close_due: ran"
    db.session.rollback()
    close = db.session.scalar(select(Job).where(Job.key == f"pool-close:{pool.id}"))
    assert close is not None and close.status == "pending"
    everything = flask_jobs("tick")
    assert everything.exit_code == 0
    assert "jobs.sweep: ran" in everything.output and "pools.close_due: ran" in everything.output
    unknown = flask_jobs("tick", "pools.nothing")
    assert unknown.exit_code == 2 and "no periodic task pools.nothing" in unknown.output


def test_status_counts_and_lists_the_parked_with_their_errors(flask_jobs):
    _job(ago=600)
    _job(ago=5)
    _job("done")
    parked = _job("parked", attempts=8, error="RuntimeError: provider down\nTraceback ...",
                  coop_id=4)
    result = flask_jobs("status")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "pending 2  running 0  done 1  parked 1"
    assert lines[1].startswith("oldest due pending: 6")          # about 600 s
    assert 598 <= int(lines[1].split(": ")[1].split()[0]) <= 660
    assert lines[2] == (f"parked {parked.id} tests.cli coop=4 attempts=8: "
                        "RuntimeError: provider down")


def test_status_of_an_idle_queue(flask_jobs):
    result = flask_jobs("status")
    assert result.output.splitlines() == ["pending 0  running 0  done 0  parked 0",
                                          "oldest due pending: none"]


def test_retry_sends_a_parked_job_back_and_refuses_others(flask_jobs):
    parked = _job("parked", attempts=8, error="RuntimeError: provider down")
    done = _job("done")
    result = flask_jobs("retry", str(parked.id))
    assert result.exit_code == 0 and "queued again" in result.output
    assert _status(parked.id) == "pending"
    assert db.session.get(Job, parked.id).attempts == 0
    jobs.drain()
    assert RAN == [{"n": 1}] and _status(parked.id) == "done"
    refused = flask_jobs("retry", str(done.id))
    assert refused.exit_code == 1 and "job_not_parked" in refused.output
    assert _status(done.id) == "done"
    missing = flask_jobs("retry", "99999")
    assert missing.exit_code == 1 and "not_found" in missing.output
