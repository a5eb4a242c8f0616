"""Year-end distribution benchmark (issue 4): preview and close a year for 10,000 members
(each with intake in the year), posted as one distribution entry of 20,000+ lines.

    .venv/bin/python -m bench.year_end_bench [--db sqlite|postgresql|both] [--members 10000]
"""
from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timezone

from bench.common import analyze, databases, fresh_app, seed_market

YEAR = 2025


def run(name: str, url: str, members: int) -> None:
    app = fresh_app(url)
    coop_id, _manager, _buyers = seed_market(app, farmers=members)
    from sqlalchemy import select

    from coop.auth.models import User
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.ledger import bulk
    from coop.treasury import year_end

    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        ids = list(db.session.scalars(select(User.id).where(User.email.like("f%@bench.org"))))
        when = datetime(YEAR, 6, 1, tzinfo=timezone.utc)
        entries = []
        for n, uid in enumerate(ids):
            farmer = 1_000_000 + (n * 7919) % 9_000_000
            commission = farmer // 12
            total = farmer + commission
            entries.append(bulk.NewEntry(key=f"cap:{n}", kind="capture", external_ref=f"ch_{n}",
                                         effective_on=when,
                                         lines=[ledger.debit("stripe_clearing", total),
                                                ledger.credit("buyer_deposits", total)]))
            entries.append(bulk.NewEntry(key=f"intake:{n}", kind="intake", effective_on=when,
                                         lines=[ledger.debit("buyer_deposits", total),
                                                ledger.credit(ledger.farmer_payable(uid), farmer),
                                                ledger.credit("commission_income", commission)]))
        bulk.post_many(coop, entries)
        db.session.commit()
        analyze(app)
        start = time.perf_counter()
        dist = year_end.preview(coop, YEAR)
        previewed = time.perf_counter() - start
        year_end.close_year(coop, None, YEAR, expected_surplus=dist.surplus_minor,
                            today=date(YEAR + 1, 1, 15))
        db.session.commit()
        elapsed = time.perf_counter() - start
        assert len(dist.members) == members and dist.total_minor == dist.surplus_minor
        assert ledger.balance(coop, "current_surplus") == 0
        problems = ledger.check()
        assert problems == [], problems[:3]
    print(f"{name}: year-end for {members:,} members: preview {previewed:.2f} s, preview + "
          f"close + distribution ({2 * members + 5:,} lines) + commit {elapsed:.2f} s; "
          f"ledger check OK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    for name, url in databases(args.db):
        run(name, url, args.members)


if __name__ == "__main__":
    main()
