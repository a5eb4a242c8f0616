from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..common import statuses
from ..common.models import UTCDateTime, utcnow
from ..common.statuses import JobStatus
from ..extensions import db


class Job(db.Model):
    """One piece of background work: the task's name and its JSON arguments. Written in the
    transaction that asks for it (an outbox row), so a rollback forgets it and a commit
    never does; a worker claims it with a lease, so a worker that dies leaves it to another."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("key", name="uq_jobs_key"),
                      statuses.status_check(JobStatus),
                      Index("ix_jobs_status_run_at", "status", "run_at"),
                      # a coop's paused tasks a page at a time, newest first
                      Index("ix_jobs_coop_status_id_keyset", "coop_id", "status", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(80))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    # What makes the job one of a kind ("pool-close:12"): asked twice, it is one job.
    key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the sweeper last handed it to the broker (a hand-over right after the commit that
    # wrote it is not recorded: it costs no write).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Written due later than a minute ahead: the sweeper hands it over once it is due.
    deferred: Mapped[bool] = mapped_column(Boolean, default=False)
    coop_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


statuses.guard(Job.status, JobStatus)
