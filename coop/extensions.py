"""Extension objects, created unbound and initialised in create_app()."""
import select

from flask import request
from flask_babel import Babel
from flask_compress import Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase

# One naming convention so Alembic can name (and on SQLite, batch-alter) every constraint.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
compress = Compress()


def _client_key() -> str:
    # Behind a load balancer ProxyFix (see wsgi.py) makes remote_addr the client's address.
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=_client_key, default_limits=[])


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite as a real multi-user store: WAL (readers do not block the writer), a busy
    timeout instead of immediate 'database is locked', and foreign keys enforced."""
    import sqlite3
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA foreign_keys = ON")
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError:
        pass  # in-memory databases have no WAL
    cursor.close()


def install_sqlite_pragmas() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


def _quiet_or_replaced(dbapi_connection, connection_record, connection_proxy) -> None:
    """At each checkout of a pooled PostgreSQL connection, a look at its socket instead of
    a round trip (SQLAlchemy's pool_pre_ping sends one on every checkout: a quarter of a
    one-query request's round trips). An idle connection has nothing to read; when the
    server ends it (a restart, a failover, an idle timeout, pg_terminate_backend) it writes
    why and closes, and the socket turns readable: such a connection, or one psycopg knows
    closed or broken, is discarded and the pool connects anew (DisconnectionError), before
    the request has used it. A connection cut without a word (a host gone, no FIN) is not
    seen: the request that uses it fails (the ping would have caught it, at a round trip
    for every request), and SQLAlchemy then replaces every connection of the pool."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None or not hasattr(dbapi_connection, "pgconn"):
        return  # not psycopg (SQLite: nothing to lose in between)
    try:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise DisconnectionError("the connection is closed")
        poller = select.poll()  # not select(): no limit on the descriptor's number
        poller.register(fileno(), select.POLLIN | select.POLLPRI)
        readable = poller.poll(0)
    except (OSError, ValueError) as exc:
        raise DisconnectionError(str(exc)) from exc
    if readable:
        raise DisconnectionError("the server wrote to an idle connection (it ended it)")


def install_connection_check() -> None:
    from sqlalchemy import event
    from sqlalchemy.pool import Pool
    if not event.contains(Pool, "checkout", _quiet_or_replaced):
        event.listen(Pool, "checkout", _quiet_or_replaced)
