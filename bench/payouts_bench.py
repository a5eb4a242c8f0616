"""Payout benchmark (issue 4): build a payout batch for 10,000 farmers (target under 2 s), with
the number of SQL statements it sends (constant: no query per farmer); then the bulk-payment
file and the bank's confirmation of some of the lines.

    .venv/bin/python -m bench.payouts_bench [--db sqlite|postgresql|both] [--farmers 10000]
        [--confirm 1000]
"""
from __future__ import annotations

import argparse
import time

from bench.common import databases, fresh_app, seed_market


def owe_everyone(app, coop_id: int) -> tuple[int, int]:
    """Each farmer is owed a different amount: their payable accounts are opened in bulk, then
    credited by one ledger entry (Dr bank, Cr farmer_payable:<id> per farmer)."""
    from sqlalchemy import insert, select

    from coop.cooperatives.models import Cooperative, FarmerProfile
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.ledger.models import LedgerAccount

    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        farmer_ids = list(db.session.scalars(select(FarmerProfile.user_id).where(
            FarmerProfile.coop_id == coop_id).order_by(FarmerProfile.user_id)))
        db.session.execute(insert(LedgerAccount), [
            {"coop_id": coop_id, "code": ledger.farmer_payable(uid), "name": "Owed to farmer",
             "kind": "liability", "currency": coop.currency, "may_go_negative": False,
             "user_id": uid, "balance_minor": 0} for uid in farmer_ids])
        amounts = [(uid, 250_000_00 + (n % 97) * 1_000_00) for n, uid in enumerate(farmer_ids)]
        total = sum(a for _uid, a in amounts)
        ledger.post(coop, key="bench:intake", kind="intake",
                    lines=[ledger.debit("bank", total)]
                    + [ledger.credit(ledger.farmer_payable(uid), a) for uid, a in amounts])
        db.session.commit()
        return len(farmer_ids), total


def run(url: str, label: str, farmers: int, confirm: int) -> dict:
    from sqlalchemy import event

    from coop.auth import services as auth_services
    from coop.cooperatives import services as coop_services
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.payouts import services as payouts

    app = fresh_app(url)
    t0 = time.perf_counter()
    coop_id, _manager_id, _buyers = seed_market(app, farmers=farmers)
    with app.app_context():
        treasurer = auth_services.create_user(email="bench-treasurer@example.org",
                                              name="Treasurer", password="bench-password-1")
        coop_services.grant_role(db.session.get(Cooperative, coop_id), treasurer, "treasurer")
        db.session.commit()
        treasurer_id = treasurer.id
    count, total = owe_everyone(app, coop_id)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            # Fresh statistics, as autovacuum would have them on a live database.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
    setup = time.perf_counter() - t0
    figures = {"farmers": count, "setup_s": setup}
    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        treasurer = db.session.get(type(treasurer), treasurer_id)
        statements = []

        def counter(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)
        event.listen(db.engine, "before_cursor_execute", counter)
        start = time.perf_counter()
        batch, _created = payouts.create_batch(coop, treasurer)
        db.session.commit()
        figures["batch_s"] = time.perf_counter() - start
        event.remove(db.engine, "before_cursor_execute", counter)
        figures["batch_statements"] = len(statements)
        batch_id = batch.id
        start = time.perf_counter()
        loaded = payouts.get_batch(batch_id)
        assert len(loaded.lines) == count and loaded.total_minor == total, "batch incomplete"
        figures["load_s"] = time.perf_counter() - start
        start = time.perf_counter()
        body = payouts.export_csv(payouts.get_batch(batch_id), treasurer, rail="nequi")
        db.session.commit()
        figures["export_s"] = time.perf_counter() - start
        figures["export_rows"] = body.count("\r\n") - 1
        lines = [line.id for line in payouts.get_batch(batch_id).lines[:confirm]]
        file = "line_id,status,reference\r\n" + "".join(
            f"{lid},{'failed' if lid % 50 == 0 else 'paid'},BANK-{lid}\r\n" for lid in lines)
        start = time.perf_counter()
        payouts.import_confirmations(payouts.get_batch(batch_id), treasurer, file)
        db.session.commit()
        figures["confirm_s"] = time.perf_counter() - start
        figures["confirmed"] = len(lines)
        start = time.perf_counter()
        payouts.import_confirmations(payouts.get_batch(batch_id), treasurer, file)
        db.session.commit()
        figures["confirm_again_s"] = time.perf_counter() - start
        problems = ledger.check()
        figures["ledger_check"] = "ok" if not problems else problems[:3]
    print(f"{label}: {count:,} farmers (set-up {setup:.1f} s)\n"
          f"  payout batch: {figures['batch_s']:.2f} s, {figures['batch_statements']} SQL "
          f"statements (target < 2 s); loading its lines for the answer: "
          f"{figures['load_s']:.2f} s\n"
          f"  export CSV ({figures['export_rows']:,} rows): {figures['export_s']:.2f} s\n"
          f"  confirmation file of {len(lines):,} lines: {figures['confirm_s']:.2f} s "
          f"({len(lines) / figures['confirm_s']:.0f} lines/s); imported again: "
          f"{figures['confirm_again_s']:.2f} s\n"
          f"  ledger check: {figures['ledger_check']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    parser.add_argument("--farmers", type=int, default=10_000)
    parser.add_argument("--confirm", type=int, default=1_000)
    args = parser.parse_args()
    for label, url in databases(args.db):
        run(url, label, args.farmers, args.confirm)


if __name__ == "__main__":
    main()
