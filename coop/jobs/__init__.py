"""Background work: an outbox of jobs written in the transaction that asks for them, handed
to Celery only after it commits, run by any number of workers, retried with backoff and
parked when it keeps failing."""
