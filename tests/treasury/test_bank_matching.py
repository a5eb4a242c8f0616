"""Bank statement matching at scale (issue 10 §5): an import matches the lines of its own
file's period in a fixed number of statements (set-based: lines, payouts and ledger entries
read in bulk), never every line imported before; the results are those line-by-line
matching gave; the reconciliation page shows the statement lines a page at a time.
Times are measured by bench/bank_bench.py, not here."""
from __future__ import annotations

import re
import io
from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy import func, select

from coop.extensions import db
from coop.ledger import services as ledger
from coop.ledger.models import LedgerEntry
from coop.treasury import bank_statement, stripe_reconciliation
from coop.treasury.models import BankStatementLine, StripeBalanceTxn

STRIPE_HEADER = ("id,Type,Source,Amount,Fee,Net,Currency,Created (UTC),Available On (UTC),"
                 "coop_id (metadata)\n")  # a payout is a coop's when its metadata says so


@pytest.fixture
def treasury(make_coop, make_user, make_farmer):
    """A fresh coop, its treasurer and a farmer, for each call."""
    def make():
        treasurer = make_user(name="Tesorera")
        coop = make_coop(treasurer=treasurer)
        farmer = make_farmer(coop)
        return coop, treasurer, farmer
    return make


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.utc)


def seed(coop, treasurer, farmer, n: int, day: date, tag: str):
    """For n lines of each kind on `day`: Stripe payouts (money in, the payout id in the
    description), farmer payouts from the bank (by reference), deposits naming nothing
    Minga knows, bank charges."""
    payout_total = sum(10_000_00 + i for i in range(n))
    ledger.post(coop, key=f"cap:{tag}", kind="capture", external_ref=f"ch_{tag}",
                lines=[ledger.debit("stripe_clearing", payout_total),
                       ledger.credit("buyer_deposits", payout_total)])
    owed = sum(5_000_00 + i for i in range(n))
    ledger.post(coop, key=f"owed:{tag}", kind="intake",
                lines=[ledger.debit("bank", owed),
                       ledger.credit(ledger.farmer_payable(farmer.id), owed)])
    for i in range(n):
        ledger.post(coop, key=f"pay:{tag}:{i}", kind="payout", external_ref=f"BREB-{tag}-{i}",
                    effective_on=noon(day),
                    lines=[ledger.debit(ledger.farmer_payable(farmer.id), 5_000_00 + i),
                           ledger.credit("bank", 5_000_00 + i)])
    db.session.commit()
    stamp = f"{day} 08:00:00"
    stripe_reconciliation.import_stripe_csv(coop, treasurer, io.BytesIO((STRIPE_HEADER + "".join(
        f"txn_{tag}_{i},payout,po_{tag}{i},-{(10_000_00 + i) / 100:.2f},0,"
        f"-{(10_000_00 + i) / 100:.2f},cop,{stamp},{stamp},{coop.id}\n" for i in range(n))).encode()))
    db.session.commit()


def statement(rows) -> io.BytesIO:
    return io.BytesIO(("date,description,amount,reference\n" + "".join(
        f"{d},{desc},{amount},{ref}\n" for d, desc, amount, ref in rows)).encode())


def lines_of(n: int, day: date, tag: str):
    rows = []
    for i in range(n):
        rows.append((day, f"STRIPE TRANSFER po_{tag}{i}", f"{(10_000_00 + i) / 100:.2f}", ""))
        rows.append((day, f"Pago Bre-B {i}", f"-{(5_000_00 + i) / 100:.2f}", f"BREB-{tag}-{i}"))
        rows.append((day, f"Consignacion {i}", f"{(700_00 + i) / 100:.2f}", f"CONS-{tag}-{i}"))
        rows.append((day, f"Comision {i}", f"-{(9_00 + i) / 100:.2f}", ""))
    return rows


def test_the_queries_of_an_import_do_not_grow_with_its_lines(treasury, count_queries):
    day = date(2026, 3, 10)
    counts, summaries = [], []
    # 100 and 240 lines (25 of each kind and more): every bulk write above inserts.FEW rows,
    # the rows insert_many writes in one plain INSERT on PostgreSQL before it stages them
    # through a temporary table. The first import warms up: on PostgreSQL it also creates
    # the connection's temporary staging tables (once per connection, not per line).
    from coop.common.inserts import FEW
    assert 25 > FEW
    for n in (25, 25, 60):
        coop, treasurer, farmer = treasury()
        seed(coop, treasurer, farmer, n, day, "q")
        with count_queries() as counter:
            summary = bank_statement.import_bank_statement(coop, treasurer,
                                                           statement(lines_of(n, day, "q")))
            db.session.flush()
        db.session.commit()
        counts.append(counter.count)
        summaries.append(summary)
        assert summary == {"added": 4 * n, "matched": 2 * n, "mismatch": 0,
                           "unmatched": 2 * n}
        assert ledger.check() == []
    assert counts[1] == counts[2], counts  # 240 lines cost what 100 do


def test_an_import_matches_its_own_period_not_every_line_ever_imported(treasury):
    coop, treasurer, farmer = treasury()
    march, april = date(2026, 3, 10), date(2026, 4, 10)
    # March's statement comes before the ledger knows of the payment it shows.
    bank_statement.import_bank_statement(coop, treasurer, statement(
        [(march, "Pago Bre-B tardio", "-50.00", "BREB-LATE")]))
    db.session.commit()
    ledger.post(coop, key="owed:late", kind="intake",
                lines=[ledger.debit("bank", 5_000),
                       ledger.credit(ledger.farmer_payable(farmer.id), 5_000)])
    late = ledger.post(coop, key="pay:late", kind="payout", external_ref="BREB-LATE",
                       effective_on=noon(march),
                       lines=[ledger.debit(ledger.farmer_payable(farmer.id), 5_000),
                              ledger.credit("bank", 5_000)])
    db.session.commit()
    # April's statement re-checks nothing of March's.
    summary = bank_statement.import_bank_statement(coop, treasurer, statement(
        [(april, "Comision", "-9.00", "")]))
    db.session.commit()
    assert summary["matched"] == 0
    line = db.session.scalar(select(BankStatementLine).where(
        BankStatementLine.reference == "BREB-LATE"))
    assert line.status == "unmatched"
    # March's statement imported again (or any file covering March) matches it now.
    again = bank_statement.import_bank_statement(coop, treasurer, statement(
        [(march, "Pago Bre-B tardio", "-50.00", "BREB-LATE")]))
    db.session.commit()
    assert again["added"] == 0 and again["matched"] == 1
    db.session.expire_all()
    assert (line.status, line.matched_entry_id) == ("matched", late.id)


def test_matching_in_bulk_keeps_the_rules_of_matching_line_by_line(treasury):
    coop, treasurer, farmer = treasury()
    day = date(2026, 3, 10)
    seed(coop, treasurer, farmer, 2, day, "r")  # po_r0, po_r1; BREB-r-0, BREB-r-1
    # A second ledger payout with reference BREB-r-0 (two lines, two entries, oldest first).
    ledger.post(coop, key="owed:twin", kind="intake",
                lines=[ledger.debit("bank", 1_000),
                       ledger.credit(ledger.farmer_payable(farmer.id), 1_000)])
    twin = ledger.post(coop, key="pay:twin", kind="payout", external_ref="BREB-r-0",
                       effective_on=noon(day),
                       lines=[ledger.debit(ledger.farmer_payable(farmer.id), 1_000),
                              ledger.credit("bank", 1_000)])
    db.session.commit()
    summary = bank_statement.import_bank_statement(coop, treasurer, statement([
        (day, "STRIPE po_r0", "10000.00", ""),            # matched, posted
        (day, "STRIPE again po_r0", "10000.00", ""),      # the same payout: mismatch
        (day, "STRIPE", "10000.50", "po_r1"),              # its id as reference, wrong amount
        (day, "Pago 1", "-5000.00", "BREB-r-0"),          # the oldest BREB-r-0 entry
        (day, "Pago 2", "-10.00", "BREB-r-0"),            # the next one: the twin
        (day, "Pago 3", "-1.00", "BREB-r-1"),             # found, another amount
    ]))
    db.session.commit()
    assert (summary["matched"], summary["mismatch"]) == (3, 3)
    got = {ln.description: (ln.status, ln.note, ln.matched_entry_id is not None,
                            ln.stripe_txn_id is not None)
           for ln in db.session.scalars(select(BankStatementLine))}
    assert got == {
        "STRIPE po_r0": ("matched", "", True, True),
        "STRIPE again po_r0": ("mismatch", "payout already matched to another line", False,
                               False),
        "STRIPE": ("mismatch", "Stripe payout po_r1 is 1000001", False, False),
        "Pago 1": ("matched", "", True, False),
        "Pago 2": ("matched", "", True, False),
        "Pago 3": ("mismatch", "ledger moved -500001", True, False),
    }
    pago2 = db.session.scalar(select(BankStatementLine).where(
        BankStatementLine.description == "Pago 2"))
    assert pago2.matched_entry_id == twin.id
    txn = db.session.scalar(select(StripeBalanceTxn).where(StripeBalanceTxn.txn_id == "txn_r_0"))
    assert txn.status == "matched" and txn.ledger_amount_minor == -10_000_00
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.kind == "stripe_payout")) == 1
    # What came in for the farmers went out to them; the one payout matched reached the bank.
    assert ledger.balance(coop, "bank") == 10_000_00
    assert ledger.check() == []


def test_the_reconciliation_page_shows_the_statement_lines_a_page_at_a_time(
        treasury, login, count_queries):
    coop, treasurer, _farmer = treasury()
    day = date(2026, 3, 10)
    bank_statement.import_bank_statement(coop, treasurer, statement(
        [(day + timedelta(days=i % 20), f"Comision {i}", f"-{1 + i}.00", f"C-{i}")
         for i in range(120)]))
    db.session.commit()
    client = login(treasurer)
    url = f"/manage/coops/{coop.id}/treasury/reconciliation?from=2026-03-01&to=2026-03-31"
    first = client.get(url).get_data(as_text=True)
    assert first.count('id="line-') == 50
    # Keyset pages: "next" starts after the last line shown, keeping the period.
    pages, body = [first], first
    while (link := re.search(r'href="([^"]+)" rel="next"', body)):
        assert "from=2026-03-01" in link.group(1) and "bank=" in link.group(1)
        body = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
        pages.append(body)
    assert [p.count('id="line-') for p in pages] == [50, 50, 20]
    # Every line is on exactly one page.
    shown = [int(part.split('"', 1)[0]) for body in pages for part in body.split('id="line-')[1:]]
    assert len(shown) == len(set(shown)) == 120
    # A cursor nobody made shows the first page.
    assert client.get(url + "&bank=zz").get_data(as_text=True).count('id="line-') == 50
