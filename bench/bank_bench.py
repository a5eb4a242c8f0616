"""Bank statement benchmark (issue 10 §5): a statement of 20,000 lines imported and matched
(Stripe payouts by payout id, farmer payouts by reference, amounts checked), then a 10-line
statement of the next month, then the reconciliation page for the long statement's quarter
and for the current month, each with the number of SQL statements it sent. Targets on
PostgreSQL: the 20,000 lines under 10 s, the 10 lines under 1 s, the page fast.

    BENCH_PG_URL=... .venv/bin/python -m bench.bank_bench [--db sqlite|postgresql|both]
        [--lines 20000]
"""
from __future__ import annotations

import argparse
import io
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

from bench.common import analyze, databases, fresh_app, seed_market

START = date(2026, 1, 1)
PASSWORD = "bench-password-1"


def amount(i: int) -> int:
    return 50_000_00 + (i * 7919) % 900_000_00


def plan(lines: int) -> dict:
    """A fifth Stripe payouts, three fifths farmer payouts (one in ten of another amount),
    a fifth with nothing in the ledger (bank charges, deposits with a reference)."""
    payouts = lines // 5
    farmer = lines * 3 // 5
    return {"payouts": range(0, payouts), "farmer": range(payouts, payouts + farmer),
            "charges": range(payouts + farmer, lines)}


def day_of(i: int, lines: int) -> date:
    return START + timedelta(days=i * 89 // max(lines, 1))


def seed(app, coop_id: int, farmer_id: int, lines: int, extra: int) -> None:
    """The ledger and Stripe's side of every line (and of the 10-line statement), in bulk."""
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import bulk
    from coop.ledger import services as ledger
    from coop.treasury import stripe_reconciliation

    p = plan(lines)
    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        payouts = list(p["payouts"]) + [lines + k for k in range(extra)]
        farmer = list(p["farmer"]) + [lines + extra + k for k in range(extra)]
        noon = lambda i: datetime.combine(  # noqa: E731
            day_of(i, lines) if i < lines else date(2026, 4, 10), datetime.min.time(),
            tzinfo=timezone.utc) + timedelta(hours=12)
        total_out = sum(amount(i) for i in farmer)
        entries = [
            bulk.NewEntry(key="bench:captures", kind="capture", external_ref="ch_bench",
                          effective_on=datetime(2025, 12, 1, tzinfo=timezone.utc),
                          lines=[ledger.debit("stripe_clearing", sum(amount(i) for i in payouts)),
                                 ledger.credit("buyer_deposits", sum(amount(i) for i in payouts))]),
            bulk.NewEntry(key="bench:owed", kind="intake",
                          effective_on=datetime(2025, 12, 1, tzinfo=timezone.utc),
                          lines=[ledger.debit("bank", total_out),
                                 ledger.credit(ledger.farmer_payable(farmer_id), total_out)])]
        entries += [bulk.NewEntry(key=f"payout_line:{i}", kind="payout",
                                  external_ref=f"BREB-{i:06d}", effective_on=noon(i),
                                  lines=[ledger.debit(ledger.farmer_payable(farmer_id), amount(i)),
                                         ledger.credit("bank", amount(i))])
                    for i in farmer]
        bulk.post_many(coop, entries)
        stripe_reconciliation._store_txns(coop, ({
            "txn_id": f"txn_po_{i:06d}", "type": "payout", "source": f"po_{i:06d}",
            "charge_ref": None, "amount_minor": -amount(i), "fee_minor": 0,
            "net_minor": -amount(i), "currency": coop.currency,
            "created": noon(i) - timedelta(days=1), "available_on": noon(i), "origin": "api"}
            for i in payouts), [])
        db.session.commit()


def statement(rows) -> io.BytesIO:
    text = "date,description,amount,reference\n" + "".join(
        f"{d.isoformat()},{desc},{minor / 100:.2f},{ref}\n" for d, desc, minor, ref in rows)
    return io.BytesIO(text.encode())


def long_statement(lines: int):
    p = plan(lines)
    for i in range(lines):
        d = day_of(i, lines)
        if i in p["payouts"]:
            yield d, f"STRIPE TRANSFER po_{i:06d}", amount(i), ""
        elif i in p["farmer"]:
            wrong = 100 if i % 10 == 0 else 0
            yield d, f"Pago Bre-B {i}", -amount(i) - wrong, f"BREB-{i:06d}"
        elif i % 2:
            yield d, f"Comision bancaria {i}", -(990 + i % 50), ""
        else:  # a reference the ledger does not know (yet)
            yield d, f"Consignacion {i}", 10_000_00 + i, f"CONS-{i:06d}"


def short_statement(lines: int, extra: int):
    d = date(2026, 4, 10)
    rows = [(d, f"STRIPE TRANSFER po_{lines + k:06d}", amount(lines + k), "")
            for k in range(extra)]
    rows += [(d, f"Pago Bre-B {k}", -amount(lines + extra + k), f"BREB-{lines + extra + k:06d}")
             for k in range(extra)]
    rows += [(d, "Cuota de manejo", -1_290_00 - k, "") for k in range(10 - 2 * extra)]
    return rows


@contextmanager
def counting(engine):
    from sqlalchemy import event
    counter = {"n": 0}

    def count(*_args):
        counter["n"] += 1
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", count)


def run(name: str, url: str, lines: int) -> None:
    from sqlalchemy import func, select

    from coop.auth import services as auth_services
    from coop.auth.models import User
    from coop.cooperatives import services as coop_services
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.treasury import bank_statement
    from coop.treasury.models import BankStatementLine

    extra = 3
    app = fresh_app(url)
    coop_id, _manager_id, _buyers = seed_market(app, farmers=1)
    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        treasurer = auth_services.create_user(email="bench-treasurer@example.org",
                                              name="Treasurer", password=PASSWORD)
        coop_services.grant_role(coop, treasurer, "treasurer")
        farmer_id = coop.memberships[-1].user_id
        db.session.commit()
        treasurer_id = treasurer.id
    t0 = time.perf_counter()
    seed(app, coop_id, farmer_id, lines, extra)
    analyze(app)
    setup = time.perf_counter() - t0
    p = plan(lines)
    mismatched = sum(1 for i in p["farmer"] if i % 10 == 0)
    figures = {}
    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        user = db.session.get(User, treasurer_id)
        for label, rows, expect in (
                ("long", list(long_statement(lines)),
                 {"added": lines, "matched": len(p["payouts"]) + len(p["farmer"]) - mismatched,
                  "mismatch": mismatched}),
                ("short", short_statement(lines, extra),
                 {"added": 10, "matched": 2 * extra, "mismatch": 0})):
            data = statement(rows)
            with counting(db.engine) as counter:
                start = time.perf_counter()
                summary = bank_statement.import_bank_statement(coop, user, data)
                db.session.commit()
                figures[label] = (time.perf_counter() - start, counter["n"])
            for key, value in expect.items():
                assert summary[key] == value, (label, key, summary)
        assert db.session.scalar(select(func.count()).select_from(BankStatementLine)) \
            == lines + 10
        problems = ledger.check()
        assert problems == [], problems[:3]
        email = user.email
    client = app.test_client()
    response = client.post("/login", data={"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    pages = {}
    for label, query in (("quarter", "?from=2026-01-01&to=2026-03-31"), ("month", "")):
        url_ = f"/manage/coops/{coop_id}/treasury/reconciliation{query}"
        with app.app_context():
            engine = db.engine
        with counting(engine) as counter:
            start = time.perf_counter()
            response = client.get(url_)
            pages[label] = (time.perf_counter() - start, counter["n"], len(response.data))
        assert response.status_code == 200, (label, response.status_code)
    long_s, long_q = figures["long"]
    short_s, short_q = figures["short"]
    print(f"{name}: a statement of {lines:,} lines imported and matched "
          f"({len(p['payouts']):,} Stripe payouts posted, {len(p['farmer']) - mismatched:,} "
          f"farmer payouts matched, {mismatched:,} of another amount): {long_s:.2f} s, "
          f"{long_q} SQL statements")
    print(f"  {name}: then a 10-line statement: {short_s:.2f} s, {short_q} SQL statements")
    for label, (seconds, queries, size) in pages.items():
        print(f"  {name}: the reconciliation page ({label}): {seconds:.2f} s, {queries} SQL "
              f"statements, {size / 1024:,.0f} KB")
    print(f"  {name}: ledger check OK (set-up {setup:.1f} s, not timed)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--lines", type=int, default=20_000)
    args = parser.parse_args()
    for name, url in databases(args.db):
        run(name, url, args.lines)


if __name__ == "__main__":
    main()
