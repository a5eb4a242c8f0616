"""The period's report: what Stripe, the bank and the ledger disagree on between two dates,
on the page and as a CSV (every difference, streamed). Reads only."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, select

from ..common.errors import ValidationFailed
from ..common.paging import PER_PAGE, KeysetPage, Page, keyset, paginate
from ..extensions import db
from ..ledger import queries as ledger_queries
from .bank_statement import _not_on_a_line, bank_suggestions
from .models import BankStatementLine, StripeBalanceTxn
from .stripe_reconciliation import CHUNK, SETTLED


# ---------------------------------------------------------------- the period's report

def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed(_("The period ends before it starts."),
                               fields={"to": [_("Before the start.")]})
    return (datetime.combine(start, time(0), tzinfo=timezone.utc),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=timezone.utc))


@dataclass
class Report:
    start: date
    end: date
    currency: str
    counts: dict
    stripe_net_minor: int
    stripe_amount_minor: int
    stripe_fees_minor: int
    differences: list = field(default_factory=list)      # StripeBalanceTxn not matched
    missing_in_stripe: list = field(default_factory=list)  # (entry, amount)
    suggestions: list = field(default_factory=list)
    bank_unmatched: list = field(default_factory=list)     # BankStatementLine
    bank_mismatch: list = field(default_factory=list)
    ledger_not_at_bank: list = field(default_factory=list)  # (entry, amount)
    payouts_not_at_bank: list = field(default_factory=list)  # StripeBalanceTxn
    bank_suggestions: list = field(default_factory=list)
    explained: list = field(default_factory=list)          # StripeBalanceTxn explained
    bank_explained: list = field(default_factory=list)
    suggestion_for: dict = field(default_factory=dict)      # txn pk -> suggested entry
    bank_lines_page: Page | KeysetPage | None = None        # bank_unmatched's page
    # On the page (`report(..., cursors=...)`): each long list a keyset page at a time
    # (differences, explained, bank lines, bank lines explained); the others their first
    # PER_PAGE rows, `more` naming those that have more (the CSV has every row).
    pages: dict = field(default_factory=dict)
    more: set = field(default_factory=set)


def missing_in_stripe(coop, start: datetime, end: datetime, limit: int | None = 500):
    """Posted entries through stripe_clearing that name a Stripe object (external_ref) for
    which no balance transaction is stored."""
    clearing_id = ledger_queries.account_id(coop, "stripe_clearing")
    if clearing_id is None:
        return []
    def unknown_to_stripe(entry_id, external_ref):
        return and_(~exists(select(StripeBalanceTxn.id).where(
                        StripeBalanceTxn.coop_id == coop.id,
                        StripeBalanceTxn.source == external_ref)),
                    ~exists(select(StripeBalanceTxn.id).where(
                        StripeBalanceTxn.matched_entry_id == entry_id)))
    return ledger_queries.referenced_through(coop, clearing_id, start, end,
                                             unless=unknown_to_stripe, limit=limit)


def report(coop, start: date, end: date, limit: int | None = 500, bank_page: int = 1,
           cursors: dict | None = None) -> Report:
    """The period's differences, each list at most `limit` rows, the statement lines not
    matched a page at a time (`bank_page`) with suggestions for those; `limit=None`: every
    row (the CSV), no suggestions. Given `cursors` (the page: list name -> cursor or None),
    the long lists are keyset pages of PER_PAGE rows (see Report.pages) and the others
    their first PER_PAGE rows: a page whose size does not grow with the period's rows."""
    if cursors is not None:
        return _page_report(coop, start, end, cursors)
    lo, hi = _bounds(start, end)
    in_period, counts, sums = _period_totals(coop, start, end)
    diff_stmt = (select(StripeBalanceTxn).where(in_period,
                                                StripeBalanceTxn.status.notin_(SETTLED))
                 .order_by(StripeBalanceTxn.created, StripeBalanceTxn.id))
    if limit:
        diff_stmt = diff_stmt.limit(limit)
    rep = Report(start=start, end=end, currency=coop.currency, counts=counts,
                 stripe_amount_minor=int(sums[0]), stripe_fees_minor=int(sums[1]),
                 stripe_net_minor=int(sums[2]),
                 differences=list(db.session.scalars(diff_stmt)),
                 missing_in_stripe=missing_in_stripe(coop, lo, hi, limit))
    suggested = {t.suggested_entry_id for t in rep.differences if t.suggested_entry_id}
    entries = ledger_queries.entries_by_id(suggested)
    rep.suggestions = [(t, entries[t.suggested_entry_id])
                       for t in rep.differences if t.suggested_entry_id in entries]
    rep.suggestion_for = {t.id: e for t, e in rep.suggestions}
    explained_stmt = (select(StripeBalanceTxn).where(in_period,
                                                     StripeBalanceTxn.status == "explained")
                      .order_by(StripeBalanceTxn.created, StripeBalanceTxn.id))
    if limit:
        explained_stmt = explained_stmt.limit(limit)
    rep.explained = list(db.session.scalars(explained_stmt))
    bank_explained_stmt = (select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id, BankStatementLine.status == "explained",
        BankStatementLine.booked_on >= start, BankStatementLine.booked_on <= end)
        .order_by(BankStatementLine.booked_on, BankStatementLine.id))
    if limit:
        bank_explained_stmt = bank_explained_stmt.limit(limit)
    rep.bank_explained = list(db.session.scalars(bank_explained_stmt))
    unmatched_stmt = (select(BankStatementLine).where(
        BankStatementLine.coop_id == coop.id,
        BankStatementLine.status.notin_(("matched", "explained")),
        BankStatementLine.booked_on >= start, BankStatementLine.booked_on <= end)
        .order_by(BankStatementLine.booked_on, BankStatementLine.id))
    if limit:
        # The page shows the period's statement lines a page at a time (a statement of
        # 20,000 lines is not one page), and suggests matches for the lines it shows.
        rep.bank_lines_page = paginate(unmatched_stmt, bank_page)
        rep.bank_unmatched = rep.bank_lines_page.items
    else:
        rep.bank_unmatched = list(db.session.scalars(unmatched_stmt))
    bank_id = ledger_queries.account_id(coop, "bank")
    if bank_id is not None:
        rep.ledger_not_at_bank = ledger_queries.referenced_through(
            coop, bank_id, lo, hi, unless=_not_on_a_line, limit=limit)
    payouts_stmt = (select(StripeBalanceTxn).where(
        in_period, StripeBalanceTxn.type == "payout",
        ~exists(select(BankStatementLine.id).where(
            BankStatementLine.stripe_txn_id == StripeBalanceTxn.id)))
        .order_by(StripeBalanceTxn.id))
    if limit:
        payouts_stmt = payouts_stmt.limit(limit)
    rep.payouts_not_at_bank = list(db.session.scalars(payouts_stmt))
    if limit:
        rep.bank_suggestions = bank_suggestions(coop, rep.bank_unmatched)
    return rep


def _period_totals(coop, start: date, end: date):
    """The period's filter, its transactions counted by status, and their three sums."""
    lo, hi = _bounds(start, end)
    in_period = and_(StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.created >= lo,
                     StripeBalanceTxn.created < hi)
    counts = dict(db.session.execute(select(StripeBalanceTxn.status, func.count())
                                     .where(in_period).group_by(StripeBalanceTxn.status)).all())
    sums = db.session.execute(select(func.coalesce(func.sum(StripeBalanceTxn.amount_minor), 0),
                                     func.coalesce(func.sum(StripeBalanceTxn.fee_minor), 0),
                                     func.coalesce(func.sum(StripeBalanceTxn.net_minor), 0))
                              .where(in_period)).one()
    return in_period, counts, sums


def _page_report(coop, start: date, end: date, cursors: dict) -> Report:
    lo, hi = _bounds(start, end)
    in_period, counts, sums = _period_totals(coop, start, end)
    by_time = [StripeBalanceTxn.created, StripeBalanceTxn.id]
    by_day = [BankStatementLine.booked_on, BankStatementLine.id]
    bank_in_period = and_(BankStatementLine.coop_id == coop.id,
                          BankStatementLine.booked_on >= start,
                          BankStatementLine.booked_on <= end)
    pages = {
        "diff": keyset(select(StripeBalanceTxn).where(
            in_period, StripeBalanceTxn.status.notin_(SETTLED)), by_time, cursors.get("diff")),
        "explained": keyset(select(StripeBalanceTxn).where(
            in_period, StripeBalanceTxn.status == "explained"), by_time,
            cursors.get("explained")),
        "bank": keyset(select(BankStatementLine).where(
            bank_in_period, BankStatementLine.status.notin_(("matched", "explained"))),
            by_day, cursors.get("bank")),
        "bank_explained": keyset(select(BankStatementLine).where(
            bank_in_period, BankStatementLine.status == "explained"), by_day,
            cursors.get("bank_explained")),
    }
    rep = Report(start=start, end=end, currency=coop.currency, counts=counts,
                 stripe_amount_minor=int(sums[0]), stripe_fees_minor=int(sums[1]),
                 stripe_net_minor=int(sums[2]), differences=pages["diff"].items,
                 explained=pages["explained"].items, bank_unmatched=pages["bank"].items,
                 bank_explained=pages["bank_explained"].items, bank_lines_page=pages["bank"],
                 pages=pages)

    def first(name, rows):
        if len(rows) > PER_PAGE:
            rep.more.add(name)
        return rows[:PER_PAGE]
    rep.missing_in_stripe = first("missing_in_stripe",
                                  missing_in_stripe(coop, lo, hi, PER_PAGE + 1))
    suggested = {t.suggested_entry_id for t in rep.differences if t.suggested_entry_id}
    entries = ledger_queries.entries_by_id(suggested)
    rep.suggestions = [(t, entries[t.suggested_entry_id])
                       for t in rep.differences if t.suggested_entry_id in entries]
    rep.suggestion_for = {t.id: e for t, e in rep.suggestions}
    bank_id = ledger_queries.account_id(coop, "bank")
    if bank_id is not None:
        rep.ledger_not_at_bank = first("ledger_not_at_bank", ledger_queries.referenced_through(
            coop, bank_id, lo, hi, unless=_not_on_a_line, limit=PER_PAGE + 1))
    rep.payouts_not_at_bank = first("payouts_not_at_bank", list(db.session.scalars(
        select(StripeBalanceTxn).where(
            in_period, StripeBalanceTxn.type == "payout",
            ~exists(select(BankStatementLine.id).where(
                BankStatementLine.stripe_txn_id == StripeBalanceTxn.id)))
        .order_by(StripeBalanceTxn.id).limit(PER_PAGE + 1))))
    rep.bank_suggestions = bank_suggestions(coop, rep.bank_unmatched)
    return rep


CSV_HEADER = ["section", "date", "stripe_txn_id", "type", "source_or_reference",
              "stripe_amount_minor", "fee_minor", "ledger_amount_minor", "difference_minor",
              "ledger_entry_id", "status", "currency"]


def report_csv_rows(coop, start: date, end: date):
    """Every difference of the period (no row limit), streamed: Stripe rows not matched,
    ledger entries missing in Stripe, bank lines and ledger bank entries unmatched."""
    lo, hi = _bounds(start, end)
    cur = coop.currency
    yield CSV_HEADER
    stmt = (select(StripeBalanceTxn).where(
        StripeBalanceTxn.coop_id == coop.id, StripeBalanceTxn.created >= lo,
        StripeBalanceTxn.created < hi, StripeBalanceTxn.status.notin_(("matched", "released")))
        .order_by(StripeBalanceTxn.created, StripeBalanceTxn.id)
        .execution_options(yield_per=CHUNK))
    for t in db.session.scalars(stmt):
        ledger_amount = t.ledger_amount_minor
        yield ["stripe", t.created.date().isoformat(), t.txn_id, t.type, t.source or "",
               t.amount_minor, t.fee_minor, "" if ledger_amount is None else ledger_amount,
               t.amount_minor - (ledger_amount or 0), t.matched_entry_id or "", t.status, cur]
    for entry, amount in missing_in_stripe(coop, lo, hi, None):
        yield ["ledger", entry.effective_on.date().isoformat(), "", entry.kind,
               entry.external_ref, "", "", amount, -amount, entry.id, "missing_stripe", cur]
    rep = report(coop, start, end, None)
    for line in rep.bank_unmatched:
        yield ["bank", line.booked_on.isoformat(), "", "statement_line", line.reference,
               "", "", "", line.amount_minor, line.matched_entry_id or "",
               f"bank_{line.status}", cur]
    for entry, amount in rep.ledger_not_at_bank:
        yield ["ledger", entry.effective_on.date().isoformat(), "", entry.kind,
               entry.external_ref, "", "", amount, -amount, entry.id, "missing_bank", cur]
    for t in rep.payouts_not_at_bank:
        yield ["stripe", t.created.date().isoformat(), t.txn_id, t.type, t.source or "",
               t.amount_minor, t.fee_minor, "", "", "", "payout_not_at_bank", cur]



def csv_safe(value) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ is prefixed with '
    unless it is a number."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        try:
            Decimal(text)
            return text
        except InvalidOperation:
            return "'" + text
    return text
