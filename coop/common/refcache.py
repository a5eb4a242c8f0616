"""Per-process caches of reference data that changes rarely (the crop catalog, a coop's
current prices), with explicit invalidation that every gunicorn and Celery worker sees.

A cache is named ("catalog", "prices:7"). The service that writes its data calls
`bump(name)` in the same transaction: the name's row in `reference_versions` gets a new
random version, committed (or rolled back) with the write itself. A reader calls
`cached(name, key, load)`: the process keeps `load()`'s value (plain data: tuples,
frozen dataclasses, never ORM rows bound to a session) beside the version it was loaded at,
and reuses it while the name's version is unchanged. The version is read with one indexed
query (its primary key) at most once per name and request; outside a request (a Celery
task, a shell) it is read again after REFERENCE_CACHE_CHECK_SECONDS (default 1).
"""
from __future__ import annotations

import secrets
import threading
import time

from flask import current_app, g, has_request_context
from sqlalchemy import BigInteger, Column, String, Table, bindparam, select

from ..extensions import db

reference_versions = Table(
    "reference_versions", db.metadata,
    Column("name", String(80), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

_lock = threading.Lock()


def _store() -> dict:
    """{(name, key): (version, value)} of the current app in this process."""
    app = current_app._get_current_object()
    store = app.extensions.get("minga_refcache")
    if store is None:
        store = app.extensions.setdefault("minga_refcache", {})
    return store


def bump(name: str) -> None:
    """The data cached under `name` changed (in the caller's transaction): every process
    reloads it on its next read after the commit."""
    version = secrets.randbits(62) + 1
    table = reference_versions
    if db.session.execute(table.update().where(table.c.name == name)
                          .values(version=version)).rowcount == 0:
        db.session.flush()
        if db.session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table).values(name=name, version=version)
        db.session.execute(stmt.on_conflict_do_update(index_elements=["name"],
                                                      set_={"version": version}))
    # This process sees its own change at once (even before the next request).
    memo = g.get("_refcache_versions") if g else None
    if memo is not None:
        memo.pop(name, None)
    current_app.extensions.get("minga_refcache_checked", {}).pop(name, None)  # outside requests


def version(name: str) -> int:
    """The committed version of `name` (0 before its first bump)."""
    if has_request_context():
        memo = g.setdefault("_refcache_versions", {})
        if name not in memo:
            memo[name] = _read(name)
        return memo[name]
    seconds = float(current_app.config.get("REFERENCE_CACHE_CHECK_SECONDS", 1) or 0)
    timed = current_app.extensions.setdefault("minga_refcache_checked", {})
    seen = timed.get(name)
    now = time.monotonic()
    if seen is None or now - seen[1] >= seconds:
        seen = (_read(name), now)
        timed[name] = seen
    return seen[0]


_READ = select(reference_versions.c.version).where(
    reference_versions.c.name == bindparam("name"))


def _read(name: str) -> int:
    # One Core statement built once (its cache key with it) on the session's connection: the
    # ORM's execute path and a new select() each time cost more than the read itself.
    return db.session.connection().execute(_READ, {"name": name}).scalar() or 0


def cached(name: str, key, load):
    """`load()`'s value for (`name`, `key`), from this process's cache while `name`'s version
    holds. `load` must return plain data."""
    current = version(name)
    store = _store()
    entry = store.get((name, key))
    if entry is not None and entry[0] == current:
        return entry[1]
    value = load()
    with _lock:
        store[(name, key)] = (current, value)
    return value


def clear() -> None:
    """Forgets this process's cached values of the current app (tests empty the database)."""
    current_app.extensions.pop("minga_refcache", None)
    current_app.extensions.pop("minga_refcache_checked", None)
    if g:
        g.pop("_refcache_versions", None)
