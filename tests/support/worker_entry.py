"""The Celery entry point of the worker tests (`celery -A tests.support.worker_entry ...`):
worker.py's app itself, with two test-only settings taken from the environment (production
code reads neither):

- MINGA_TEST_BEAT_SECONDS: beat sends every periodic task this often (instead of each one's
  minute or two), so a test sees the scheduler act within seconds.
- MINGA_TEST_HANG_FILE: at the second capture of a settlement, once Stripe has captured and
  before Minga records it, the worker writes that file and hangs, so the test can kill it at
  exactly that point."""
from __future__ import annotations

import os
import time
from pathlib import Path

from worker import celery, flask_app

app = celery

_every = os.environ.get("MINGA_TEST_BEAT_SECONDS")
if _every:
    celery.conf.beat_schedule = {name: {**entry, "schedule": float(_every)}
                                 for name, entry in celery.conf.beat_schedule.items()}

_hang_file = os.environ.get("MINGA_TEST_HANG_FILE")
if _hang_file:
    _captures = {"n": 0}

    def _hang() -> None:
        _captures["n"] += 1
        if _captures["n"] == 2:
            Path(_hang_file).write_text(str(os.getpid()))
            time.sleep(600)  # until the test kills this worker

    flask_app.config["HOLD_FAULT_HOOKS"] = {"after_capture": _hang}
