"""How a request's transaction ends when it only read (PostgreSQL), the views that read in
autocommit (`reads_only`), and the driver's cursor for the bulk writes SQLAlchemy does not
see.

psycopg forgets every statement it prepared on a connection when a transaction ends with
ROLLBACK (the transaction may have dropped what they name), and sends DEALLOCATE ALL. Every
Flask-SQLAlchemy session ends with a rollback when its app context is torn down, so a page
that only reads — most requests — never reused a prepared statement: PostgreSQL parsed and
planned each of its queries again on every request (the supply page's grouped listing query
is most of its database time). A transaction that sent nothing but SELECTs has nothing to
undo: ending it with COMMIT is the same for the database (its row locks, if it took any, are
released either way), and psycopg keeps what it prepared (after PREPARE_THRESHOLD runs of a
statement on a connection, psycopg's default 5).

So, when an app context is torn down without an error, a session whose transaction sent only
SELECT statements and holds no pending ORM change is committed instead. "Only SELECTs" is
decided conservatively: the transaction's connection is marked written by any statement that
does not begin with SELECT (INSERT, UPDATE, DELETE, DDL, SAVEPOINT, a WITH that might
write…), and by `driver_cursor`, the one way to the driver's own cursor (COPY) in Minga:
anything unmarked is rolled back as before.

`reads_only` goes further for the GET views that can only read (the public catalog, supply,
pools and their API): their queries run in autocommit — no BEGIN before them and no COMMIT
after, one round trip a query where a one-query answer took three. Each query sees what was
committed when it runs, which is what each statement of a READ COMMITTED transaction
(PostgreSQL's default, Minga's) sees already. Any statement other than a SELECT on such a
connection raises `ReadsOnly` before it is sent: what writes, writes in a transaction."""
from __future__ import annotations

import logging

from flask import g, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..extensions import db

log = logging.getLogger(__name__)

WROTE = "minga_wrote"            # on the DBAPI connection's info: this transaction wrote
CONNECTION = "minga_connection"  # on the session's info: its transaction's connection
READS_ONLY = "minga_reads_only"  # execution option: the connection of a `reads_only` view


class ReadsOnly(RuntimeError):
    """A view marked `reads_only` tried to write (a programming error: a 500)."""


def reads_only(view):
    """Mark a view that only reads: a GET or HEAD of it reads in autocommit on PostgreSQL,
    from the request's start (`_reads_only_request`, before the hooks that load the
    signed-in user; see the module's docstring)."""
    view.minga_reads_only = True
    return view


def _reads_only_request() -> None:
    """The first before-request hook: a GET of a `reads_only` view, in a session of its own
    (none yet: a request in its own app context, as every request a server handles), reads
    in autocommit until the request ends. A session already there (a test's, shared by its
    requests) is left as it is: its transaction outlives the request."""
    if request.method not in ("GET", "HEAD") or not request.endpoint:
        return
    from flask import current_app
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "minga_reads_only", False) or db.session.registry.has() \
            or db.engine.dialect.name != "postgresql":
        return
    db.session().connection(execution_options={"isolation_level": "AUTOCOMMIT",
                                               READS_ONLY: True})
    g.minga_reads_only = True


def _reads_only_ended(exc: BaseException | None = None) -> None:
    """The request's end: its autocommit session closed (the connection back to the pool,
    its isolation level reset), so that nothing after the request — a test's own code in
    the app context its requests share — reads or writes on that connection."""
    if g.pop("minga_reads_only", False):
        db.session.close()


def driver_cursor(connection):
    """The driver's own cursor on a SQLAlchemy connection (psycopg's COPY), the transaction
    marked as written: a cursor SQLAlchemy's events never see must not let it end in COMMIT
    as a transaction that only read."""
    connection.info[WROTE] = True
    return connection.connection.driver_connection.cursor()


def _began(session: Session, transaction, connection) -> None:
    if transaction.parent is None:
        connection.info[WROTE] = False
        session.info[CONNECTION] = connection


def _ended(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(CONNECTION, None)


def _statement(conn, cursor, statement, parameters, context, executemany) -> None:
    if not statement.startswith("SELECT"):
        if conn.get_execution_options().get(READS_ONLY):
            raise ReadsOnly(f"a reads_only view sent {statement[:60]!r}")
        conn.info[WROTE] = True


def end_reads(exc: BaseException | None = None) -> bool:
    """Commit the current session's transaction if it only read (see the module's
    docstring); True when it did. Runs before Flask-SQLAlchemy removes the session."""
    if exc is not None or not db.session.registry.has():
        return False
    session = db.session()
    connection = session.info.get(CONNECTION)
    if connection is None or connection.closed or not connection.in_transaction():
        return False
    if connection.dialect.name != "postgresql" or connection.info.get(WROTE, True):
        return False
    if connection.get_execution_options().get(READS_ONLY):
        return False  # autocommit: no transaction to end
    if session.new or session.dirty or session.deleted:
        return False
    try:
        session.commit()
    except Exception:  # the session's removal rolls back, as it always did
        log.exception("ending a read-only transaction with COMMIT failed")
        return False
    return True


def install(app) -> None:
    """The events (once per process) and the teardown (registered after Flask-SQLAlchemy's,
    so that it runs before it)."""
    if not event.contains(Engine, "before_cursor_execute", _statement):
        event.listen(Engine, "before_cursor_execute", _statement)
        event.listen(Session, "after_begin", _began)
        event.listen(Session, "after_transaction_end", _ended)
    app.teardown_appcontext(end_reads)
    app.before_request_funcs.setdefault(None, []).insert(0, _reads_only_request)
    app.teardown_request(_reads_only_ended)
