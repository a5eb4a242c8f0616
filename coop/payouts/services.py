"""Paying farmers what they are owed (domain.md, "Payout rails").

What a farmer is owed is the balance of their `farmer_payable:<user id>` ledger account; what is
due for a new batch is that less the lines still waiting for the bank. A batch copies each
farmer's rail and account into a line (or leaves the farmer out, saying why); the bank's
confirmation file makes lines paid (posted once to the ledger: Dr farmer_payable, Cr bank) or
failed (nothing posted, the amount is due again). Functions here flush, never commit."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import and_, case, func, or_, select, text

from ..audit import services as audit
from ..auth.models import User
from ..common.access import farmer_coop_ids
from ..common.bulk import update_rows
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.idempotency import replay_or_refuse
from ..common.locks import payouts_lock
from ..common.models import utcnow
from ..common.paging import PER_PAGE, KeysetPage, keyset
from ..common.money import format_money
from ..cooperatives.models import PAYOUT_RAILS, Cooperative, FarmerProfile
from ..cooperatives import services as coop_services
from ..cooperatives import verification
from ..cooperatives.payout_accounts import validate_payout_account
from ..extensions import db
from ..jobs import services as jobs
from ..ledger import bulk as ledger_bulk
from ..ledger import services as ledger
from ..ledger import queries as ledger_queries
from ..messages import services as messages
from .csv_formats import (MAX_CONFIRMATION_BYTES, MAX_REPORTED_ERRORS,  # noqa: F401
                          parse_confirmations, reference, refuse, write_export)
from .models import PayoutBatch, PayoutExclusion, PayoutLine

# Yape: receipts capped at 5 UIT a month (S/25,750 in 2024), in PEN minor units.
YAPE_MONTHLY_CAP_MINOR = 2_575_000
# Bre-B: at most COP 11.5M per transfer, in COP minor units.
BREB_MAX_TRANSFER_MINOR = 1_150_000_000



def rail_names() -> dict[str, str]:
    """rail code -> its name in the reader's language (cooperatives/labels.py)."""
    from ..cooperatives.labels import RAILS
    return {code: str(RAILS[code]) for code in PAYOUT_RAILS}


def status_names() -> dict[str, str]:
    from .labels import LINE_STATUS
    return {code: str(name) for code, name in LINE_STATUS.items()}


def require_treasurer(coop_id: int, user) -> None:
    """NotFound for anyone outside the cooperative (a buyer, another coop's treasurer or
    farmer): whether a payout batch or line of it exists is never revealed, not even by a 403
    in place of a 404. Forbidden only for its own members without the treasurer role."""
    from ..common.access import require_member
    require_member(coop_id, "treasurer", user=user)


# ---------------------------------------------------------------- what is owed

@dataclass
class Payable:
    farmer_id: int
    name: str
    currency: str
    owed_minor: int  # the payable's balance
    in_batches_minor: int  # in lines that wait for the bank
    rail: str | None = None
    account: str = ""
    bank_name: str = ""
    national_id: str = ""
    has_profile: bool = False

    @property
    def amount_due_minor(self) -> int:
        return max(0, self.owed_minor - self.in_batches_minor)


def payables_due(coop: Cooperative, *, limit: int, after_id: int | None = None
                 ) -> list[Payable]:
    """Up to `limit` farmers with an amount due (owed minus what waits in batches), by
    farmer id after `after_id`: a page of the API's list, in two queries whatever the
    number of farmers (the filter and the order in SQL, so that a page is never short)."""
    stmt, payable, due = _payable_rows(coop)
    stmt = stmt.where(due > 0).order_by(payable.c.user_id).limit(limit)
    if after_id:
        stmt = stmt.where(payable.c.user_id > after_id)
    return [_payable(coop, row, accounts=False) for row in db.session.execute(stmt)]


def _payable(coop: Cooperative, r, *, accounts: bool = True) -> Payable:
    """A row of `_payable_rows` as a Payable (`accounts`: with the payout account, bank and
    national id; the API's list leaves them out)."""
    return Payable(farmer_id=r.user_id, name=r.name, currency=coop.currency,
                   owed_minor=-int(r.balance_minor or 0), in_batches_minor=int(r.waiting or 0),
                   rail=r.payout_rail, account=(r.payout_account or "") if accounts else "",
                   bank_name=(r.bank_name or "") if accounts else "",
                   national_id=(r.national_id or "") if accounts else "",
                   has_profile=r.profile_id is not None)


def payables(coop: Cooperative) -> list[Payable]:
    """Every farmer with money owed or on its way, in two queries whatever their number: the
    payable balances with the member record's rail and account, and the amounts in lines that
    wait for the bank (apart, so that no plan can run the sum once per farmer)."""
    in_batches = dict(db.session.execute(
        select(PayoutLine.farmer_user_id, func.sum(PayoutLine.amount_minor))
        .where(PayoutLine.coop_id == coop.id, PayoutLine.status == "pending")
        .group_by(PayoutLine.farmer_user_id)).all())
    payable = ledger_queries.payable_balances(coop)
    rows = db.session.execute(
        select(payable.c.user_id, payable.c.balance_minor, User.name,
               FarmerProfile.id, FarmerProfile.payout_rail, FarmerProfile.payout_account,
               FarmerProfile.bank_name, FarmerProfile.national_id)
        .join(User, User.id == payable.c.user_id)
        .outerjoin(FarmerProfile, and_(FarmerProfile.coop_id == coop.id,
                                       FarmerProfile.user_id == payable.c.user_id))
        .order_by(User.name, payable.c.user_id))
    return [Payable(farmer_id=uid, name=name, currency=coop.currency,
                    owed_minor=-int(balance or 0), in_batches_minor=int(in_batches.get(uid, 0)),
                    rail=rail, account=account or "", bank_name=bank or "",
                    national_id=nid or "", has_profile=profile_id is not None)
            for uid, balance, name, profile_id, rail, account, bank, nid in rows
            if balance or uid in in_batches]


def _payable_rows(coop: Cooperative):
    """(statement, amount waiting in batches, amount due) over every farmer_payable account
    of the coop, with the farmer's name and member record."""
    in_batches = (select(PayoutLine.farmer_user_id.label("user_id"),
                         func.sum(PayoutLine.amount_minor).label("amount"))
                  .where(PayoutLine.coop_id == coop.id, PayoutLine.status == "pending")
                  .group_by(PayoutLine.farmer_user_id).subquery())
    payable = ledger_queries.payable_balances(coop)
    waiting = func.coalesce(in_batches.c.amount, 0)
    due = -payable.c.balance_minor - waiting
    stmt = (select(payable.c.user_id, payable.c.balance_minor, waiting.label("waiting"),
                   User.name, FarmerProfile.id.label("profile_id"), FarmerProfile.payout_rail,
                   FarmerProfile.payout_account, FarmerProfile.bank_name,
                   FarmerProfile.national_id)
            .join(User, User.id == payable.c.user_id)
            .outerjoin(in_batches, in_batches.c.user_id == payable.c.user_id)
            .outerjoin(FarmerProfile, and_(FarmerProfile.coop_id == coop.id,
                                           FarmerProfile.user_id == payable.c.user_id)))
    return stmt, payable, due


def payables_page(coop: Cooperative, cursor: str | None, *, q: str = "",
                  limit: int = PER_PAGE) -> KeysetPage:
    """A page of `payables` by name (keyset on name and farmer id), found by part of the
    name; its items are Payable rows. Constant queries whatever the number of farmers."""
    stmt, payable, _due = _payable_rows(coop)
    q = (q or "").strip()[:80]
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(User.name.ilike(like, escape="\\"))
    found = keyset(stmt, [User.name, payable.c.user_id], cursor, limit, scalars=False,
                   key=lambda r: (r.name, r.user_id))
    found.items = [_payable(coop, r) for r in found.items]
    return found


def total_due_of(coop: Cooperative) -> int:
    """What the coop owes its farmers now, less what waits in batches: one query."""
    stmt, _payable, due = _payable_rows(coop)
    inner = stmt.add_columns(case((due > 0, due), else_=0).label("due")).subquery()
    return int(db.session.scalar(select(func.coalesce(func.sum(inner.c.due), 0))) or 0)


def total_due(items: list[Payable]) -> int:
    return sum(p.amount_due_minor for p in items)


# ---------------------------------------------------------------- batches

def _request_hash(rail: str | None) -> str:
    return hashlib.sha256(f"rail={rail or ''}".encode()).hexdigest()


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _yape_received_this_month(coop: Cooperative, now: datetime) -> dict[int, int]:
    """Per farmer: Yape lines paid this month or still on their way."""
    rows = db.session.execute(
        select(PayoutLine.farmer_user_id, func.sum(PayoutLine.amount_minor))
        .where(PayoutLine.coop_id == coop.id, PayoutLine.rail == "yape",
               or_(PayoutLine.status == "pending",
                   and_(PayoutLine.status == "paid",
                        PayoutLine.confirmed_at >= _month_start(now))))
        .group_by(PayoutLine.farmer_user_id))
    return {uid: int(total) for uid, total in rows}


def _plan(coop: Cooperative, payable: Payable, account: str, yape_used: dict[int, int]
          ) -> tuple[list[tuple[int, str]], str | None]:
    """The line amounts (with a flag each) for one farmer, or the reason to leave them out."""
    amount = payable.amount_due_minor
    rail = payable.rail
    if rail == "yape" and coop.currency == "PEN":
        # Choice: pay what fits under the monthly cap, flag it; the rest stays due.
        room = YAPE_MONTHLY_CAP_MINOR - yape_used.get(payable.farmer_id, 0)
        cap = format_money(YAPE_MONTHLY_CAP_MINOR, "PEN")
        if room <= 0:
            return [], _("Yape receipts are capped at %(cap)s a month and this farmer has "
                         "reached it; the amount stays due (pay next month or by another "
                         "rail).", cap=cap)
        if amount > room:
            return [(room, _("Capped by Yape's monthly limit of %(cap)s: %(rest)s stays due.",
                             cap=cap, rest=format_money(amount - room, "PEN")))], None
        return [(amount, "")], None
    if rail == "breb" and coop.currency == "COP" and amount > BREB_MAX_TRANSFER_MINOR:
        # Choice: split into transfers of at most COP 11.5M, each its own line.
        parts = []
        left = amount
        while left > 0:
            parts.append(min(left, BREB_MAX_TRANSFER_MINOR))
            left -= parts[-1]
        return [(part, _("Bre-B transfer %(i)d of %(n)d (at most %(max)s each).", i=i + 1,
                         n=len(parts), max=format_money(BREB_MAX_TRANSFER_MINOR, "COP")))
                for i, part in enumerate(parts)], None
    return [(amount, "")], None


_LINE_ARRAYS = (("farmer_user_id", "integer"), ("rail", "varchar"), ("payee_name", "varchar"),
                ("national_id", "varchar"), ("account", "varchar"), ("bank_name", "varchar"),
                ("amount_minor", "bigint"), ("flag", "varchar"))


def _insert_lines(batch: PayoutBatch, lines: list[dict]) -> None:
    """All the lines in one statement: on PostgreSQL an INSERT ... SELECT FROM unnest() of one
    array per column (a row-by-row executemany takes over a second for 10,000 lines); SQLite
    runs its executemany in C."""
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(PayoutLine.__table__.insert(), lines)
        return
    columns = [name for name, _type in _LINE_ARRAYS]
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _LINE_ARRAYS)
    db.session.execute(text(
        f"INSERT INTO payout_lines (batch_id, coop_id, currency, status, created_at, "
        f"{', '.join(columns)}) SELECT :batch_id, :coop_id, :currency, 'pending', :created_at, "
        f"u.* FROM unnest({arrays}) AS u"),
        {"batch_id": batch.id, "coop_id": batch.coop_id, "currency": batch.currency,
         "created_at": batch.created_at, **{name: [line[name] for line in lines]
                                            for name in columns}})


def batch_for_key(coop: Cooperative, key: str) -> PayoutBatch | None:
    return db.session.scalar(select(PayoutBatch).where(PayoutBatch.coop_id == coop.id,
                                                       PayoutBatch.idempotency_key == key))


def _check_rail(rail):
    if rail in ("", None):
        return None
    if rail not in PAYOUT_RAILS:
        raise ValidationFailed(_("Unknown payout rail."), code="unknown_rail",
                               fields={"rail": [_("Choose one of: %(r)s.",
                                                  r=", ".join(rail_names().values()))]})
    return rail


def _plan_lines(coop: Cooperative, rail: str | None, now: datetime
                ) -> tuple[list[dict], list[dict]]:
    """The lines a batch would pay now and the farmers it would leave out (with why)."""
    items = [p for p in payables(coop) if p.amount_due_minor > 0
             and (rail is None or p.rail == rail)]
    yape_used = (_yape_received_this_month(coop, now)
                 if any(p.rail == "yape" for p in items) else {})
    lines, left_out = [], []
    for p in items:
        reason = None
        account = ""
        if not p.has_profile:
            reason = _("No member record with payout details in this cooperative.")
        else:
            try:
                account = validate_payout_account(p.rail, p.account)
            except ValidationFailed as exc:
                reason = exc.message
        parts = []
        if reason is None:
            parts, reason = _plan(coop, p, account, yape_used)
        if reason is not None:
            left_out.append({"farmer_user_id": p.farmer_id,
                             "payee_name": p.name[:160], "rail": p.rail or "",
                             "amount_minor": p.amount_due_minor, "reason": reason[:255]})
            continue
        for amount, flag in parts:
            lines.append({"coop_id": coop.id,
                          "farmer_user_id": p.farmer_id, "rail": p.rail,
                          "payee_name": p.name[:160], "national_id": p.national_id,
                          "account": account, "bank_name": p.bank_name,
                          "amount_minor": amount, "currency": coop.currency, "flag": flag[:255],
                          "status": "pending", "created_at": now})
    return lines, left_out


def create_batch(coop: Cooperative, user, *, rail: str | None = None,
                 idempotency_key: str | None = None, now: datetime | None = None
                 ) -> tuple[PayoutBatch, bool]:
    """A batch paying every farmer what is due (only those on `rail` if given), with a
    constant number of queries whatever the number of farmers. Farmers whose account cannot
    be right for their rail (or without a member record) are left out with the reason; their
    amount stays due. Yape lines are capped at the monthly limit and flagged; Bre-B amounts
    over COP 11.5M are split. Returns (batch, created): the same idempotency key with the same
    rail returns the first batch; with another rail it is refused (`idempotency_key_reused`).
    Nothing payable: Conflict `nothing_due` (409)."""
    verification.require_verified(coop)  # a pending coop moves no money
    rail = _check_rail(rail)
    fingerprint = _request_hash(rail)
    if idempotency_key is not None:
        earlier = batch_for_key(coop, idempotency_key)
        if earlier is not None:
            return replay_or_refuse(earlier, earlier.request_hash == fingerprint,
                                    _("This idempotency key was used for another batch.")), False
    now = now or utcnow()
    batch = PayoutBatch(coop_id=coop.id, rail=rail, status="open", currency=coop.currency,
                        total_minor=0, idempotency_key=idempotency_key,
                        request_hash=fingerprint, created_by_id=getattr(user, "id", None),
                        created_at=now)
    db.session.add(batch)
    db.session.flush()
    payouts_lock(coop.id)
    lines, left_out = _plan_lines(coop, rail, now)
    for row in lines + left_out:
        row["batch_id"] = batch.id
    if not lines:
        problems = [f"{x['payee_name']}: {x['reason']}" for x in left_out[:MAX_REPORTED_ERRORS]]
        message = (ngettext("Nothing can be paid: %(num)d farmer is owed money but left out "
                            "(the reason is listed).",
                            "Nothing can be paid: %(num)d farmers are owed money but left out "
                            "(the reasons are listed).", len(left_out)) if left_out
                   else _("Nothing is due: no farmer is owed anything that is not already in a "
                          "batch."))
        raise Conflict(message, code="nothing_due",
                       fields={"left_out": problems} if problems else None)
    _insert_lines(batch, lines)
    if left_out:
        db.session.execute(PayoutExclusion.__table__.insert(), left_out)
    batch.total_minor = sum(line["amount_minor"] for line in lines)
    audit.record(coop.id, user, "payouts.batch_created", "payout_batch", batch.id, {},
                 {"rail": rail or "all", "lines": len(lines), "total_minor": batch.total_minor,
                  "currency": coop.currency, "left_out": len(left_out)})
    db.session.flush()
    db.session.expire(batch, ["lines", "exclusions"])
    return batch, True


def get_batch(batch_id: int) -> PayoutBatch:
    batch = db.session.get(PayoutBatch, batch_id)
    if batch is None:
        raise NotFound(_("No such payout batch."))
    return batch


def batches_page(coop: Cooperative, cursor: str | None, limit: int = PER_PAGE) -> KeysetPage:
    """A page of the coop's payout batches, newest first (keyset on the id)."""
    return keyset(select(PayoutBatch).where(PayoutBatch.coop_id == coop.id),
                  [(PayoutBatch.id, "desc")], cursor, limit)


def batches(coop: Cooperative, limit: int = 50) -> list[PayoutBatch]:
    return list(db.session.scalars(select(PayoutBatch).where(PayoutBatch.coop_id == coop.id)
                                   .order_by(PayoutBatch.id.desc()).limit(limit)))


def batch_lines_page(batch: PayoutBatch, cursor: str | None, *, status: str | None = None,
                     q: str = "", limit: int = PER_PAGE) -> KeysetPage:
    """A page of the batch's lines by id (keyset), of one status, found by part of the
    payee's name, national id or the line's number."""
    stmt = select(PayoutLine).where(PayoutLine.batch_id == batch.id)
    if status:
        stmt = stmt.where(PayoutLine.status == status)
    q = (q or "").strip()[:80]
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = [PayoutLine.payee_name.ilike(like, escape="\\"),
                 PayoutLine.national_id.ilike(like, escape="\\")]
        digits = q.lstrip("#")
        if digits.isascii() and digits.isdigit() and len(digits) < 10:
            found.append(PayoutLine.id == int(digits))
        stmt = stmt.where(or_(*found))
    return keyset(stmt, [PayoutLine.id], cursor, limit)


def batch_summary_of(batch: PayoutBatch) -> dict:
    """`batch_summary` in one query (counts and amounts per status), and the rails present
    in another: the page does not load every line to count them."""
    counts = {"pending": 0, "paid": 0, "failed": 0}
    amounts = {"pending": 0, "paid": 0, "failed": 0}
    for status, n, amount in db.session.execute(
            select(PayoutLine.status, func.count(), func.coalesce(func.sum(
                PayoutLine.amount_minor), 0)).where(PayoutLine.batch_id == batch.id)
            .group_by(PayoutLine.status)):
        counts[status], amounts[status] = int(n), int(amount)
    present = set(db.session.scalars(select(PayoutLine.rail).where(
        PayoutLine.batch_id == batch.id).distinct()))
    return {"counts": counts, "amounts": amounts,
            "rails": [r for r in PAYOUT_RAILS if r in present]}


def batch_rails(batch: PayoutBatch) -> list[str]:
    present = {line.rail for line in batch.lines}
    return [r for r in PAYOUT_RAILS if r in present]


def batch_summary(batch: PayoutBatch) -> dict:
    counts = {"pending": 0, "paid": 0, "failed": 0}
    amounts = {"pending": 0, "paid": 0, "failed": 0}
    for line in batch.lines:
        counts[line.status] += 1
        amounts[line.status] += line.amount_minor
    return {"counts": counts, "amounts": amounts}


# ---------------------------------------------------------------- bulk-payment files

def export_csv(batch: PayoutBatch, user, rail: str | None = None) -> str:
    """The bulk-payment file of the lines still waiting for the bank (paid or failed lines
    are never sent again), with the columns of `rail`'s file, or every rail with a rail
    column when none is given and the batch mixes rails. Amounts in major units with the
    currency's decimals ("1234.50")."""
    if rail in ("", None):
        rail = None
        rails = batch_rails(batch)
        if len(rails) == 1:
            rail = rails[0]
    elif rail not in PAYOUT_RAILS:
        raise ValidationFailed(_("Unknown payout rail."), code="unknown_rail",
                               fields={"rail": [_("Choose one of: %(r)s.",
                                                  r=", ".join(rail_names().values()))]})
    body, exported = write_export([line for line in batch.lines if line.status == "pending"],
                                  rail)
    if batch.exported_at is None:
        batch.exported_at = utcnow()
    audit.record(batch.coop_id, user, "payouts.batch_exported", "payout_batch", batch.id, {},
                 {"rail": rail or "all", "lines": exported})
    db.session.flush()
    return body


# ---------------------------------------------------------------- confirmations

@dataclass
class ConfirmationResult:
    paid: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


def _close_if_done(batch: PayoutBatch, now: datetime) -> None:
    if batch.status != "open":
        return
    waiting = db.session.scalar(select(func.count()).select_from(PayoutLine).where(
        PayoutLine.batch_id == batch.id, PayoutLine.status == "pending"))
    if not waiting:
        batch.status = "closed"
        batch.closed_at = now


def _check_rows(batch: PayoutBatch, rows, lines: dict) -> None:
    """Refuse the whole file if a row names a line of another batch or would turn a paid
    line into failed or the reverse."""
    errors = []
    for number, line_id, status, _ref in rows:
        line = lines.get(line_id)
        if line is None:
            errors.append(_("Row %(r)d: line %(id)d is not part of batch %(b)d.", r=number,
                            id=line_id, b=batch.id))
        elif line.status not in ("pending", status):
            errors.append(_("Row %(r)d: line %(id)d was already confirmed %(was)s; it cannot "
                            "become %(now)s.", r=number, id=line_id,
                            was=status_names()[line.status], now=status_names()[status]))
    if errors:
        refuse(errors)


def apply_confirmations(batch: PayoutBatch, user, rows: list[tuple[int, int, str, str]],
                        now: datetime | None = None) -> ConfirmationResult:
    """Record the bank's answer for each row. A paid line posts Dr farmer_payable Cr bank
    (cash lines: Cr cash) under the key `payout_line:<id>` with the bank's reference, once; a
    failed line posts nothing and its amount is due again. A line already confirmed the same
    way is left as it is (a file imported twice changes nothing). Refuses the whole file,
    writing nothing, when a row names a line of another batch, or would turn a paid line into
    failed or the reverse.

    Set-based, whatever the number of rows (a bank's file of 10,000 lines): one import at a
    time per coop (the lock), the batch's lines in one query, the ledger entries through the
    ledger's bulk writer, the lines moved by one conditional UPDATE (PostgreSQL; a thousand
    rows a statement on SQLite) of those still pending, the audit events, and the farmers'
    messages in bulk too. A file that changes nothing costs the query of its lines."""
    now = now or utcnow()
    coop = db.session.get(Cooperative, batch.coop_id)
    payouts_lock(batch.coop_id)  # one import (or batch) at a time per coop on PostgreSQL
    _be_the_writer(batch)
    # Plain rows read after the lock, not ORM objects: current, and light for 10,000 lines.
    lines = {row.id: row for row in db.session.execute(
        select(PayoutLine.id, PayoutLine.status, PayoutLine.farmer_user_id,
               PayoutLine.amount_minor, PayoutLine.currency, PayoutLine.rail)
        .where(PayoutLine.batch_id == batch.id))}
    _check_rows(batch, rows, lines)
    result = ConfirmationResult()
    wanted: dict[int, tuple[int, str, str]] = {}   # line id -> (row, status, reference)
    for number, line_id, status, ref in rows:
        if lines[line_id].status == status:
            result.unchanged.append(line_id)
        elif line_id in wanted:  # the same line twice in the rows (a file cannot have it)
            if wanted[line_id][1] != status:
                refuse([_("Row %(r)d: line %(id)d was confirmed %(was)s meanwhile.", r=number,
                          id=line_id, was=status_names()[wanted[line_id][1]])])
            result.unchanged.append(line_id)
        else:
            wanted[line_id] = (number, status, ref)
    if not wanted:
        _close_if_done(batch, now)
        return result
    # The ledger entries of the lines paid, then the lines moved with them: a payment the
    # ledger cannot make (a payable that shrank since the batch was made) refuses the file,
    # naming its row; the caller rolls back what was written.
    paid = [line_id for line_id, (_n, status, _r) in wanted.items() if status == "paid"]
    try:
        posted = ledger_bulk.post_many(
            coop, [_payout_entry(batch, lines[line_id], wanted[line_id][2])
                   for line_id in paid], user=user)
    except (ValidationFailed, Conflict) as exc:
        key = getattr(exc, "key", None) or f"payout_line:{paid[0]}"
        line_id = int(key.rpartition(":")[2])
        refuse([_("Row %(r)d: line %(id)d cannot be posted: %(e)s", r=wanted[line_id][0],
                  id=line_id, e=exc.message)])
    moved = _move_lines(wanted, posted, user, now)
    if len(moved) != len(wanted):
        # Only this import moves lines, under the lock: a line that did not move was moved
        # by something else meanwhile. Refused whole; the caller rolls the entries back.
        was = dict(db.session.execute(
            select(PayoutLine.id, PayoutLine.status)
            .where(PayoutLine.id.in_([i for i in wanted if i not in moved]))).all())
        number, line_id = min((wanted[i][0], i) for i in wanted if i not in moved)
        refuse([_("Row %(r)d: line %(id)d was confirmed %(was)s meanwhile.", r=number,
                  id=line_id, was=status_names()[was[line_id]])])
    told = []
    events = []
    for number, line_id, status, ref in rows:
        if line_id not in wanted or wanted[line_id][0] != number:
            continue  # counted as unchanged above
        line = lines[line_id]
        (result.paid if status == "paid" else result.failed).append(line_id)
        events.append((f"payouts.line_{status}", "payout_line", line_id, {"status": "pending"},
                       {"status": status, "reference": ref, "amount_minor": line.amount_minor,
                        "currency": line.currency, "farmer_id": line.farmer_user_id,
                        "rail": line.rail}))
        told.append(line_id)
    audit.record_many(batch.coop_id, user, events)
    _tell(coop, batch, told, result.failed)
    db.session.expire(batch, ["lines"])
    _close_if_done(batch, now)
    db.session.flush()
    return result


def _be_the_writer(batch: PayoutBatch) -> None:
    """SQLite: make this transaction the database's writer before the lines are read (an
    UPDATE of the batch row that changes nothing). SQLite lets one transaction write at a
    time, but reads before a transaction's first write take no lock: without this, two
    imports at once would both read the lines pending. Now the second waits for the first
    to commit, and reads the lines as it left them (PostgreSQL: the advisory lock does it)."""
    if db.session.get_bind().dialect.name != "postgresql":
        db.session.execute(text("UPDATE payout_batches SET status = status WHERE id = :id"),
                           {"id": batch.id})


def _payout_entry(batch: PayoutBatch, line, ref: str | None):
    """The ledger entry of a paid line: Dr the farmer's payable, Cr bank (cash lines: cash)."""
    return ledger_bulk.NewEntry(
        key=f"payout_line:{line.id}", kind="payout",
        memo=f"payout batch {batch.id} line {line.id} ({line.rail})",
        source=("payout_line", line.id), external_ref=ref,
        lines=[ledger.debit(ledger.farmer_payable(line.farmer_user_id), line.amount_minor),
               ledger.credit("cash" if line.rail == "cash" else "bank", line.amount_minor)])


def _move_lines(wanted: dict[int, tuple[int, str, str]], posted: dict[str, int], user,
                now: datetime) -> set[int]:
    """Mark the lines paid (with their ledger entry) or failed, with the bank's references,
    in a statement or two whatever their number, only those still pending: the ids moved."""
    rows = [(line_id, status, ref or None, posted.get(f"payout_line:{line_id}"))
            for line_id, (_n, status, ref) in wanted.items()]
    return {line_id for (line_id,) in update_rows(
        "payout_lines",
        [("id", "bigint"), ("status", "varchar(8)"), ("reference", "varchar(255)"),
         ("entry_id", "bigint")], rows,
        set_sql="status = v.status, reference = v.reference, entry_id = v.entry_id, "
                "confirmed_at = :now, confirmed_by_id = :by",
        where_sql="payout_lines.status = 'pending'",
        params={"now": now, "by": getattr(user, "id", None)},
        returning="payout_lines.id")}


TELL_TASK = "payouts.tell_confirmed"
TELL_CHUNK = 1000  # lines whose farmers one job tells


def _tell(coop: Cooperative, batch: PayoutBatch, moved: list[int], failed: list[int]) -> None:
    """Each farmer whose line was paid or failed is told by a job enqueued here, in the
    import's own transaction (committed with it, or not at all), TELL_CHUNK lines a job
    (`tell_confirmed`): a bank's file of 10,000 lines is not held under the coop's payout
    lock while 10,000 texts are rendered, and the workers write them side by side, seconds
    after the commit. The treasurers are told at once of an import with failed lines."""
    jobs.enqueue_many(TELL_TASK, [{"batch_id": batch.id, "line_ids": moved[i:i + TELL_CHUNK]}
                                  for i in range(0, len(moved), TELL_CHUNK)], coop_id=coop.id)
    if not failed:
        return
    digest = hashlib.sha256(",".join(map(str, sorted(failed))).encode()).hexdigest()[:16]
    for user_id in coop_services.staff_ids(coop.id, "treasurer"):
        messages.notify(user_id, "treasurer.import_failures",
                        event=f"payout-import:{batch.id}:{digest}", coop_id=coop.id,
                        batch=f"#{batch.id}", failed=len(failed), coop=coop.name,
                        link=f"/manage/payout-batches/{batch.id}")


def tell_confirmed(batch_id: int, line_ids: list[int]) -> list[int]:
    """The farmers of these lines told that they were paid, or that the payment failed, in
    one pass (messages.notify_many: the people in one query, the messages in bulk, sent 50 a
    job; one `now` for all, so that they share one send time and so their jobs). Read from
    the lines as confirmed (a confirmed line never changes again); once each, however often
    it runs (the messages' event keys). The ids of the messages written now."""
    batch = db.session.get(PayoutBatch, batch_id)
    if batch is None:
        return []
    coop = db.session.get(Cooperative, batch.coop_id)
    rows = db.session.execute(
        select(PayoutLine.id, PayoutLine.farmer_user_id, PayoutLine.status,
               PayoutLine.amount_minor, PayoutLine.currency, PayoutLine.rail,
               PayoutLine.reference)
        .where(PayoutLine.batch_id == batch_id, PayoutLine.id.in_(line_ids),
               PayoutLine.status.in_(("paid", "failed")))
        .order_by(PayoutLine.id)).all()
    return messages.notify_many([
        messages.Notice(row.farmer_user_id,
                        "farmer.paid" if row.status == "paid" else "farmer.payment_failed",
                        event=f"payout-line:{row.id}:{row.status}",
                        context={"amount": messages.Money(row.amount_minor, row.currency),
                                 "rail": messages.Label("rail", row.rail),
                                 "reference": row.reference or f"MINGA-{batch.id}-{row.id}",
                                 "coop": coop.name, "link": "/my/payments"})
        for row in rows], coop_id=coop.id)


def import_confirmations(batch: PayoutBatch, user, data: bytes | str) -> ConfirmationResult:
    """Parse the bank's file and apply it: all of it or nothing."""
    return apply_confirmations(batch, user, parse_confirmations(data))


def get_line(line_id: int) -> PayoutLine:
    line = db.session.get(PayoutLine, line_id)
    if line is None:
        raise NotFound(_("No such payout line."))
    return line


# ---------------------------------------------------------------- the farmer's view

@dataclass
class FarmerPayments:
    coop: Cooperative
    owed_minor: int
    on_its_way_minor: int
    lines: list[PayoutLine]

    @property
    def due_minor(self) -> int:
        return max(0, self.owed_minor - self.on_its_way_minor)


def farmer_payments(user, limit: int = 50) -> list[FarmerPayments]:
    """For each cooperative where the user is a farmer: what they are owed, how much of it is
    on its way in a batch, and their payout lines (newest first)."""
    coop_ids = farmer_coop_ids(user)
    out = []
    for coop_id in coop_ids:
        coop = db.session.get(Cooperative, coop_id)
        lines = list(db.session.scalars(
            select(PayoutLine).where(PayoutLine.coop_id == coop_id,
                                     PayoutLine.farmer_user_id == user.id)
            .order_by(PayoutLine.id.desc()).limit(limit)))
        on_way = db.session.scalar(select(func.coalesce(func.sum(PayoutLine.amount_minor), 0))
                                   .where(PayoutLine.coop_id == coop_id,
                                          PayoutLine.farmer_user_id == user.id,
                                          PayoutLine.status == "pending"))
        out.append(FarmerPayments(coop=coop,
                                  owed_minor=ledger.balance(coop,
                                                            ledger.farmer_payable(user.id)),
                                  on_its_way_minor=int(on_way or 0), lines=lines))
    return out


def mask_account(account: str) -> str:
    """Show a farmer enough of their account to recognise it: the last four characters."""
    if not account:
        return ""
    return "•••" + account[-4:] if len(account) > 4 else account


# ---------------------------------------------------------------- previews (read-only)
# What a batch or a confirmation file would do, computed as the acting functions do it and
# writing nothing: the HTML confirmation step shows them first (coop/common/confirm.py).

@dataclass(frozen=True)
class RailTotal:
    rail: str
    lines: int
    total_minor: int


@dataclass(frozen=True)
class LeftOut:
    payee: str
    rail: str
    amount_minor: int
    reason: str


@dataclass(frozen=True)
class BatchPreview:
    currency: str
    rail: str | None
    farmers: int
    rails: tuple = ()             # RailTotal per rail, in PAYOUT_RAILS order
    flagged: tuple = ()           # (payee, amount, flag) of lines capped or split
    left_out: tuple = ()          # LeftOut, at most MAX_REPORTED_ERRORS
    left_out_count: int = 0

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.rails)

    @property
    def total_minor(self) -> int:
        return sum(r.total_minor for r in self.rails)


def preview_batch(coop: Cooperative, *, rail: str | None = None,
                  now: datetime | None = None) -> BatchPreview:
    """What create_batch would pay now: lines and total per rail, the farmers left out and
    why. Refuses what it would refuse (an unknown rail, nothing due)."""
    verification.require_verified(coop)
    rail = _check_rail(rail)
    lines, left_out = _plan_lines(coop, rail, now or utcnow())
    if not lines:
        problems = [f"{x['payee_name']}: {x['reason']}" for x in left_out[:MAX_REPORTED_ERRORS]]
        message = (_("Nothing can be paid: %(n)d farmers are owed money but left out (the "
                     "reasons are listed).", n=len(left_out)) if left_out
                   else _("Nothing is due: no farmer is owed anything that is not already in a "
                          "batch."))
        raise Conflict(message, code="nothing_due",
                       fields={"left_out": problems} if problems else None)
    per_rail: dict[str, list[int]] = {}
    for line in lines:
        got = per_rail.setdefault(line["rail"], [0, 0])
        got[0] += 1
        got[1] += line["amount_minor"]
    return BatchPreview(
        currency=coop.currency, rail=rail, farmers=len({x["farmer_user_id"] for x in lines}),
        rails=tuple(RailTotal(r, *per_rail[r]) for r in PAYOUT_RAILS if r in per_rail),
        flagged=tuple((x["payee_name"], x["amount_minor"], x["flag"]) for x in lines
                      if x["flag"])[:MAX_REPORTED_ERRORS],
        left_out=tuple(LeftOut(x["payee_name"], x["rail"], x["amount_minor"], x["reason"])
                       for x in left_out[:MAX_REPORTED_ERRORS]),
        left_out_count=len(left_out))


@dataclass(frozen=True)
class ConfirmedLine:
    line_id: int
    payee: str
    rail: str
    amount_minor: int
    reference: str


@dataclass(frozen=True)
class ConfirmationsPreview:
    batch_id: int
    currency: str
    paid: tuple = ()              # ConfirmedLine to be marked paid (posted to the ledger)
    failed: tuple = ()            # ConfirmedLine to be marked failed (due again)
    unchanged: int = 0            # rows already recorded the same way

    @property
    def paid_minor(self) -> int:
        return sum(x.amount_minor for x in self.paid)

    @property
    def failed_minor(self) -> int:
        return sum(x.amount_minor for x in self.failed)


def preview_confirmations(batch: PayoutBatch, data: bytes | str) -> ConfirmationsPreview:
    """What import_confirmations would record for this file, refusing what it would refuse;
    writes nothing."""
    return preview_rows(batch, parse_confirmations(data))


def preview_rows(batch: PayoutBatch, rows: list[tuple[int, int, str, str]]
                 ) -> ConfirmationsPreview:
    """What apply_confirmations would record for these rows (a file's, or one cash receipt);
    writes nothing."""
    lines = {row.id: row for row in db.session.execute(
        select(PayoutLine.id, PayoutLine.status, PayoutLine.payee_name, PayoutLine.rail,
               PayoutLine.amount_minor)
        .where(PayoutLine.batch_id == batch.id))}
    _check_rows(batch, rows, lines)
    paid, failed, unchanged, seen = [], [], 0, set()
    for _number, line_id, status, ref in rows:
        line = lines[line_id]
        if line.status == status or line_id in seen:
            unchanged += 1
            continue
        seen.add(line_id)
        (paid if status == "paid" else failed).append(
            ConfirmedLine(line_id, line.payee_name, line.rail, line.amount_minor, ref or ""))
    return ConfirmationsPreview(batch_id=batch.id, currency=batch.currency, paid=tuple(paid),
                                failed=tuple(failed), unchanged=unchanged)
