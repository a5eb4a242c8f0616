"""`make run`'s background workers: one Celery worker and the scheduler (beat), as child
processes of the development server, on REDIS_URL's Redis when it is set, else on kombu's
SQLAlchemy transport over a SQLite file in instance/ (nothing to install). They stop with the
server: at its exit (atexit, Ctrl-C, SIGTERM), and on Linux also when it dies without
cleaning up (the kernel sends them SIGTERM: PR_SET_PDEATHSIG)."""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_started: list[subprocess.Popen] = []


def _die_with_parent() -> None:  # runs in the child, before exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: atexit and the signal handlers still stop them


def broker_url() -> str:
    from config import Config
    return Config.CELERY_BROKER_URL


def start(environment: str = "development", log_dir: Path | None = None) -> list[Path]:
    """Start the worker and beat (once per process); returns their log files. Every setting
    in os.environ at this point (the Stripe sandbox's, the stand-ins') reaches them."""
    if _started:
        return []
    log_dir = log_dir or ROOT / "instance"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MINGA_ENV": environment, "PYTHONUNBUFFERED": "1"}
    celery = [sys.executable, "-m", "celery", "-A", "worker"]
    commands = {
        # Threads: the jobs mostly wait for Stripe, SMTP or the SMS provider.
        "worker": celery + ["worker", "--pool=threads", "--concurrency=4", "--loglevel=INFO",
                            "--without-gossip", "--without-mingle"],
        "beat": celery + ["beat", "--loglevel=INFO",
                          f"--schedule={log_dir / 'celerybeat-schedule'}"],
    }
    logs = []
    for name, command in commands.items():
        log_path = log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            _started.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                             stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL,
                                             start_new_session=True,
                                             preexec_fn=_die_with_parent))
        logs.append(log_path)
    atexit.register(stop)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    return logs


def _exit_on_signal(signum, _frame) -> None:
    raise SystemExit(128 + signum)  # atexit (and so stop) runs


def stop(timeout: float = 10.0) -> None:
    """Warm shutdown (SIGTERM: the worker finishes its job first), then SIGKILL."""
    while _started:
        proc = _started.pop()
        if proc.poll() is not None:
            continue
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
