"""Messages benchmark (issue 11): 10,000 farmers paid in one payout batch each get their payment
SMS. The treasurer imports the bank's confirmation file; real Celery worker processes
(`celery -A worker worker --pool=threads --concurrency=8`, one process each, on Redis) send
the messages to the SMS stand-in (Twilio's API on loopback). Reported: the time from the start of the import to the last of the
10,000 messages handed to the stand-in, with 1 and then 2 workers (target: under 60 s with 2).

    .venv/bin/python -m bench.messages_bench [--db sqlite|postgresql] [--farmers 10000]
        [--workers 1,2] [--broker redis://127.0.0.1:6379/8]

The database is the run's own (bench/common.py): --db postgresql makes one on BENCH_PG_URL's
server and drops it at the end; the default is PostgreSQL when TEST_DATABASE_URL is a
PostgreSQL one, else a SQLite file. Redis must run (it
does on the development and CI machines)."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import analyze, fresh_app, seed_market
from bench.payouts_bench import owe_everyone

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))
THREADS = 8


def database_url(which: str) -> str:
    """This run's own database (bench.common): PostgreSQL for --db postgresql, or for the
    default when TEST_DATABASE_URL is a PostgreSQL one; else a SQLite file."""
    from bench.common import pg_run_url, sqlite_run_url
    given = os.environ.get("TEST_DATABASE_URL") or ""
    if which == "postgresql" or (which == "auto" and given.startswith("postgresql")):
        return pg_run_url()
    return sqlite_run_url("messages.sqlite")


def build(url: str, farmers: int, settings: dict):
    """A coop whose `farmers` farmers (each with a phone, SMS their channel) are owed money,
    and the payout batch that pays them, exported to the bank: what the import confirms."""
    from sqlalchemy import select, update

    from coop.auth import services as auth_services
    from coop.auth.models import User
    from coop.cooperatives import services as coop_services
    from coop.cooperatives.models import Cooperative, FarmerProfile
    from coop.extensions import db
    from coop.payouts import services as payouts

    app = fresh_app(url, JOBS_EAGER=False, MESSAGES_DAYTIME=(0, 24), **settings)
    coop_id, _manager_id, _buyers = seed_market(app, farmers=farmers)
    owe_everyone(app, coop_id)
    with app.app_context():
        ids = list(db.session.scalars(select(FarmerProfile.user_id).where(
            FarmerProfile.coop_id == coop_id).order_by(FarmerProfile.user_id)))
        db.session.execute(update(User), [
            {"id": uid, "phone": f"+57300{n:07d}", "channel": "sms", "locale": "es"}
            for n, uid in enumerate(ids)])
        treasurer = auth_services.create_user(email="bench-treasurer@example.org",
                                              name="Treasurer", password="bench-password-1")
        coop = db.session.get(Cooperative, coop_id)
        coop_services.grant_role(coop, treasurer, "treasurer")
        batch, _created = payouts.create_batch(coop, treasurer)
        payouts.export_csv(batch, treasurer, rail="nequi")
        db.session.commit()
        batch_id, treasurer_id = batch.id, treasurer.id
        lines = [line.id for line in payouts.get_batch(batch_id).lines]
    analyze(app)
    file = "line_id,status,reference\r\n" + "".join(
        f"{lid},paid,NEQ-{lid}\r\n" for lid in lines)
    return app, batch_id, treasurer_id, file, len(lines)


def worker_env(app, broker: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MINGA_", "TEST_", "REDIS_", "CELERY_", "JOB", "BENCH_"))}
    env.update(MINGA_ENV="development", DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               CELERY_BROKER_URL=broker, MESSAGES_DAYTIME="0-24", SECRET_KEY=app.config[
                   "SECRET_KEY"], PUBLIC_BASE_URL=app.config["PUBLIC_BASE_URL"])
    for name in ("SMS_PROVIDER", "TWILIO_API_BASE", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                 "TWILIO_FROM", "TWILIO_WHATSAPP_FROM", "TWILIO_MESSAGING_SERVICE_SID"):
        env[name] = str(app.config.get(name) or "")
    return env


def start_workers(count: int, env: dict, log_dir: Path) -> list[subprocess.Popen]:
    procs = []
    for n in range(count):
        log = log_dir / f"worker{n + 1}.log"
        procs.append(subprocess.Popen(
            # One worker = one process; its threads wait for the provider in parallel, as
            # production runs them (README: --pool=threads --concurrency=8).
            [CELERY, "-A", "worker", "worker", "--pool=threads", f"--concurrency={THREADS}",
             "--loglevel=WARNING",
             f"--hostname=bench{n + 1}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
            start_new_session=True))
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(app, broker: str, count: int, timeout: float = 60) -> None:
    """Until `count` workers answer a ping over the broker."""
    celery = app.extensions["celery"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = celery.control.ping(timeout=0.5) or []
        if len(replies) >= count:
            return
    raise RuntimeError(f"{count} workers did not start within {timeout:.0f} s on {broker}")


def import_and_notify(app, batch_id: int, treasurer_id: int, file: str) -> dict:
    """The treasurer's import of the bank's file, in one transaction with the messages it
    writes. If the import itself does not (yet) tell the farmers, the bench does it the way
    the import is to: notify(send=False) per paid line, then send_batches, before the commit."""
    from sqlalchemy import func, select

    from coop.auth.models import User
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.messages import services as messages
    from coop.messages.models import Message
    from coop.messages.services import Money
    from coop.payouts import services as payouts
    from coop.payouts.models import PayoutLine

    figures = {}
    with app.app_context():
        treasurer = db.session.get(User, treasurer_id)
        start = time.perf_counter()
        result = payouts.import_confirmations(payouts.get_batch(batch_id), treasurer, file)
        figures["import_s"] = time.perf_counter() - start
        written = db.session.scalar(select(func.count()).select_from(Message))
        figures["emulated"] = written == 0
        if not written:
            batch = payouts.get_batch(batch_id)
            coop = db.session.get(Cooperative, batch.coop_id)
            rows = db.session.execute(select(PayoutLine.id, PayoutLine.farmer_user_id,
                                             PayoutLine.amount_minor, PayoutLine.currency,
                                             PayoutLine.reference)
                                      .where(PayoutLine.id.in_(result.paid))).all()
            told = []
            for line_id, farmer_id, amount, currency, reference in rows:
                told += messages.notify(farmer_id, "farmer.paid", event=f"payout-line:{line_id}",
                                        coop_id=coop.id, send=False,
                                        amount=Money(amount, currency), rail="Nequi",
                                        reference=reference, coop=coop.name,
                                        link="/my/payments")
            messages.send_batches(told, coop_id=coop.id)
        db.session.commit()   # the send jobs reach Redis after this commit
        figures["committed_s"] = time.perf_counter() - start
        figures["messages"] = db.session.scalar(select(func.count()).select_from(Message))
        figures["paid"] = len(result.paid)
    return figures


def run(url: str, label: str, farmers: int, workers: int, broker: str) -> dict:
    import redis

    from devtools.sms_standin import SmsStandin

    standin = SmsStandin(deliver_callbacks=False).start()
    t0 = time.perf_counter()
    app, batch_id, treasurer_id, file, lines = build(
        url, farmers, {**standin.settings(), "CELERY_BROKER_URL": broker})
    setup = time.perf_counter() - t0
    redis.Redis.from_url(broker).flushdb()
    log_dir = Path(tempfile.mkdtemp(prefix="minga-bench-workers-"))
    procs = start_workers(workers, worker_env(app, broker), log_dir)
    try:
        wait_ready(app, broker, workers)
        start = time.perf_counter()
        figures = import_and_notify(app, batch_id, treasurer_id, file)
        deadline = start + 1800
        while len(standin.messages) < figures["messages"]:
            if time.perf_counter() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"only {len(standin.messages)} of {figures['messages']} "
                                   f"sent; logs in {log_dir}")
            time.sleep(0.05)
        total = time.perf_counter() - start
        sent_at = time.perf_counter()
        status = _statuses(app)
        figures.update(total_s=total, send_s=total - figures["committed_s"], setup_s=setup,
                       handed=len(standin.messages), statuses=status,
                       status_s=time.perf_counter() - sent_at)
    finally:
        stop_workers(procs)
        standin.stop()
        redis.Redis.from_url(broker).flushdb()
    how = "emulated in the bench: notify(send=False) + send_batches" if figures["emulated"] \
        else "written by the import itself"
    print(f"{label}, {workers} worker{'s' if workers > 1 else ''}: {lines:,} farmers paid "
          f"(set-up {setup:.1f} s)\n"
          f"  import of the confirmation file: {figures['import_s']:.2f} s; with the "
          f"{figures['messages']:,} messages written ({how}) and committed: "
          f"{figures['committed_s']:.2f} s\n"
          f"  sending: {figures['send_s']:.2f} s "
          f"({figures['messages'] / figures['send_s']:.0f} messages/s)\n"
          f"  import start -> all {figures['handed']:,} handed to the SMS stand-in: "
          f"{total:.2f} s (target < 60 s with 2 workers)\n"
          f"  message statuses: {figures['statuses']}", flush=True)
    return figures


def _statuses(app) -> dict:
    from sqlalchemy import func, select

    from coop.extensions import db
    from coop.messages.models import Message
    with app.app_context():
        # The last message's status is recorded just after its hand-over: wait for it.
        for _ in range(100):
            counts = dict(db.session.execute(select(Message.status, func.count())
                                             .group_by(Message.status)).all())
            db.session.rollback()
            if not counts.get("queued"):
                break
            time.sleep(0.05)
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="auto", choices=("auto", "sqlite", "postgresql"))
    parser.add_argument("--farmers", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()
    for count in (int(n) for n in args.workers.split(",")):
        url = database_url(args.db)
        label = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
        run(url, label, args.farmers, count, args.broker)


if __name__ == "__main__":
    main()
