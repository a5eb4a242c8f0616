"""The ledger's read side for the other domains: balances, sums through an account, entries
by external reference, the year's income and expenses, patronage. Nobody outside
`coop.ledger` imports the ledger's models; they ask here.

Set-based as the callers' queries were: a function that another domain's query needs inside
its own statement (a correlated sum, a subquery of balances) returns a SQL expression, not
rows, so no page runs one query per row. Where a caller must leave out entries its own
table already claims, it passes `unless`: a function of the entry's (id, external_ref)
columns returning a condition (e.g. `EXISTS` a statement line matched to it)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from .models import LedgerAccount, LedgerEntry, LedgerPosting

Unless = Callable[..., object] | None


def _unless(unless: Unless) -> list:
    return [unless(LedgerEntry.id, LedgerEntry.external_ref)] if unless is not None else []


# ---------------------------------------------------------------- accounts and balances

def account_id(coop, code: str) -> int | None:
    """The id of the coop's account with this code, None if it was never used."""
    return db.session.scalar(select(LedgerAccount.id).where(LedgerAccount.coop_id == coop.id,
                                                            LedgerAccount.code == code))


def debit_balance(coop, code: str) -> int:
    """The account's cached balance as debits minus credits (0 if never used)."""
    row = db.session.scalar(select(LedgerAccount.balance_minor).where(
        LedgerAccount.coop_id == coop.id, LedgerAccount.code == code))
    return int(row or 0)


def payable_balances(coop):
    """A subquery of every farmer_payable account of the coop: columns `user_id` and
    `balance_minor` (debits minus credits: negative while the coop owes the farmer), for
    the caller to join in one statement."""
    return (select(LedgerAccount.user_id.label("user_id"),
                   LedgerAccount.balance_minor.label("balance_minor"))
            .where(LedgerAccount.coop_id == coop.id,
                   LedgerAccount.code.startswith("farmer_payable:"))
            .subquery())


# ---------------------------------------------------------------- entries

def entries_by_id(ids) -> dict:
    """entry id -> entry, for the given ids (one query)."""
    ids = list(ids)
    if not ids:
        return {}
    return {e.id: e for e in db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.id.in_(ids)))}


def entry_id_by_key(coop, key: str) -> int | None:
    """The id of the coop's entry written with this idempotency key, if any."""
    return db.session.scalar(select(LedgerEntry.id).where(
        LedgerEntry.coop_id == coop.id, LedgerEntry.idempotency_key == key))


def sum_on_account(entry_id: int, account_id: int | None) -> int:
    """What one entry moved through one account (debits positive)."""
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
                                 .where(LedgerPosting.entry_id == entry_id,
                                        LedgerPosting.account_id == account_id)) or 0)


def posted_sum_by_ref(coop, external_ref, account_id: int):
    """A correlated scalar subquery: what posted entries whose external_ref equals
    `external_ref` (a column of the caller's row) moved through the account."""
    # Correlated lookups driven by the (coop_id, external_ref) index: no plan depends on
    # table statistics (an UPDATE ... FROM an aggregate went N x N on PostgreSQL right
    # after a bulk load). "+ 0" keeps SQLite off the account_id index (N x N as well).
    return (select(func.sum(LedgerPosting.amount_minor))
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(LedgerEntry.coop_id == coop.id,
                   LedgerEntry.external_ref == external_ref,
                   LedgerEntry.status == "posted",
                   LedgerPosting.account_id + 0 == account_id)
            .scalar_subquery())


def external_refs_among(coop, refs, kinds) -> set[str]:
    """Those of `refs` that the coop's entries of these kinds name as their external
    reference (one query)."""
    refs = [r for r in set(refs) if r]
    if not refs:
        return set()
    return set(db.session.scalars(select(LedgerEntry.external_ref).where(
        LedgerEntry.coop_id == coop.id, LedgerEntry.external_ref.in_(refs),
        LedgerEntry.kind.in_(list(kinds)))))


def unreferenced_through(coop, account_id: int, excluding_ids) -> list[tuple]:
    """Posted entries through the account with no external reference, not a card fee, and
    not among `excluding_ids` (a select of entry ids): [(id, effective_on, amount)]."""
    return db.session.execute(
        select(LedgerEntry.id, LedgerEntry.effective_on, func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
               LedgerEntry.external_ref.is_(None), LedgerEntry.kind != "card_fee",
               LedgerPosting.account_id == account_id,
               LedgerEntry.id.notin_(excluding_ids))
        .group_by(LedgerEntry.id, LedgerEntry.effective_on)).all()


def first_by_ref_through(coop, external_ref: str, account_id: int,
                         unless: Unless = None) -> int | None:
    """The oldest posted entry with this external reference that moved the account."""
    return db.session.scalar(
        select(LedgerEntry.id).join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
               LedgerEntry.external_ref == external_ref,
               LedgerPosting.account_id == account_id, *_unless(unless))
        .order_by(LedgerEntry.id).limit(1))


def by_refs_through(coop, refs, account_id: int, unless: Unless = None) -> list[tuple]:
    """Posted entries whose external reference is one of `refs` and that moved the account:
    [(id, external_ref, amount through the account)], oldest first. One query per thousand
    references, whatever the number of entries (a statement's lines matched in bulk)."""
    refs = sorted(set(refs))
    out: list[tuple] = []
    for start in range(0, len(refs), 1000):
        out += db.session.execute(
            select(LedgerEntry.id, LedgerEntry.external_ref,
                   func.sum(LedgerPosting.amount_minor))
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
                   LedgerEntry.external_ref.in_(refs[start:start + 1000]),
                   LedgerPosting.account_id == account_id, *_unless(unless))
            .group_by(LedgerEntry.id, LedgerEntry.external_ref)).all()
    return sorted((int(i), ref, int(amount)) for i, ref, amount in out)


def through_between(coop, account_id: int, lo: datetime, hi: datetime, amounts,
                    unless: Unless = None) -> list[tuple]:
    """Posted entries effective in [lo, hi] whose movement through the account is one of
    `amounts`: [(id, effective_on, kind, amount)]."""
    return db.session.execute(
        select(LedgerEntry.id, LedgerEntry.effective_on, LedgerEntry.kind,
               func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
               LedgerEntry.effective_on >= lo, LedgerEntry.effective_on <= hi,
               LedgerPosting.account_id == account_id, *_unless(unless))
        .group_by(LedgerEntry.id, LedgerEntry.effective_on, LedgerEntry.kind)
        .having(func.sum(LedgerPosting.amount_minor).in_(amounts))).all()


def referenced_through(coop, account_id: int, start: datetime, end: datetime,
                       unless: Unless = None, limit: int | None = None) -> list[tuple]:
    """Posted entries effective in [start, end) that name an outside object (external_ref)
    and moved the account: [(entry, amount through it)], oldest first."""
    stmt = (select(LedgerEntry, func.sum(LedgerPosting.amount_minor))
            .join(LedgerPosting, LedgerPosting.entry_id == LedgerEntry.id)
            .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "posted",
                   LedgerEntry.external_ref.is_not(None),
                   LedgerEntry.effective_on >= start, LedgerEntry.effective_on < end,
                   LedgerPosting.account_id == account_id, *_unless(unless))
            .group_by(LedgerEntry.id).order_by(LedgerEntry.id))
    if limit:
        stmt = stmt.limit(limit)
    return [(entry, int(amount)) for entry, amount in db.session.execute(stmt)]


def last_debits(coop, kind: str, code: str, limit: int) -> list[int]:
    """The debits to the account by the coop's latest `limit` entries of this kind."""
    return list(db.session.scalars(
        select(LedgerPosting.amount_minor).join(LedgerEntry, LedgerPosting.entry_id
                                                == LedgerEntry.id)
        .join(LedgerAccount, LedgerPosting.account_id == LedgerAccount.id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.kind == kind,
               LedgerAccount.code == code, LedgerPosting.amount_minor > 0)
        .order_by(LedgerEntry.id.desc()).limit(limit)))


# ---------------------------------------------------------------- a year, a period

def income_and_expense_sums(coop, lo: datetime, hi: datetime, excluding_kinds) -> list[tuple]:
    """Income and expense accounts' movement in [lo, hi), entries of `excluding_kinds` left
    out: [(code, name, kind, debits minus credits)] by code."""
    return db.session.execute(
        select(LedgerAccount.code, LedgerAccount.name, LedgerAccount.kind,
               func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .where(LedgerAccount.coop_id == coop.id, LedgerAccount.kind.in_(("income", "expense")),
               LedgerEntry.status == "posted", LedgerEntry.effective_on >= lo,
               LedgerEntry.effective_on < hi, LedgerEntry.kind.notin_(excluding_kinds))
        .group_by(LedgerAccount.code, LedgerAccount.name, LedgerAccount.kind)
        .order_by(LedgerAccount.code)).all()


def patronage(coop, lo: datetime, hi: datetime) -> dict[int, int]:
    """user id -> value supplied in [lo, hi): what intake entries credited to the member's
    farmer_payable, less reversals of such entries (whenever they were posted)."""
    intake = aliased(LedgerEntry)
    rows = db.session.execute(
        select(LedgerAccount.user_id, func.sum(LedgerPosting.amount_minor))
        .join(LedgerPosting, LedgerPosting.account_id == LedgerAccount.id)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .outerjoin(intake, intake.id == LedgerEntry.reverses_id)
        .where(LedgerAccount.coop_id == coop.id, LedgerAccount.code.like("farmer_payable:%"),
               LedgerEntry.status == "posted",
               or_(and_(LedgerEntry.kind == "intake", LedgerEntry.effective_on >= lo,
                        LedgerEntry.effective_on < hi),
                   # a reversal counts in the year of the intake it corrects
                   and_(intake.kind == "intake", intake.effective_on >= lo,
                        intake.effective_on < hi)))
        .group_by(LedgerAccount.user_id)).all()
    return {int(uid): -int(total) for uid, total in rows if uid is not None and -int(total) > 0}


def fund_movements(coop, code: str, start: datetime, end: datetime) -> tuple:
    """A credit-normal fund in [start, end): (received, spent, balance at `end`) — a
    reversal counts against what it reverses. One query."""
    reversal = LedgerEntry.reverses_id.isnot(None)
    during = and_(LedgerEntry.effective_on >= start, LedgerEntry.effective_on < end)
    amount = LedgerPosting.amount_minor
    return db.session.execute(
        select(func.sum(case((and_(during, ~reversal, amount < 0), -amount),
                             (and_(during, reversal, amount > 0), -amount), else_=0)),
               func.sum(case((and_(during, ~reversal, amount > 0), amount),
                             (and_(during, reversal, amount < 0), amount), else_=0)),
               func.sum(-amount))
        .select_from(LedgerPosting)
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerAccount.coop_id == coop.id, LedgerAccount.code == code,
               LedgerEntry.status == "posted", LedgerEntry.effective_on < end)).one()


def payables_owed(coop_id: int):
    """Two scalar subqueries for a dashboard's one SELECT: how many farmers the coop owes
    money to (their payable accounts in credit), and how much in all (minor units)."""
    owed = (LedgerAccount.coop_id == coop_id) & LedgerAccount.code.like("farmer_payable:%") \
        & (LedgerAccount.balance_minor < 0)
    return (select(func.count()).select_from(LedgerAccount).where(owed).scalar_subquery(),
            select(func.coalesce(-func.sum(LedgerAccount.balance_minor), 0)).where(owed)
            .scalar_subquery())
