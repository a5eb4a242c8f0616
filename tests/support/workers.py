"""Real Celery worker and beat processes for the tests of tests/jobs: started as a person
would (`celery -A worker worker`), on the test's database and on a Redis database of their
own, and always ended by the test (`Processes` in a `with` block)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support import ROOT, worker_number

# The worker tests' Redis database (the suite's other users of Redis keep to others), one per
# pytest-xdist worker (7, 8, ...) since each flushes its own.
BROKER_URL = os.environ.get("TEST_BROKER_URL", f"redis://127.0.0.1:6379/{7 + worker_number()}")
CELERY = str(Path(sys.executable).with_name("celery"))
# What a worker needs of the test app's settings to reach the same places.
_SETTINGS = ("SECRET_KEY", "PUBLIC_BASE_URL", "STRIPE_SECRET_KEY", "STRIPE_API_BASE",
             "STRIPE_WEBHOOK_SECRET", "MAIL_SERVER", "MAIL_PORT", "MAIL_USE_STARTTLS",
             "MAIL_CA_FILE", "MAIL_USERNAME", "MAIL_PASSWORD", "SMS_PROVIDER",
             "TWILIO_API_BASE", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
             "TWILIO_WHATSAPP_FROM", "TWILIO_MESSAGING_SERVICE_SID")


def flush_broker() -> None:
    import redis
    redis.Redis.from_url(BROKER_URL).flushdb()


def worker_env(app, **extra) -> dict:
    """The environment of a worker process built like production's (MINGA_ENV picks the
    settings; development needs no Redis for rate limits) on the test app's database,
    Stripe sandbox and message stand-ins."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MINGA_", "TEST_", "REDIS_", "CELERY_", "JOB"))}
    env.update(MINGA_ENV="development", DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               CELERY_BROKER_URL=BROKER_URL, JOBS_EAGER="0", MESSAGES_DAYTIME="0-24",
               PYTHONUNBUFFERED="1")
    for name in _SETTINGS:
        value = app.config.get(name)
        if value is not None:
            env[name] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Processes:
    """Celery processes of one test; each in its own process group, so that a kill ends the
    worker and any child it forked. Leaving the `with` block kills whatever is left."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, kind: str, env: dict, *, module: str = "worker",
              name: str | None = None) -> subprocess.Popen:
        name = name or f"{kind}{len(self.started) + 1}"
        args = [CELERY, "-A", module, kind, "--loglevel=INFO"]
        if kind == "worker":
            # One job at a time, in the worker process itself: a kill stops that job there.
            args += ["--pool=solo", "--concurrency=1", f"--hostname={name}@%h",
                     "--without-gossip", "--without-mingle", "--without-heartbeat"]
        else:
            args += [f"--schedule={self.log_dir / f'{name}-schedule'}"]
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.started.append((name, proc))
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL, as a machine that dies: no shutdown, nothing acknowledged or recorded."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)

    def logs(self) -> str:
        parts = []
        for name, _proc in self.started:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} ---\n{text[-3000:]}")
        return "\n".join(parts)

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc) -> None:
        for _name, proc in self.started:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    self.kill(proc)


def wait_for(check, *, timeout: float, what: str, processes: Processes | None = None):
    """Poll `check()` until it returns something true; fail with the workers' logs."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            logs = processes.logs() if processes else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(0.25)
