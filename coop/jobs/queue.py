"""The Celery app over the outbox: a worker runs jobs by id, beat sends the periodic ones.

Broker: REDIS_URL in production (any number of workers on any number of machines, one beat);
without it, kombu's SQLAlchemy transport on a SQLite file in instance/ (`make run`)."""
from __future__ import annotations

from celery import Celery
from flask import Flask


def init_celery(app: Flask) -> Celery:
    from . import services
    broker = app.config.get("CELERY_BROKER_URL")
    celery = Celery("minga", broker=broker, set_as_current=False)
    celery.conf.update(
        task_ignore_result=True,
        task_acks_late=True,                 # a worker that dies mid-job: the job comes back
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        task_default_queue="minga",
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0,
                                   "interval_step": 0.5, "interval_max": 1},
        timezone="UTC",
        beat_schedule={name: {"task": "minga.periodic", "schedule": every, "args": [name]}
                       for name, (_fn, every) in services.PERIODIC.items()},
        worker_hijack_root_logger=False,
    )

    @celery.task(name="minga.run_job")
    def run_job(job_id: int) -> str:
        with app.app_context():
            return services.run(job_id).status

    @celery.task(name="minga.periodic")
    def run_periodic(name: str) -> None:
        with app.app_context():
            services.tick([name])

    app.extensions["celery"] = celery
    return celery
