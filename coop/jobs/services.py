"""The outbox and its runner.

    @jobs.task("pools.close")                    # in coop/pools/tasks.py
    def close(pool_id: int): ...                 # idempotent: may run twice

    jobs.enqueue("pools.close", key=f"pool-close:{pool.id}", pool_id=pool.id)

`enqueue` adds a row to the current transaction and nothing else. When that transaction
commits, the session's after-commit hook hands the new jobs to Celery (`dispatch`); when it
rolls back there is nothing to hand over. A worker runs a job by id (`run`): it claims the
row with a lease (one UPDATE: only one worker wins), calls the handler, and marks it done; a
handler that raises is tried again later with exponential backoff, and parked after
JOB_MAX_ATTEMPTS (staff see it, and `retry` sends it back). A worker that dies mid-job leaves
the row running with a lease that runs out: the sweeper (every minute, from celery beat)
hands it to another worker, which runs the handler again — the handlers are sagas of
committed steps, so a second run finishes the work without doing any step twice. The sweeper
also hands over any pending job a broker outage kept from being dispatched.

Without a broker (tests: JOBS_EAGER) the jobs a request committed run in the same process
right after its view committed, and `drain()` runs whatever is due."""
from __future__ import annotations

import functools
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import Session

from ..common.inserts import insert_ignore
from ..common.models import utcnow
from ..common.paging import PER_PAGE, KeysetPage, keyset
from ..common.statuses import JobStatus
from ..extensions import db
from .models import Job

log = logging.getLogger("minga.jobs")

TASKS: dict[str, Callable] = {}
# name -> (function, seconds between runs): what celery beat runs on time.
PERIODIC: dict[str, tuple[Callable, int]] = {}
_INFO = "minga.jobs"          # session.info: (id, run_at) of jobs written, not yet committed


def task(name: str):
    """Register `fn(**payload)` as the handler of the jobs named `name`."""
    def register(fn):
        TASKS[name] = fn
        return fn
    return register


def periodic(name: str, every_seconds: int):
    """Register `fn()` to run every `every_seconds` (celery beat sends it; `flask jobs tick`
    runs all of them once). It must be idempotent: it usually enqueues jobs with keys."""
    def register(fn):
        PERIODIC[name] = (fn, every_seconds)
        return fn
    return register


class Later(Exception):
    """Raised by a handler that cannot run yet (a message waiting for daytime): the job goes
    back to pending until `at`, with no attempt counted."""

    def __init__(self, at: datetime):
        super().__init__(at.isoformat())
        self.at = at


# --- writing jobs ---------------------------------------------------------------------------

def enqueue(name: str, *, key: str | None = None, run_at: datetime | None = None,
            coop_id: int | None = None, **payload) -> Job:
    """A job in the current transaction (see the module's docstring). With a `key` already
    used, the existing job is returned and nothing is added."""
    if name not in TASKS:
        raise KeyError(f"no task {name!r}")
    if key is not None:
        existing = db.session.scalar(select(Job).where(Job.key == key))
        if existing is not None:
            return existing
    at = run_at or utcnow()
    row = {"task": name, "key": key, "payload": json.dumps(payload, sort_keys=True),
           "run_at": at, "coop_id": coop_id, "status": JobStatus.PENDING.value, "attempts": 0,
           "deferred": _deferred(run_at), "created_at": utcnow()}
    # Two transactions may ask for the same key at once: the unique index keeps one.
    job_id = insert_ignore(Job.__table__, row, ["key"]) if key is not None else \
        db.session.execute(Job.__table__.insert().values(**row).returning(Job.id)).scalar()
    if job_id is None:
        return db.session.scalar(select(Job).where(Job.key == key))
    job = db.session.get(Job, job_id)
    _remember(db.session(), job.id, job.run_at)
    return job


def enqueue_many(name: str, payloads: list[dict], *, coop_id: int | None = None,
                 run_at: datetime | None = None, keys: list[str] | None = None) -> list[int]:
    """Many jobs at once (a batch's messages, a settlement's chunks): one INSERT; their ids.
    `keys`, one a payload, must be new (they name the jobs for `live`, not to deduplicate)."""
    if name not in TASKS:
        raise KeyError(f"no task {name!r}")
    if not payloads:
        return []
    at = run_at or utcnow()
    keys = keys or [None] * len(payloads)
    rows = [{"task": name, "key": key, "payload": json.dumps(p, sort_keys=True), "run_at": at,
             "coop_id": coop_id, "status": JobStatus.PENDING.value, "attempts": 0,
             "deferred": _deferred(at), "created_at": utcnow()}
            for p, key in zip(payloads, keys)]
    ids = list(db.session.scalars(_insert_returning_id(), rows))
    session = db.session()
    for job_id in ids:
        _remember(session, job_id, at)
    return ids


@functools.cache
def _insert_returning_id():
    """Built once per process, so that its cache key is too (every order enqueues a job)."""
    return Job.__table__.insert().returning(Job.__table__.c.id)


def _deferred(run_at: datetime | None) -> bool:
    """Due later than a minute from now: left to the sweeper, not handed over at commit."""
    return run_at is not None and run_at > utcnow() + timedelta(seconds=60)


def _remember(session: Session, job_id: int, run_at: datetime) -> None:
    session.info.setdefault(_INFO, []).append((job_id, run_at))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    written = session.info.pop(_INFO, None)
    if written and has_app_context():
        dispatch(written)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO, None)


def dispatch(jobs: list[tuple[int, datetime]]) -> None:
    """Hand committed jobs to the workers: to Celery, or, when JOBS_EAGER, to the list the
    request runs once its view has answered. A job due later than a minute stays in the
    table for the sweeper (a broker keeps long countdowns badly)."""
    if current_app.config.get("JOBS_EAGER"):
        if has_request_context():
            g.setdefault("minga_eager_jobs", []).extend(job_id for job_id, _at in jobs)
        return
    celery = current_app.extensions["celery"]
    now = utcnow()
    for job_id, run_at in jobs:
        if run_at > now + timedelta(seconds=60):
            continue
        try:
            celery.send_task("minga.run_job", args=[job_id],
                             countdown=max(0, (run_at - now).total_seconds()))
        except Exception:  # the broker is down: the sweeper hands it over later
            log.exception("job %s not dispatched; the sweeper will", job_id)


def run_eager_jobs() -> None:
    """JOBS_EAGER: run the jobs this request committed (and those they commit in turn)."""
    while True:
        ids = g.pop("minga_eager_jobs", None)
        if not ids:
            return
        for job_id in ids:
            try:
                run(job_id)
            except Exception:  # pragma: no cover - run records its own failures
                db.session.rollback()
                log.exception("eager job %s", job_id)


# --- running jobs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    job_id: int
    status: str          # done, pending (again later), parked, or skipped (not ours to run)
    error: str | None = None


def _backoff(attempts: int) -> timedelta:
    base = int(current_app.config.get("JOB_RETRY_BASE_SECONDS", 30))
    cap = int(current_app.config.get("JOB_RETRY_MAX_SECONDS", 3600))
    seconds = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds + random.randint(0, max(1, seconds // 10)))


def run(job_id: int, *, now: datetime | None = None) -> Outcome:
    """Claim the job and run it (see the module's docstring)."""
    now = now or utcnow()
    lease = timedelta(seconds=int(current_app.config.get("JOB_LEASE_SECONDS", 900)))
    claimed = db.session.execute(
        update(Job).where(Job.id == job_id, Job.run_at <= now,
                          or_(Job.status == JobStatus.PENDING,
                              and_(Job.status == JobStatus.RUNNING, Job.lease_until < now)))
        .values(status=JobStatus.RUNNING, lease_until=now + lease, attempts=Job.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if claimed != 1:
        return Outcome(job_id, "skipped")
    job = db.session.get(Job, job_id)
    name, payload, attempts = job.task, json.loads(job.payload or "{}"), job.attempts
    try:
        TASKS[name](**payload)
    except Later as later:
        db.session.rollback()
        _finish(job_id, JobStatus.PENDING, run_at=later.at, attempts=attempts - 1)
        return Outcome(job_id, "pending")
    except Exception as exc:
        db.session.rollback()
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("job %s (%s) attempt %s failed: %s", job_id, name, attempts, error)
        if attempts >= int(current_app.config.get("JOB_MAX_ATTEMPTS", 8)):
            _finish(job_id, JobStatus.PARKED, error=error)
            _parked(job_id)
            return Outcome(job_id, "parked", error)
        _finish(job_id, JobStatus.PENDING, error=error, run_at=utcnow() + _backoff(attempts))
        return Outcome(job_id, "pending", error)
    _finish(job_id, JobStatus.DONE)
    return Outcome(job_id, "done")


def _finish(job_id: int, status: JobStatus, *, error: str | None = None,
            run_at: datetime | None = None, attempts: int | None = None) -> None:
    values: dict = {"status": status, "lease_until": None}
    if error is not None:
        values["last_error"] = error
    if run_at is not None:
        values["run_at"] = run_at
        values["deferred"] = _deferred(run_at)
    if attempts is not None:
        values["attempts"] = attempts
    if status in (JobStatus.DONE, JobStatus.PARKED):
        values["finished_at"] = utcnow()
    db.session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                       .values(**values).execution_options(synchronize_session=False))
    if status == JobStatus.PENDING:
        _remember(db.session(), job_id, run_at or utcnow())
    db.session.commit()


_ON_PARKED: list[Callable] = []


def on_parked(fn: Callable) -> None:
    """`fn(job)` is called (in its own transaction) when a job is parked: the messages domain
    tells the coop's treasurers (wired in create_app)."""
    if fn not in _ON_PARKED:
        _ON_PARKED.append(fn)


def _parked(job_id: int) -> None:
    job = db.session.get(Job, job_id)
    for fn in _ON_PARKED:
        try:
            fn(job)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("telling of parked job %s", job_id)


def drain(*, now: datetime | None = None, limit: int = 10_000) -> list[Outcome]:
    """Run every pending job due by `now` in this process, those they enqueue included, until
    none is left (tests, `flask jobs run`). A failing job is tried again while its next
    attempt is due by `now`, until it is parked."""
    done: list[Outcome] = []
    while len(done) < limit:
        ids = list(db.session.scalars(
            select(Job.id).where(Job.status == JobStatus.PENDING,
                                 Job.run_at <= (now or utcnow()))
            .order_by(Job.run_at, Job.id).limit(200)))
        db.session.commit()
        if has_request_context():
            g.pop("minga_eager_jobs", None)
        if not ids:
            break
        done.extend(run(job_id, now=now) for job_id in ids)
    return done


def sweep(*, now: datetime | None = None) -> int:
    """Hand over again what a broker outage or a dead worker left behind, and what was due too
    late to be handed over when it was written: pending jobs due for longer than
    JOBS_SWEEP_AFTER_SECONDS, or written for later and now due; running ones whose lease ran
    out. Each is handed over at most once per that many seconds. Returns how many."""
    now = now or utcnow()
    grace = timedelta(seconds=int(current_app.config.get("JOBS_SWEEP_AFTER_SECONDS", 120)))
    pending = and_(Job.status == JobStatus.PENDING, Job.run_at <= now,
                   or_(Job.dispatched_at.is_(None), Job.dispatched_at <= now - grace),
                   or_(Job.run_at <= now - grace, Job.deferred.is_(True)))
    dead = and_(Job.status == JobStatus.RUNNING, Job.lease_until < now)
    ids = list(db.session.scalars(select(Job.id).where(or_(pending, dead))
                                  .order_by(Job.id).limit(5000)))
    if ids:
        db.session.execute(update(Job).where(Job.id.in_(ids)).values(dispatched_at=now, deferred=False)
                           .execution_options(synchronize_session=False))
        session = db.session()
        for job_id in ids:
            _remember(session, job_id, now)
    db.session.commit()
    return len(ids)


def retry(job_id: int, coop_id: int | None = None) -> Job:
    """Staff send a parked job back to the queue (its attempts start again)."""
    from flask_babel import gettext as _
    from ..common.errors import Conflict, NotFound
    job = db.session.get(Job, job_id)
    if job is None or (coop_id is not None and job.coop_id != coop_id):
        raise NotFound(_("No such task."))
    if job.status != JobStatus.PARKED:
        raise Conflict(_("Only a paused task can be retried; this one is not paused any "
                         "more."), code="job_not_parked")
    job.status = JobStatus.PENDING
    job.attempts = 0
    job.run_at = utcnow()
    job.finished_at = None
    job.deferred = False
    db.session.flush()
    _remember(db.session(), job.id, job.run_at)
    return job


def live(name: str, key_prefix: str) -> int:
    """How many jobs of task `name` whose key starts with `key_prefix` are still to run
    (pending or running)."""
    from sqlalchemy import func
    return int(db.session.scalar(select(func.count()).select_from(Job).where(
        Job.status.in_((JobStatus.PENDING, JobStatus.RUNNING)), Job.task == name,
        Job.key.like(key_prefix.replace("%", r"\%").replace("_", r"\_") + "%", escape="\\")))
        or 0)


def parked(coop_id: int | None = None) -> list[Job]:
    stmt = select(Job).where(Job.status == JobStatus.PARKED).order_by(Job.id.desc()).limit(200)
    if coop_id is not None:
        stmt = stmt.where(Job.coop_id == coop_id)
    return list(db.session.scalars(stmt))


def parked_page(coop_id: int, cursor: str | None, *, task: str | None = None,
                limit: int = PER_PAGE) -> KeysetPage:
    """A page of the coop's paused tasks, newest first (keyset on the id), of one task."""
    stmt = select(Job).where(Job.status == JobStatus.PARKED, Job.coop_id == coop_id)
    if task:
        stmt = stmt.where(Job.task == task)
    return keyset(stmt, [(Job.id, "desc")], cursor, limit)


def counts() -> dict[str, int]:
    """Jobs per status (what to monitor: pending growing, parked above zero)."""
    from sqlalchemy import func
    return dict(db.session.execute(select(Job.status, func.count()).group_by(Job.status)).all())


def oldest_pending_age(now: datetime | None = None) -> timedelta | None:
    """How long the oldest due pending job has waited (None: none is due). More than a few
    minutes: the workers are not running, or not keeping up."""
    from sqlalchemy import func
    now = now or utcnow()
    oldest = db.session.scalar(select(func.min(Job.run_at)).where(
        Job.status == JobStatus.PENDING, Job.run_at <= now))
    if oldest is None:
        return None
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        from datetime import timezone
        oldest = oldest.replace(tzinfo=timezone.utc)
    return now - oldest


def tick(names: list[str] | None = None) -> list[str]:
    """Run the periodic functions once (each in its own transaction)."""
    ran = []
    for name, (fn, _every) in PERIODIC.items():
        if names and name not in names:
            continue
        try:
            fn()
            db.session.commit()
            ran.append(name)
        except Exception:
            db.session.rollback()
            log.exception("periodic %s", name)
    return ran


@periodic("jobs.sweep", 60)
def _sweep_periodic() -> None:
    sweep()
