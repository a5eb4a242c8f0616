"""The cooperative's double-entry ledger: every money movement goes through `post`.

Rules it keeps: each entry balances (debits = credits, integer minor units, one currency);
an idempotency key is unique per cooperative (the same key with the same postings returns the
first entry, with other postings it is refused); posted entries are never edited, a reversal
entry corrects them (once); a card hold is a pending entry, posted on capture, voided on
cancel; accounts that may not go negative never do."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask_babel import gettext as _
from sqlalchemy import BigInteger, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.idempotency import fingerprint, replay_or_refuse
from ..common.paging import PER_PAGE, KeysetPage, keyset
from ..extensions import db
from .models import LedgerAccount, LedgerEntry, LedgerPosting

# code: (name, kind, may go negative). Per-person accounts add ":<user id>" to the prefix.
CHART = {
    "bank": ("Bank", "asset", True),
    "cash": ("Cash at collection points", "asset", True),
    "stripe_clearing": ("Stripe clearing (captured, not yet paid out)", "asset", False),
    "card_holds": ("Card holds (authorised, pending)", "asset", False),
    "farmer_advances": ("Advances to farmers", "asset", False),
    "buyer_deposits": ("Buyer deposits (paid, goods not yet received)", "liability", False),
    "card_holds_offset": ("Card holds owed to buyers if captured", "liability", False),
    "commission_income": ("Commission income", "income", False),
    "card_fees": ("Card processing fees", "expense", False),
    "operating_costs": ("Operating costs", "expense", False),
    "premium_fund": ("Social premium fund", "liability", False),
    "reserve_fund": ("Reserve for the protection of contributions", "equity", False),
    "education_fund": ("Education fund", "equity", False),
    "solidarity_fund": ("Solidarity fund", "equity", False),
    "accumulated_losses": ("Losses carried forward", "equity", True),
    "current_surplus": ("Surplus of the year being closed", "equity", True),
    "unsold_returns": ("Refunds owed to buyers", "liability", False),
}
PERSONAL = {
    "farmer_payable": ("Owed to farmer", "liability", False),
    "share_capital": ("Member share capital", "equity", False),
}


@dataclass(frozen=True)
class Line:
    account: str  # code, e.g. "bank" or "farmer_payable:12"
    amount_minor: int  # > 0 debit, < 0 credit


def debit(account: str, amount: int) -> Line:
    return Line(account, int(amount))


def credit(account: str, amount: int) -> Line:
    return Line(account, -int(amount))


def farmer_payable(user_id: int) -> str:
    return f"farmer_payable:{user_id}"


def share_capital(user_id: int) -> str:
    return f"share_capital:{user_id}"


# ---------------------------------------------------------------- accounts

def account(coop, code: str) -> LedgerAccount:
    """The coop's account with this code, opened on first use (chart or per-person)."""
    row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.coop_id == coop.id,
                                                        LedgerAccount.code == code))
    if row is not None:
        return row
    row = LedgerAccount(**account_fields(coop, code))
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # opened at the same moment by another request
        row = db.session.scalar(select(LedgerAccount).where(
            LedgerAccount.coop_id == coop.id, LedgerAccount.code == code))
    return row


def account_fields(coop, code: str) -> dict:
    """The columns of a new account with this code: a chart code, or a per-person code
    (`farmer_payable:<user id>`, ...). Refuses any other code (unknown_account)."""
    prefix, _sep, person = code.partition(":")
    if code in CHART:
        name, kind, negative = CHART[code]
        user_id = None
    elif prefix in PERSONAL and person.isdigit():
        name, kind, negative = PERSONAL[prefix]
        user_id = int(person)
    else:
        raise ValidationFailed(f"unknown ledger account {code!r}", code="unknown_account")
    return {"coop_id": coop.id, "code": code, "name": name, "kind": kind,
            "currency": coop.currency, "may_go_negative": negative, "user_id": user_id,
            "balance_minor": 0}


def accounts(coop) -> list[LedgerAccount]:
    return list(db.session.scalars(select(LedgerAccount).where(LedgerAccount.coop_id == coop.id)
                                   .order_by(LedgerAccount.code)))


def balance(coop, code: str) -> int:
    """Normal-side balance of an account (0 if never used)."""
    row = db.session.scalar(select(LedgerAccount).where(LedgerAccount.coop_id == coop.id,
                                                        LedgerAccount.code == code))
    return row.normal_balance if row else 0


# ---------------------------------------------------------------- posting

def entry_fingerprint(lines: list[Line], status: str) -> str:
    """What a repeat with the same key must match: the status and the lines, in any order."""
    return fingerprint([status, sorted((line.account, line.amount_minor) for line in lines)])


def check_key(key: str) -> None:
    """Refuses a ledger idempotency key that is empty or longer than 255 characters."""
    if not key or len(key) > 255:
        raise ValidationFailed("ledger idempotency key must be 1-255 characters")


def check_lines(lines: list[Line]) -> None:
    """Refuses an entry of fewer than two non-zero lines, non-integer amounts, or debits
    that do not equal credits (`lines` already without its zero lines)."""
    if len(lines) < 2:
        raise ValidationFailed("a ledger entry needs at least two non-zero lines",
                               code="unbalanced_entry")
    if any(not isinstance(line.amount_minor, int) or isinstance(line.amount_minor, bool)
           for line in lines):
        raise ValidationFailed("ledger amounts are integers in minor units")
    if sum(line.amount_minor for line in lines) != 0:
        raise ValidationFailed(_("A ledger entry must balance: debits equal credits."),
                               code="unbalanced_entry")


def post(coop, *, key: str, kind: str, lines: list[Line], memo: str = "", user=None,
         status: str = "posted", source: tuple[str, int] | None = None,
         external_ref: str | None = None, pending_of: LedgerEntry | None = None,
         reverses: LedgerEntry | None = None, effective_on=None,
         document: int | None = None) -> LedgerEntry:
    """Write one balanced entry (`document`: the invoice or credit note it belongs to). Returns the existing entry when `key` was used before with
    the same lines (nothing is written twice); refuses a reused key with other lines, an
    unbalanced or empty entry, a zero line, and any posting that would take an account that
    may not go negative below zero."""
    check_key(key)
    lines = [line for line in lines if line.amount_minor != 0]
    fingerprint = entry_fingerprint(lines, status)
    existing = db.session.scalar(select(LedgerEntry).where(LedgerEntry.coop_id == coop.id,
                                                           LedgerEntry.idempotency_key == key))
    if existing is not None:
        return replay_or_refuse(existing, existing.fingerprint == fingerprint,
                                _("This idempotency key was used for a different entry."))
    check_lines(lines)
    entry = LedgerEntry(coop_id=coop.id, idempotency_key=key, fingerprint=fingerprint,
                        kind=kind, memo=(memo or "")[:255], status=status,
                        currency=coop.currency, created_by_id=getattr(user, "id", None),
                        source_type=source[0] if source else None,
                        source_id=source[1] if source else None, external_ref=external_ref,
                        document_id=document, pending_id=pending_of.id if pending_of else None,
                        reverses_id=reverses.id if reverses else None)
    if effective_on is not None:
        entry.effective_on = effective_on
    try:
        with db.session.begin_nested():
            db.session.add(entry)
            db.session.flush()
    except IntegrityError:
        db.session.expire_all()
        existing = db.session.scalar(select(LedgerEntry).where(
            LedgerEntry.coop_id == coop.id, LedgerEntry.idempotency_key == key))
        if existing is not None and existing.fingerprint == fingerprint:
            return existing
        if reverses is not None:
            raise Conflict(_("This entry was already reversed."), code="already_reversed")
        raise ValidationFailed(_("This idempotency key was used for a different entry."),
                               code="idempotency_key_reused")
    resolved = [(account(coop, line.account), line.amount_minor) for line in lines]
    db.session.execute(insert(LedgerPosting.__table__).values([
        {"entry_id": entry.id, "account_id": acc.id, "amount_minor": amount}
        for acc, amount in resolved]))
    if status == "posted":
        _apply(resolved)
    db.session.expire(entry, ["postings"])
    return entry


def _apply(resolved: list[tuple[LedgerAccount, int]]) -> None:
    """Move the cached balances with atomic increments; refuse an overdrawn account."""
    totals: dict[int, tuple[LedgerAccount, int]] = {}
    for acc, amount in resolved:
        prev = totals.get(acc.id, (acc, 0))[1]
        totals[acc.id] = (acc, prev + amount)
    for acc_id, (acc, amount) in sorted(totals.items()):
        stmt = update(LedgerAccount).where(LedgerAccount.id == acc_id)
        if not acc.may_go_negative:
            if acc.debit_normal and amount < 0:
                stmt = stmt.where(LedgerAccount.balance_minor + amount >= 0)
            elif not acc.debit_normal and amount > 0:
                stmt = stmt.where(LedgerAccount.balance_minor + amount <= 0)
        result = db.session.execute(
            stmt.values(balance_minor=LedgerAccount.balance_minor + amount)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise Conflict(_("Not enough in %(account)s for this movement.", account=acc.name),
                           code="insufficient_balance")
        db.session.expire(acc, ["balance_minor"])


def hold(coop, *, key: str, amount: int, source: tuple[str, int], user=None,
         memo: str = "") -> LedgerEntry:
    """A card hold as a pending entry: it counts in no posted balance until captured."""
    return db.session.get(LedgerEntry, hold_entry(coop, key=key, amount=amount, source=source,
                                                  user=user, memo=memo))


def hold_entry(coop, *, key: str, amount: int, source: tuple[str, int], user=None,
               memo: str = "") -> int:
    """`hold` without loading objects, for the order path: the entry's id. The same rules
    as `post` (a key used with the same lines returns the first entry, with others it is
    refused; a race on the key is settled by the unique constraint, ON CONFLICT DO NOTHING),
    in two statements: the entry, then its postings INSERTed from the coop's two accounts
    (opened on the coop's first hold). A pending entry moves no cached balance."""
    from ..common.inserts import insert_ignore
    check_key(key)
    lines = [debit("card_holds", amount), credit("card_holds_offset", amount)]
    check_lines([line for line in lines if line.amount_minor != 0])
    wanted = entry_fingerprint(lines, "pending")
    entry_id = insert_ignore(LedgerEntry.__table__, {
        "coop_id": coop.id, "idempotency_key": key, "fingerprint": wanted,
        "kind": "card_hold", "memo": (memo or "")[:255], "status": "pending",
        "currency": coop.currency, "created_by_id": getattr(user, "id", None),
        "source_type": source[0], "source_id": source[1]}, ["coop_id", "idempotency_key"])
    if entry_id is None:  # the key was used before (or just now, by another request)
        entry_id, used = db.session.execute(select(LedgerEntry.id, LedgerEntry.fingerprint)
                                            .where(LedgerEntry.coop_id == coop.id,
                                                   LedgerEntry.idempotency_key == key)).one()
        return replay_or_refuse(entry_id, used == wanted,
                                _("This idempotency key was used for a different entry."))
    amounts = {line.account: line.amount_minor for line in lines}
    table = LedgerPosting.__table__
    written = len(db.session.execute(_hold_postings_statement(), {
        "b_entry_id": entry_id, "b_coop_id": coop.id, "b_debit": amounts["card_holds"],
        "b_credit": amounts["card_holds_offset"]}).all())
    if written != len(amounts):  # the coop's first hold: open its accounts, post the rest
        posted = set(db.session.scalars(
            select(LedgerAccount.code).join(table, table.c.account_id == LedgerAccount.id)
            .where(table.c.entry_id == entry_id)))
        db.session.execute(insert(table).values([
            {"entry_id": entry_id, "account_id": account(coop, code).id, "amount_minor": value}
            for code, value in amounts.items() if code not in posted]))
    return entry_id


@functools.cache
def _hold_postings_statement():
    """hold_entry's two postings, INSERTed from the coop's two hold accounts: built once per
    process with bound parameters (every order runs it; a built statement keeps its cache
    key), on the tables' columns (Core, no ORM layer per execution)."""
    accounts, table = LedgerAccount.__table__.c, LedgerPosting.__table__
    return insert(table).from_select(
        ["entry_id", "account_id", "amount_minor"],
        select(bindparam("b_entry_id", type_=BigInteger), accounts.id,
               case((accounts.code == "card_holds", bindparam("b_debit", type_=BigInteger)),
                    (accounts.code == "card_holds_offset",
                     bindparam("b_credit", type_=BigInteger))))
        .where(accounts.coop_id == bindparam("b_coop_id"),
               accounts.code.in_(["card_holds", "card_holds_offset"]))
        .order_by(accounts.code)).returning(table.c.id)


def settle_pending(coop, pending: LedgerEntry, *, outcome: str) -> None:
    """Mark a pending hold posted (captured) or voided (released). Once only."""
    if outcome not in ("posted", "voided"):
        raise ValueError(outcome)
    result = db.session.execute(update(LedgerEntry).where(LedgerEntry.id == pending.id,
                                                          LedgerEntry.status == "pending")
                                .values(status=outcome)
                                .execution_options(synchronize_session=False))
    db.session.expire(pending, ["status"])
    if result.rowcount != 1 and pending.status != outcome:
        raise Conflict(_("This hold was already settled."), code="hold_settled")
    # A hold's lines never enter the posted balances, whatever its outcome: what was
    # captured is posted by its own capture entry, for the amount actually taken (a partial
    # capture takes less than was held). The hold stays as the record of the authorisation.


def settle_pending_many(coop, source_type: str, source_ids, *, outcome: str) -> int:
    """`settle_pending` for the pending card holds of many sources at once (a settlement
    chunk's orders): one UPDATE; those already settled are left as they are. Returns how
    many were marked."""
    if outcome not in ("posted", "voided"):
        raise ValueError(outcome)
    ids = sorted(set(source_ids))
    if not ids:
        return 0
    result = db.session.execute(
        update(LedgerEntry).where(LedgerEntry.coop_id == coop.id,
                                  LedgerEntry.source_type == source_type,
                                  LedgerEntry.source_id.in_(ids),
                                  LedgerEntry.kind.in_(MEMO_KINDS),
                                  LedgerEntry.status == "pending")
        .values(status=outcome).execution_options(synchronize_session=False))
    return result.rowcount


# Card holds are memorandum entries: pending while the card is held, then marked posted
# (captured) or voided (released). Their lines count in no posted balance.
MEMO_KINDS = ("card_hold",)


def pending_holds(coop) -> int:
    """What buyers' cards hold for this coop right now (pending card holds)."""
    return int(db.session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount_minor), 0))
        .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerEntry.coop_id == coop.id, LedgerEntry.status == "pending",
               LedgerEntry.kind.in_(MEMO_KINDS), LedgerAccount.code == "card_holds")) or 0)


def pending_for(coop, source: tuple[str, int]) -> list[LedgerEntry]:
    return list(db.session.scalars(select(LedgerEntry).where(
        LedgerEntry.coop_id == coop.id, LedgerEntry.source_type == source[0],
        LedgerEntry.source_id == source[1], LedgerEntry.status == "pending")))


# Entries a treasurer may reverse from the ledger page. The others belong to a domain
# (an intake, a payout line, a capture...) whose own records must change with them, so they
# are corrected there (a refund, a failed line), never by reversing the entry alone.
MANUAL_KINDS = {"operating_cost", "premium_spend", "manual"}


def reverse(coop, entry: LedgerEntry, *, key: str, user=None, memo: str = "",
            allow_domain: bool = False) -> LedgerEntry:
    """A new entry with every line negated. An entry is reversed at most once; a reversal
    itself, a pending or a voided entry cannot be reversed; an entry made by a domain
    (intake, payout, capture...) only by that domain (`allow_domain`)."""
    if entry.coop_id != coop.id:
        raise NotFound(_("No such entry."))
    if entry.kind not in MANUAL_KINDS and not allow_domain:
        raise Conflict(_("This entry belongs to a delivery, order or payout: correct it there."),
                       code="domain_entry")
    if entry.status != "posted":
        raise Conflict(_("Only posted entries can be reversed."), code="not_posted")
    if entry.reverses_id is not None:
        raise Conflict(_("A reversal cannot itself be reversed; post a new entry."),
                       code="reversal_of_reversal")
    already = db.session.scalar(select(LedgerEntry).where(LedgerEntry.reverses_id == entry.id))
    if already is not None:
        if already.idempotency_key == key:
            return already
        raise Conflict(_("This entry was already reversed."), code="already_reversed")
    lines = [Line(p.account.code, -p.amount_minor) for p in entry.postings]
    return post(coop, key=key, kind="reversal", lines=lines, user=user, reverses=entry,
                memo=memo or f"reversal of entry {entry.id}",
                source=(entry.source_type, entry.source_id) if entry.source_type else None)


def get_entry(coop, entry_id: int) -> LedgerEntry:
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None or entry.coop_id != coop.id:
        raise NotFound(_("No such entry."))
    return entry


def entries(coop, limit: int = 100, before_id: int | None = None) -> list[LedgerEntry]:
    stmt = select(LedgerEntry).where(LedgerEntry.coop_id == coop.id) \
        .order_by(LedgerEntry.id.desc()).limit(limit)
    if before_id:
        stmt = stmt.where(LedgerEntry.id < before_id)
    return list(db.session.scalars(stmt))


def entries_page(coop, cursor: str | None, *, kind: str | None = None,
                 account: str | None = None, since=None, until=None,
                 before_id: int | None = None, limit: int = PER_PAGE) -> KeysetPage:
    """A page of the coop's entries, newest first (keyset on the id): of one kind, posting
    to one account (a code of the chart; a per-person code such as `farmer_payable` means
    anyone's), made from `since` to `until` (dates, in UTC) inclusive."""
    stmt = select(LedgerEntry).where(LedgerEntry.coop_id == coop.id)
    if kind:
        stmt = stmt.where(LedgerEntry.kind == kind)
    if account:
        stmt = stmt.where(LedgerEntry.id.in_(
            select(LedgerPosting.entry_id).join(LedgerAccount,
                                                LedgerAccount.id == LedgerPosting.account_id)
            .where(LedgerAccount.coop_id == coop.id,
                   or_(LedgerAccount.code == account,
                       LedgerAccount.code.like(f"{account}:%")))))
    if since:
        stmt = stmt.where(LedgerEntry.created_at >= datetime.combine(
            since, datetime.min.time(), timezone.utc))
    if until:
        stmt = stmt.where(LedgerEntry.created_at < datetime.combine(
            until + timedelta(days=1), datetime.min.time(), timezone.utc))
    if before_id:
        stmt = stmt.where(LedgerEntry.id < before_id)
    return keyset(stmt, [(LedgerEntry.id, "desc")], cursor, limit)


# ---------------------------------------------------------------- reports and checks

def trial_balance(coop) -> dict:
    """Every account's posted balance (debits positive), and whether debits equal credits."""
    rows = accounts(coop)
    debits = sum(a.balance_minor for a in rows if a.balance_minor > 0)
    credits = -sum(a.balance_minor for a in rows if a.balance_minor < 0)
    return {"currency": coop.currency, "debits_minor": debits, "credits_minor": credits,
            "balanced": debits == credits, "accounts": rows, "names": account_names(rows),
            "pending_holds_minor": pending_holds(coop)}


PERSONAL_PREFIXES = ("farmer_payable", "share_capital")


def trial_balance_summary(coop) -> dict:
    """The trial balance as a page shows it: the coop's own accounts one by one, and the
    per-person accounts (one per farmer or member) summed per kind, with how many there are.
    Two queries whatever the number of people."""
    from ..common.labels import label
    own = list(db.session.scalars(select(LedgerAccount).where(
        LedgerAccount.coop_id == coop.id, LedgerAccount.user_id.is_(None))
        .order_by(LedgerAccount.code)))
    prefix = case(*[(LedgerAccount.code.like(f"{p}:%"), p) for p in PERSONAL_PREFIXES],
                  else_=LedgerAccount.code)
    positive = func.sum(case((LedgerAccount.balance_minor > 0, LedgerAccount.balance_minor),
                             else_=0))
    negative = func.sum(case((LedgerAccount.balance_minor < 0, -LedgerAccount.balance_minor),
                             else_=0))
    grouped = db.session.execute(
        select(prefix, func.count(), positive, negative)
        .where(LedgerAccount.coop_id == coop.id, LedgerAccount.user_id.is_not(None))
        .group_by(prefix).order_by(prefix)).all()
    rows = [{"name": label(a.code, "account"), "debit_minor": max(a.balance_minor, 0),
             "credit_minor": max(-a.balance_minor, 0), "people": None} for a in own]
    rows += [{"name": label(code, "account"), "debit_minor": int(debit or 0),
              "credit_minor": int(credit or 0), "people": int(n)}
             for code, n, debit, credit in grouped]
    debits = sum(r["debit_minor"] for r in rows)
    credits = sum(r["credit_minor"] for r in rows)
    return {"currency": coop.currency, "debits_minor": debits, "credits_minor": credits,
            "balanced": debits == credits, "rows": rows,
            "pending_holds_minor": pending_holds(coop)}


def entry_account_names(entries: list[LedgerEntry]) -> dict[int, str]:
    """account id -> name for the accounts the entries post to (one query for the people)."""
    return account_names(list({p.account.id: p.account for e in entries
                                for p in e.postings}.values()))


def account_names(rows: list[LedgerAccount]) -> dict[int, str]:
    """account id -> its name in the reader's language; a per-person account with the
    person's name ("Owed to farmer — Ana Pérez"). One query for the people."""
    from ..auth.models import User
    from ..common.labels import label
    people = {a.user_id for a in rows if a.user_id}
    names = dict(db.session.execute(select(User.id, User.name).where(
        User.id.in_(people))).all()) if people else {}
    return {a.id: (f"{label(a.code, 'account')} — {names.get(a.user_id, '')}" if a.user_id
                   else label(a.code, "account")) for a in rows}


def recomputed_balances(coop_id: int | None = None) -> dict[int, int]:
    """account id -> sum of its postings in posted entries (from scratch, not the cache)."""
    stmt = (select(LedgerPosting.account_id, func.sum(LedgerPosting.amount_minor))
            .join(LedgerEntry, LedgerEntry.id == LedgerPosting.entry_id)
            .where(LedgerEntry.status == "posted", LedgerEntry.kind.not_in(MEMO_KINDS))
            .group_by(LedgerPosting.account_id))
    if coop_id is not None:
        stmt = stmt.where(LedgerEntry.coop_id == coop_id)
    return {acc: int(total) for acc, total in db.session.execute(stmt)}


def check() -> list[str]:
    """Problems found: cached balances that differ from the postings, entries that do not
    balance, accounts below zero that may not be. Empty when the ledger is sound."""
    problems = []
    sums = recomputed_balances()
    for acc in db.session.scalars(select(LedgerAccount).order_by(LedgerAccount.id)):
        expected = sums.get(acc.id, 0)
        if acc.balance_minor != expected:
            problems.append(f"coop {acc.coop_id} account {acc.code}: stored {acc.balance_minor}"
                            f" but postings sum to {expected}")
        if not acc.may_go_negative and acc.normal_balance < 0:
            problems.append(f"coop {acc.coop_id} account {acc.code} is negative "
                            f"({acc.normal_balance})")
    unbalanced = db.session.execute(
        select(LedgerPosting.entry_id, func.sum(LedgerPosting.amount_minor))
        .group_by(LedgerPosting.entry_id)
        .having(func.sum(LedgerPosting.amount_minor) != 0)).all()
    for entry_id, total in unbalanced:
        problems.append(f"entry {entry_id} does not balance (off by {total})")
    return problems
