"""Many ledger entries (or one entry of thousands of lines) in a few statements.

`coop.ledger.services.post` writes one entry with a statement or two per line; a
reconciliation of 100,000 balance transactions (a fee entry each) or a year-end
distribution to 10,000 members would take minutes that way. `post_many` keeps every rule
of `post`, in bulk:
- the same idempotency key (unique per coop) and the same fingerprint as `post` computes,
  so a key already used with the same lines returns the first entry and with other lines
  is refused, and `post` called later with the same key and lines finds the entry;
- each entry balances, has two or more non-zero integer lines;
- accounts are opened as `post` opens them (chart codes and per-person codes only);
- cached balances move by the same amounts, and an account that may not go negative
  refuses the whole batch (Conflict insufficient_balance);
- PostgreSQL's deferred trigger still checks every entry's balance at commit.
It flushes, never commits."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import String, and_, insert, or_, select, text

from ..common.bulk import id_sets, in_sets
from ..common.errors import Conflict, ValidationFailed
from ..common.transactions import driver_cursor
from ..common.models import utcnow
from ..extensions import db
from . import services as ledger
from .models import LedgerAccount, LedgerEntry, LedgerPosting

CHUNK = 1000


@dataclass
class NewEntry:
    key: str
    kind: str
    lines: list  # of ledger.Line
    memo: str = ""
    source: tuple[str, int] | None = None
    external_ref: str | None = None
    effective_on: datetime | None = None
    document: int | None = None  # the invoice or credit note the entry belongs to
    fingerprint: str = field(default="", init=False)


def _chunks(items, size=CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _check(entry: NewEntry) -> None:
    ledger.check_key(entry.key)
    entry.lines = [line for line in entry.lines if line.amount_minor != 0]
    ledger.check_lines(entry.lines)
    entry.fingerprint = ledger.entry_fingerprint(entry.lines, "posted")


def _account_row(coop, code: str) -> dict:
    return {**ledger.account_fields(coop, code), "created_at": utcnow()}


def open_accounts(coop, codes) -> dict[str, tuple[int, str, bool]]:
    """code -> (account id, kind, may go negative), opening the missing ones in bulk."""
    codes = sorted(set(codes))
    found: dict[str, tuple[int, str, bool]] = {}

    def load(where):
        for acc_id, code, kind, negative in db.session.execute(
                select(LedgerAccount.id, LedgerAccount.code, LedgerAccount.kind,
                       LedgerAccount.may_go_negative)
                .where(LedgerAccount.coop_id == coop.id, where)):
            found[code] = (acc_id, kind, bool(negative))

    for where in in_sets(LedgerAccount.code, codes, String):
        load(where)
    missing = [c for c in codes if c not in found]
    if missing:
        rows = [_account_row(coop, code) for code in missing]
        for batch in _chunks(rows):
            insert_rows(LedgerAccount.__table__, batch)
        for where in in_sets(LedgerAccount.code, missing, String):
            load(where)
    return found


def insert_rows(table, rows: list[dict]) -> None:
    """Insert many rows: PostgreSQL's COPY (one statement, so statement-level triggers run
    once), SQLite's executemany (in-process, already fast)."""
    if not rows:
        return
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(insert(table), rows)
        return
    columns = list(rows[0])
    with driver_cursor(connection) as cursor:
        names = ", ".join(columns)
        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


def apply_deltas(deltas: dict[int, int]) -> None:
    """Add each delta to its account's cached balance: one UPDATE ... FROM (VALUES ...) per
    chunk of accounts (both databases), not one statement per account."""
    changes = sorted((acc_id, delta) for acc_id, delta in deltas.items() if delta)
    connection = db.session.connection()
    if connection.dialect.name == "postgresql" and len(changes) > 200:
        # COPY the deltas into a temporary table and join once.
        connection.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS ledger_deltas "
                                "(id bigint PRIMARY KEY, delta bigint NOT NULL) "
                                "ON COMMIT DELETE ROWS"))
        connection.execute(text("DELETE FROM ledger_deltas"))
        with driver_cursor(connection) as cursor:
            with cursor.copy("COPY ledger_deltas (id, delta) FROM STDIN") as copy:
                for row in changes:
                    copy.write_row(row)
        connection.execute(text(
            "UPDATE ledger_accounts SET balance_minor = ledger_accounts.balance_minor + d.delta "
            "FROM ledger_deltas d WHERE ledger_accounts.id = d.id"))
        return
    for part in _chunks(changes, 2000):
        values = ", ".join(f"(CAST(:i{n} AS BIGINT), CAST(:d{n} AS BIGINT))"
                           for n in range(len(part)))
        params = {}
        for n, (acc_id, delta) in enumerate(part):
            params[f"i{n}"], params[f"d{n}"] = acc_id, delta
        db.session.execute(text(
            "UPDATE ledger_accounts SET balance_minor = ledger_accounts.balance_minor + v.delta "
            f"FROM (SELECT column1 AS id, column2 AS delta FROM (VALUES {values}) AS vals) AS v "
            "WHERE ledger_accounts.id = v.id"), params)


def _refusing(exc, key: str | None):
    """The error, saying (as `exc.key`) the key of the first entry it refuses, so that a
    caller can name its row: the entry `post`, called for each entry in turn, would have
    refused first."""
    exc.key = key
    return exc


def _first_overdrawing(new: list[NewEntry], accounts: dict, deltas: dict[int, int]
                       ) -> tuple[str | None, str | None]:
    """(key, account name) of the first of `new`, in order, that takes an account that may
    not go negative below zero, on the balances before them (now less what they moved)."""
    rows = {}
    for batch in _chunks(list(deltas)):
        for acc_id, name, kind, negative, balance in db.session.execute(
                select(LedgerAccount.id, LedgerAccount.name, LedgerAccount.kind,
                       LedgerAccount.may_go_negative, LedgerAccount.balance_minor)
                .where(LedgerAccount.id.in_(batch))):
            rows[acc_id] = (name, kind in ("asset", "expense"), bool(negative),
                            balance - deltas[acc_id])
    balances = {acc_id: row[3] for acc_id, row in rows.items()}
    for entry in new:
        moves: dict[int, int] = {}
        for line in entry.lines:
            acc_id = accounts[line.account][0]
            moves[acc_id] = moves.get(acc_id, 0) + line.amount_minor
        for acc_id, amount in sorted(moves.items()):
            name, debit_normal, negative, _before = rows[acc_id]
            balance = balances[acc_id]
            if not negative and ((debit_normal and amount < 0 and balance + amount < 0) or
                                 (not debit_normal and amount > 0 and balance + amount > 0)):
                return entry.key, name
        for acc_id, amount in moves.items():
            balances[acc_id] += amount
    return None, None


def post_many(coop, entries: list[NewEntry], user=None) -> dict[str, int]:
    """Write every entry whose key is new; returns key -> entry id for all of them. A refusal
    (a key reused with other lines, an account taken below zero) says as `exc.key` which
    entry `post`, called for each in turn, would have refused first; the caller rolls back
    what was written."""
    for entry in entries:
        try:
            _check(entry)
        except ValidationFailed as exc:
            raise _refusing(exc, entry.key)
    result: dict[str, int] = {}
    by_key = {}
    for entry in entries:
        if entry.key in by_key and by_key[entry.key].fingerprint != entry.fingerprint:
            raise _refusing(ValidationFailed(
                _("This idempotency key was used for a different entry."),
                code="idempotency_key_reused"), entry.key)
        by_key[entry.key] = entry
    for where in in_sets(LedgerEntry.idempotency_key, list(by_key), String):
        for key, entry_id, fingerprint in db.session.execute(
                select(LedgerEntry.idempotency_key, LedgerEntry.id, LedgerEntry.fingerprint)
                .where(LedgerEntry.coop_id == coop.id, where)):
            if fingerprint != by_key[key].fingerprint:
                raise _refusing(ValidationFailed(
                    _("This idempotency key was used for a different entry."),
                    code="idempotency_key_reused"), key)
            result[key] = entry_id
    new = [e for k, e in by_key.items() if k not in result]
    if not new:
        return result
    accounts = open_accounts(coop, {line.account for e in new for line in e.lines})
    now = utcnow()
    user_id = getattr(user, "id", None)
    deltas: dict[int, int] = {}
    rows = [{"coop_id": coop.id, "idempotency_key": e.key, "fingerprint": e.fingerprint,
             "kind": e.kind, "memo": (e.memo or "")[:255], "status": "posted",
             "currency": coop.currency, "created_by_id": user_id,
             "source_type": e.source[0] if e.source else None,
             "source_id": e.source[1] if e.source else None,
             "external_ref": e.external_ref, "document_id": e.document, "created_at": now,
             "effective_on": e.effective_on or now} for e in new]
    postgresql = db.session.connection().dialect.name == "postgresql"
    if postgresql:
        # The entries' ids taken from their sequence first, so that every entry and then
        # every posting is one COPY (the statement-level trigger runs once each) with no
        # look-up of the ids by key afterwards.
        ids = list(db.session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')) "
            "FROM generate_series(1, :n)"), {"n": len(new)}))
        for row, entry_id in zip(rows, ids):
            row["id"] = entry_id
        parts = [(rows, new, ids)]
    else:
        parts = []
        for start in range(0, len(new), CHUNK):
            part_rows, part = rows[start:start + CHUNK], new[start:start + CHUNK]
            # One multi-row INSERT per chunk, then the ids by key.
            insert_rows(LedgerEntry.__table__, part_rows)
            by_key_id = dict(db.session.execute(
                select(LedgerEntry.idempotency_key, LedgerEntry.id)
                .where(LedgerEntry.coop_id == coop.id,
                       LedgerEntry.idempotency_key.in_([e.key for e in part]))).all())
            parts.append((None, part, [by_key_id[e.key] for e in part]))
    for part_rows, part, ids in parts:
        if part_rows is not None:
            insert_rows(LedgerEntry.__table__, part_rows)
        postings = []
        for entry_id, entry in zip(ids, part):
            result[entry.key] = entry_id
            for line in entry.lines:
                acc_id = accounts[line.account][0]
                postings.append({"entry_id": entry_id, "account_id": acc_id,
                                 "amount_minor": line.amount_minor})
                deltas[acc_id] = deltas.get(acc_id, 0) + line.amount_minor
        insert_rows(LedgerPosting.__table__, postings)
    apply_deltas(deltas)
    for where in id_sets(LedgerAccount.id, list(deltas)):
        overdrawn = db.session.scalar(
            select(LedgerAccount.name).where(
                where, LedgerAccount.may_go_negative.is_(False),
                or_(and_(LedgerAccount.kind.in_(("asset", "expense")),
                         LedgerAccount.balance_minor < 0),
                    and_(LedgerAccount.kind.notin_(("asset", "expense")),
                         LedgerAccount.balance_minor > 0))).limit(1))
        if overdrawn is not None:
            key, name = _first_overdrawing(new, accounts, deltas)
            raise _refusing(Conflict(_("Not enough in %(account)s for this movement.",
                                       account=name or overdrawn),
                                     code="insufficient_balance"), key)
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, LedgerAccount) and obj.id in deltas:
            db.session.expire(obj, ["balance_minor"])
    return result


def holds_many(coop, orders: list[tuple[int, str, int]], *, status: str, when) -> None:
    """Card holds as services.hold writes them (kind card_hold, pending; `posted` once
    captured), for many orders at once (the demo grower): memorandum entries whose lines move
    no cached balance. `orders`: (order id, PaymentIntent id, amount in minor units)."""
    if not orders:
        return
    accounts = open_accounts(coop, ["card_holds", "card_holds_offset"])
    rows, lines_by_key = [], {}
    for order_id, intent, amount in orders:
        lines = [ledger.debit("card_holds", amount), ledger.credit("card_holds_offset", amount)]
        key = f"order:{order_id}:hold:{intent}"
        lines_by_key[key] = lines
        rows.append({"coop_id": coop.id, "idempotency_key": key,
                     "fingerprint": ledger.entry_fingerprint(lines, "pending"),
                     "kind": "card_hold", "memo": f"card hold, order {order_id}",
                     "status": status, "currency": coop.currency, "source_type": "order",
                     "source_id": order_id, "created_at": when, "effective_on": when})
    table = LedgerEntry.__table__
    ids = list(db.session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars())
    db.session.execute(insert(LedgerPosting.__table__), [
        {"entry_id": entry_id, "account_id": accounts[line.account][0],
         "amount_minor": line.amount_minor}
        for entry_id, row in zip(ids, rows) for line in lines_by_key[row["idempotency_key"]]])
