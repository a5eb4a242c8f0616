"""Payout benchmark (issues 4 and 12): build a payout batch for 10,000 farmers (target under
2 s), with the number of SQL statements it sends (constant: no query per farmer); the
bulk-payment file; then the bank's confirmation files, each imported twice: a batch of 1,000
lines and one of 10,000 (issue 12: 10,000 lines confirmed in under 2 s on PostgreSQL, the
same file again in under 0.2 s), every paid line posted to the ledger and its farmer's
message enqueued in the same pass (a tenth of the farmers by SMS, a seventh in English): a
job per 1,000 lines, which writes the messages; the bench runs those jobs and times them apart.

    .venv/bin/python -m bench.payouts_bench [--db sqlite|postgresql|both] [--farmers 10000]
        [--confirm 1000,10000] [--profile]

Each run has its own database (bench/common.py). --profile prints cProfile's top functions of
the largest first import."""
from __future__ import annotations

import argparse
import time

from bench.common import analyze, databases, fresh_app, load, seed_market


def owe_everyone(app, coop_id: int, key: str = "bench:intake",
                 farmer_ids: list[int] | None = None) -> tuple[int, int]:
    """Each farmer is owed a different amount, by one ledger entry (Dr bank, Cr
    farmer_payable:<id> per farmer) posted through the ledger's bulk writer (which opens the
    payable accounts in bulk)."""
    from sqlalchemy import select

    from coop.cooperatives.models import Cooperative, FarmerProfile
    from coop.extensions import db
    from coop.ledger import bulk
    from coop.ledger import services as ledger

    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        if farmer_ids is None:
            farmer_ids = list(db.session.scalars(select(FarmerProfile.user_id).where(
                FarmerProfile.coop_id == coop_id).order_by(FarmerProfile.user_id)))
        amounts = [(uid, 250_000_00 + (n % 97) * 1_000_00) for n, uid in enumerate(farmer_ids)]
        total = sum(a for _uid, a in amounts)
        bulk.post_many(coop, [bulk.NewEntry(
            key=key, kind="intake",
            lines=[ledger.debit("bank", total)]
            + [ledger.credit(ledger.farmer_payable(uid), a) for uid, a in amounts])])
        db.session.commit()
        return len(farmer_ids), total


def mix_recipients(app, coop_id: int) -> dict:
    """A tenth of the farmers have no e-mail (told by SMS), a seventh read English."""
    from sqlalchemy import select, update

    from coop.auth.models import User
    from coop.cooperatives.models import FarmerProfile
    from coop.extensions import db

    with app.app_context():
        ids = list(db.session.scalars(select(FarmerProfile.user_id).where(
            FarmerProfile.coop_id == coop_id).order_by(FarmerProfile.user_id)))
        rows = []
        for n, uid in enumerate(ids):
            row = {"id": uid, "locale": "en" if n % 7 == 0 else "es"}
            if n % 10 == 0:
                row.update(email=None, phone=f"+57310{n:07d}", channel="sms")
            rows.append(row)
        db.session.execute(update(User), rows)
        db.session.commit()
        return {"sms": sum(1 for r in rows if "phone" in r),
                "english": sum(1 for r in rows if r["locale"] == "en")}


def second_rail(app, coop_id: int, count: int) -> list[int]:
    """`count` more farmers paid by bank transfer: the batch of that rail is the small file."""
    from sqlalchemy import insert, select

    from coop.auth.models import User
    from coop.cooperatives.models import FarmerProfile, Membership
    from coop.extensions import db

    with app.app_context():
        pw = db.session.scalar(select(User.password_hash).limit(1))
        db.session.execute(insert(User), [
            {"email": f"g{n}@bench.org", "name": f"Granjera {n}", "password_hash": pw}
            for n in range(count)])
        ids = list(db.session.scalars(select(User.id).where(User.email.like("g%@bench.org"))
                                      .order_by(User.id)))
        db.session.execute(insert(Membership), [
            {"user_id": uid, "coop_id": coop_id, "role": "farmer"} for uid in ids])
        db.session.execute(insert(FarmerProfile), [
            {"coop_id": coop_id, "user_id": uid, "member_number": f"G{n}",
             "national_id": f"{20_000_000 + n}", "payout_rail": "bank",
             "payout_account": f"{40_000_000 + n}", "bank_name": "Banco Agrario"}
            for n, uid in enumerate(ids)])
        db.session.commit()
        return ids


class Counter:
    def __init__(self):
        self.count = 0

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1


def confirm(app, batch_id: int, treasurer_id: int, profile: bool = False) -> dict:
    """Import the bank's file for every line of the batch (one in 50 failed), twice."""
    from sqlalchemy import event, func, select

    from coop.auth.models import User
    from coop.extensions import db
    from coop.jobs import services as jobs
    from coop.jobs.models import Job
    from coop.messages.models import Message
    from coop.payouts import services as payouts

    out = {}
    with app.app_context():
        treasurer = db.session.get(User, treasurer_id)
        lines = list(db.session.scalars(select(payouts.PayoutLine.id).where(
            payouts.PayoutLine.batch_id == batch_id).order_by(payouts.PayoutLine.id)))
        file = "line_id,status,reference\r\n" + "".join(
            f"{lid},{'failed' if lid % 50 == 0 else 'paid'},BANK-{lid}\r\n" for lid in lines)
        out["lines"] = len(lines)
        messages_before = db.session.scalar(select(func.count()).select_from(Message))
        jobs_before = db.session.scalar(select(func.count()).select_from(Job))
        db.session.commit()
        for attempt in ("first", "again"):
            counter = Counter()
            event.listen(db.engine, "before_cursor_execute", counter)
            profiler = None
            if profile and attempt == "first":
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            start = time.perf_counter()
            result = payouts.import_confirmations(payouts.get_batch(batch_id), treasurer, file)
            db.session.commit()
            out[f"{attempt}_s"] = time.perf_counter() - start
            if profiler is not None:
                import pstats
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").print_stats(30)
                stats.sort_stats("tottime").print_stats(25)
            event.remove(db.engine, "before_cursor_execute", counter)
            out[f"{attempt}_statements"] = counter.count
            out[f"{attempt}_load"] = load()
            out[f"{attempt}_moved"] = len(result.paid) + len(result.failed)
            # The farmers' messages: written by the jobs the import enqueued (a worker's
            # work, seconds after the import's commit), run here one after the other.
            tell = list(db.session.scalars(select(Job.id).where(
                Job.task == payouts.TELL_TASK, Job.status == "pending").order_by(Job.id)))
            db.session.commit()
            start = time.perf_counter()
            for job_id in tell:
                assert jobs.run(job_id).status == "done", job_id
            out[f"{attempt}_tell_s"] = time.perf_counter() - start
            out[f"{attempt}_tell_jobs"] = len(tell)
            if attempt == "first":
                out["paid"], out["failed"] = len(result.paid), len(result.failed)
                out["messages"] = db.session.scalar(
                    select(func.count()).select_from(Message)) - messages_before
                out["jobs"] = db.session.scalar(select(func.count()).select_from(Job)) \
                    - jobs_before
        out["messages_after_again"] = db.session.scalar(
            select(func.count()).select_from(Message)) - messages_before
    return out


def run(url: str, label: str, farmers: int, sizes: list[int], profile: bool) -> dict:
    from sqlalchemy import event

    from coop.auth import services as auth_services
    from coop.cooperatives import services as coop_services
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.ledger import services as ledger
    from coop.payouts import services as payouts

    small = [s for s in sizes if s < farmers]
    app = fresh_app(url)
    t0 = time.perf_counter()
    coop_id, _manager_id, _buyers = seed_market(app, farmers=farmers)
    mixed = mix_recipients(app, coop_id)
    count, total = owe_everyone(app, coop_id)
    with app.app_context():
        treasurer = auth_services.create_user(email="bench-treasurer@example.org",
                                              name="Treasurer", password="bench-password-1")
        coop_services.grant_role(db.session.get(Cooperative, coop_id), treasurer, "treasurer")
        db.session.commit()
        treasurer_id = treasurer.id
    others = {}
    for size in small:  # a second rail's farmers for each smaller file
        ids = second_rail(app, coop_id, size)
        owe_everyone(app, coop_id, key=f"bench:intake:{size}", farmer_ids=ids)
        others[size] = ids
    analyze(app)
    setup = time.perf_counter() - t0
    figures = {"farmers": count, "setup_s": setup, "recipients": mixed}
    with app.app_context():
        coop = db.session.get(Cooperative, coop_id)
        treasurer = db.session.get(type(treasurer), treasurer_id)
        counter = Counter()
        event.listen(db.engine, "before_cursor_execute", counter)
        start = time.perf_counter()
        batch, _created = payouts.create_batch(coop, treasurer, rail="nequi")
        db.session.commit()
        figures["batch_s"] = time.perf_counter() - start
        figures["batch_load"] = load()
        event.remove(db.engine, "before_cursor_execute", counter)
        figures["batch_statements"] = counter.count
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
        small_batches = {}
        for size in small:
            made, _ = payouts.create_batch(coop, treasurer, rail="bank")
            db.session.commit()
            small_batches[size] = made.id
    print(f"{label}: {count:,} farmers ({mixed['sms']:,} by SMS, {mixed['english']:,} in "
          f"English; set-up {setup:.1f} s)\n"
          f"  payout batch: {figures['batch_s']:.2f} s, {figures['batch_statements']} SQL "
          f"statements (target < 2 s; {figures['batch_load']}); loading its lines for the "
          f"answer: {figures['load_s']:.2f} s\n"
          f"  export CSV ({figures['export_rows']:,} rows): {figures['export_s']:.2f} s",
          flush=True)
    imports = {}
    for size in sorted(sizes):
        target = small_batches.get(size, batch_id)
        got = confirm(app, target, treasurer_id, profile=profile and size == max(sizes))
        imports[size] = got
        print(f"  confirmation file of {got['lines']:,} lines ({got['paid']:,} paid, "
              f"{got['failed']:,} failed): {got['first_s']:.2f} s "
              f"({got['lines'] / got['first_s']:,.0f} lines/s, {got['first_statements']} SQL "
              f"statements, {got['first_tell_jobs']} "
              f"job{'s' if got['first_tell_jobs'] != 1 else ''} telling the farmers; "
              f"{got['first_load']})\n"
              f"    the farmers told by those jobs, one after the other: "
              f"{got['first_tell_s']:.2f} s ({got['messages']:,} messages in "
              f"{got['jobs'] - got['first_tell_jobs']:,} send jobs)\n"
              f"    imported again: {got['again_s']:.3f} s ({got['again_statements']} SQL "
              f"statements, {got['again_moved']} lines moved, "
              f"{got['messages_after_again'] - got['messages']} new messages; "
              f"{got['again_load']})", flush=True)
    figures["imports"] = imports
    with app.app_context():
        problems = ledger.check()
    figures["ledger_check"] = "ok" if not problems else problems[:3]
    print(f"  ledger check: {figures['ledger_check']}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="both", choices=("sqlite", "postgresql", "both"))
    parser.add_argument("--farmers", type=int, default=10_000)
    parser.add_argument("--confirm", default="1000,10000",
                        help="lines of each confirmation file, comma-separated")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sizes = sorted({min(int(x), args.farmers) for x in args.confirm.split(",") if x.strip()})
    for label, url in databases(args.db):
        run(url, label, args.farmers, sizes, args.profile)


if __name__ == "__main__":
    main()
