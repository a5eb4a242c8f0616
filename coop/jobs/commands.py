"""`flask jobs ...`: the background work by hand, and what to watch of it."""
from __future__ import annotations

import click
from flask.cli import AppGroup

jobs_cli = AppGroup("jobs", help="Background jobs (the outbox the Celery workers run).")


@jobs_cli.command("run")
def run_command():
    """Run every due pending job here, in this process, and those they add (no worker needed)."""
    from . import services
    outcomes = services.drain()
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    if not outcomes:
        click.echo("no job due")
        return
    click.echo(", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    for outcome in outcomes:
        if outcome.error:
            click.echo(f"job {outcome.job_id}: {outcome.status}: {outcome.error}")


@jobs_cli.command("tick")
@click.argument("names", nargs=-1)
def tick_command(names):
    """Run the periodic tasks once (all, or those NAMES), as celery beat would."""
    from . import services
    unknown = [name for name in names if name not in services.PERIODIC]
    if unknown:
        raise click.BadParameter(f"no periodic task {', '.join(unknown)} "
                                 f"(known: {', '.join(sorted(services.PERIODIC))})")
    wanted = list(names) or None
    ran = services.tick(wanted)
    for name in wanted or services.PERIODIC:
        click.echo(f"{name}: {'ran' if name in ran else 'FAILED (see the log)'}")
    if len(ran) != len(wanted or services.PERIODIC):
        raise SystemExit(1)


@jobs_cli.command("status")
def status_command():
    """Jobs per status, the oldest due pending job's age, and the parked jobs with their
    errors (monitor: pending growing, an old pending job, parked above zero)."""
    from . import services
    counts = services.counts()
    click.echo("  ".join(f"{status} {counts.get(status, 0)}"
                         for status in ("pending", "running", "done", "parked")))
    age = services.oldest_pending_age()
    click.echo(f"oldest due pending: {int(age.total_seconds())} s" if age is not None
               else "oldest due pending: none")
    for job in services.parked():
        error = (job.last_error or "").splitlines()[0][:200] if job.last_error else ""
        click.echo(f"parked {job.id} {job.task} coop={job.coop_id or '-'} "
                   f"attempts={job.attempts}: {error}")


@jobs_cli.command("retry")
@click.argument("job_id", type=int)
def retry_command(job_id):
    """Send a parked job back to the queue (its attempts start again)."""
    from ..common.errors import DomainError
    from ..extensions import db
    from . import services
    try:
        job = services.retry(job_id)
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(f"job {job_id}: {exc.code or 'not found'}")
    db.session.commit()  # handed to the workers after this commit
    click.echo(f"job {job.id} ({job.task}) queued again")
