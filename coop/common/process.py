"""Settings of a serving process — gunicorn's workers (wsgi.py), Celery's (worker.py) — rather
than of the app: Python's cyclic garbage collector.

By default it collects its youngest generation every 700 net allocations and, every so often,
walks every object the process holds. A worker holds the whole app (SQLAlchemy's mappers and
compiled statements, Jinja's templates, Babel's locale data: hundreds of thousands of
objects), and a request or a job allocates tens of thousands: measured on a 10,000-line
payout import, 574 collections took 0.37 s of its 1.5 s of Python. So once the app is loaded:
what is loaded is frozen (moved out of the collector's sight: it lives as long as the process)
and the youngest generation is collected every GEN0_THRESHOLD allocations. Reference counting
still frees everything that is not in a cycle at once; the collector still runs."""
from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000


def tune_gc() -> None:
    """Call once the app is built, in the process that serves (before gunicorn forks its
    workers, when it preloads: the frozen objects are then shared, not copied)."""
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(_gen0, GEN0_THRESHOLD), gen1, gen2)
