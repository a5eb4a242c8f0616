"""The bank's confirmation file applied set-based (issue 12, part 3): the ledger entries of a
file through the ledger's bulk writer, one balanced entry per paid line under its key; the
same file again posts and tells nothing; two imports at once never pay a line twice; a bad
row refuses the file with nothing written; farmers are told in their language, with the
texts the one-at-a-time path writes. After every test the ledger must be sound."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from coop.audit.models import AuditEvent
from coop.extensions import db
from coop.jobs import services as jobs
from coop.jobs.models import Job
from coop.ledger import services as ledger
from coop.ledger.models import LedgerEntry
from coop.messages import services as messages
from coop.messages.models import Message
from coop.payouts import services as payouts
from coop.payouts.models import PayoutLine
from tests.plugins.payouts import bank_confirmation, owe
from tests.support.sent import messages_to


@pytest.fixture(autouse=True)
def ledger_stays_sound(app):
    yield
    db.session.rollback()
    assert ledger.check() == []


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def everything() -> tuple:
    """What an import may write: entries, audit events, messages, jobs, and the lines."""
    db.session.expire_all()
    return (_count(LedgerEntry), _count(AuditEvent), _count(Message), _count(Job),
            tuple(db.session.execute(select(PayoutLine.id, PayoutLine.status,
                                            PayoutLine.reference, PayoutLine.entry_id)
                                     .order_by(PayoutLine.id)).all()))


def farmers_owed(make_coop, make_user, make_farmer, n: int):
    """A coop whose `n` farmers (nequi, bank and cash by turns; every third reads English)
    are owed different amounts, and the batch that pays them."""
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    rails = [("nequi", "300{:07d}"), ("bank", "4{:07d}"), ("cash", "")]
    farmers = []
    for i in range(n):
        rail, account = rails[i % 3]
        farmer = make_farmer(coop, name=f"Farmer {i}", rail=rail, account=account.format(i))
        if i % 3 == 1:
            farmer.locale = "en"
        farmers.append(farmer)
        owe(coop, farmer, 10_000_00 + 1_234_00 * i)
    db.session.commit()
    batch, _ = payouts.create_batch(coop, treasurer)
    db.session.commit()
    return coop, treasurer, batch, farmers


def test_a_bulk_import_posts_one_balanced_entry_per_paid_line(make_coop, make_user,
                                                              make_farmer):
    coop, treasurer, batch, farmers = farmers_owed(make_coop, make_user, make_farmer, 7)
    lines = {line.id: line for line in batch.lines}
    failed = sorted(lines)[2]
    rows = [(line_id, "failed" if line_id == failed else "paid", f"BANK-{line_id}")
            for line_id in sorted(lines)]
    bank_before = ledger.balance(coop, "bank")
    result = payouts.import_confirmations(batch, treasurer, bank_confirmation(*rows))
    db.session.commit()
    paid = [line_id for line_id in sorted(lines) if line_id != failed]
    assert result.paid == paid and result.failed == [failed] and result.unchanged == []
    entries = list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "payout")
                                      .order_by(LedgerEntry.id)))
    assert len(entries) == len(paid)
    by_key = {entry.idempotency_key: entry for entry in entries}
    assert set(by_key) == {f"payout_line:{line_id}" for line_id in paid}
    for line_id in paid:
        line = db.session.get(PayoutLine, line_id)
        entry = by_key[f"payout_line:{line_id}"]
        assert line.status == "paid" and line.entry_id == entry.id
        assert line.reference == entry.external_ref == f"BANK-{line_id}"
        assert (entry.source_type, entry.source_id) == ("payout_line", line_id)
        assert entry.created_by_id == treasurer.id and entry.status == "posted"
        against = "cash" if line.rail == "cash" else "bank"
        assert sorted((p.account.code, p.amount_minor) for p in entry.postings) == sorted([
            (ledger.farmer_payable(line.farmer_user_id), line.amount_minor),
            (against, -line.amount_minor)])
        assert sum(p.amount_minor for p in entry.postings) == 0
        # The fingerprint `post` would compute: the same key posted again finds this entry.
        again = ledger.post(coop, key=f"payout_line:{line_id}", kind="payout", lines=[
            ledger.debit(ledger.farmer_payable(line.farmer_user_id), line.amount_minor),
            ledger.credit(against, line.amount_minor)])
        assert again.id == entry.id
        assert ledger.balance(coop, ledger.farmer_payable(line.farmer_user_id)) == 0
    gone = sum(lines[i].amount_minor for i in paid if lines[i].rail != "cash")
    assert ledger.balance(coop, "bank") == bank_before - gone
    failed_line = db.session.get(PayoutLine, failed)
    assert failed_line.status == "failed" and failed_line.entry_id is None
    assert failed_line.reference == f"BANK-{failed}"
    actions = dict(db.session.execute(select(AuditEvent.object_id, AuditEvent.action).where(
        AuditEvent.object_type == "payout_line")).all())
    assert actions == {str(i): ("payouts.line_failed" if i == failed else "payouts.line_paid")
                       for i in lines}


def test_the_import_costs_the_same_statements_for_3_and_12_lines(make_coop, make_user,
                                                                 make_farmer, count_queries):
    """Set-based: no statement a line (the ledger, the lines, the audit, the messages)."""
    def statements(n: int) -> int:
        _coop, treasurer, batch, _farmers = farmers_owed(make_coop, make_user, make_farmer, n)
        body = bank_confirmation(*[(line.id, "paid", f"R{line.id}") for line in batch.lines])
        with count_queries() as counter:
            payouts.import_confirmations(batch, treasurer, body)
            db.session.commit()
        return len(counter.statements)
    assert statements(3) == statements(12)


def test_the_same_file_again_posts_nothing_and_tells_nobody_twice(make_coop, make_user,
                                                                   make_farmer,
                                                                   count_queries):
    coop, treasurer, batch, farmers = farmers_owed(make_coop, make_user, make_farmer, 5)
    body = bank_confirmation(*[(line.id, "paid", f"R{line.id}") for line in batch.lines])
    payouts.import_confirmations(batch, treasurer, body)
    db.session.commit()
    jobs.drain()
    told = messages_to(template="farmer.paid")
    assert sorted(m.user_id for m in told) == sorted(f.id for f in farmers)
    before = everything()
    with count_queries() as counter:
        result = payouts.import_confirmations(payouts.get_batch(batch.id), treasurer, body)
        db.session.commit()
    assert result.paid == [] and result.failed == []
    assert sorted(result.unchanged) == sorted(line.id for line in batch.lines)
    assert everything() == before  # no entry, audit event, message or job
    assert len(counter.statements) <= 8  # the batch and its lines, nothing a line
    # Even with other references, or through the one-row path of a cash receipt.
    cash = next(line for line in batch.lines if line.rail == "cash")
    payouts.apply_confirmations(batch, treasurer, [(1, cash.id, "paid", "CASH-2")])
    db.session.commit()
    assert everything() == before


def test_two_imports_at_once_pay_each_line_once(app, make_coop, make_user, make_farmer):
    """Two treasurers import the same file at the same moment, each in its own transaction:
    one moves the lines, the other finds them paid (PostgreSQL: the coop's advisory lock;
    SQLite: the first to write is the only writer until it commits)."""
    coop, treasurer, batch, farmers = farmers_owed(make_coop, make_user, make_farmer, 6)
    body = bank_confirmation(*[(line.id, "paid", f"R{line.id}") for line in batch.lines])
    batch_id, treasurer_id = batch.id, treasurer.id
    barrier = threading.Barrier(2)
    outcomes: list = []
    lock = threading.Lock()

    def run():
        with app.app_context():
            from coop.auth.models import User
            try:
                user = db.session.get(User, treasurer_id)
                mine = payouts.get_batch(batch_id)
                barrier.wait(timeout=30)
                result = payouts.import_confirmations(mine, user, body)
                db.session.commit()
                outcome = (len(result.paid), len(result.unchanged))
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
                db.session.rollback()
                outcome = f"{type(exc).__name__}: {exc}"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes, key=str) == [(0, 6), (6, 0)], outcomes
    jobs.drain()
    db.session.expire_all()
    assert _count(LedgerEntry, LedgerEntry.kind == "payout") == 6
    assert _count(AuditEvent, AuditEvent.action == "payouts.line_paid") == 6
    assert len(messages_to(template="farmer.paid")) == 6
    assert {line.status for line in payouts.get_batch(batch_id).lines} == {"paid"}
    for farmer in farmers:
        assert ledger.balance(coop, ledger.farmer_payable(farmer.id)) == 0


def test_a_bad_row_refuses_the_file_with_nothing_half_written(world, make_coop, make_user,
                                                              make_farmer):
    coop, treasurer, batch, farmers = farmers_owed(make_coop, make_user, make_farmer, 4)
    ids = sorted(line.id for line in batch.lines)
    foreign, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    before = everything()
    good = [(line_id, "paid", f"R{line_id}") for line_id in ids]
    bad_files = {
        "a line of another coop's batch": (
            bank_confirmation(*good[:2], (foreign.lines[0].id, "paid", "R"), *good[2:]),
            "Row 4: line %d is not part of batch %d." % (foreign.lines[0].id, batch.id)),
        "a paid line without reference": (
            bank_confirmation(*good[:3], (ids[3], "paid", "")), "Row 5"),
    }
    for name, (body, expected) in bad_files.items():
        with pytest.raises(payouts.ValidationFailed) as exc:
            payouts.import_confirmations(batch, treasurer, body)
        assert exc.value.code == "invalid_confirmation_file", name
        assert expected in " ".join(exc.value.fields["file"]), (name, exc.value.fields)
        db.session.rollback()
        assert everything() == before, name
    # A payable that shrank since the batch was made: the ledger refuses that line's entry;
    # the refusal names its row (the third), and nothing of the file is written.
    third = db.session.get(PayoutLine, ids[2])
    ledger.post(coop, key="correction", kind="adjustment",
                lines=[ledger.debit(ledger.farmer_payable(third.farmer_user_id), 1_00),
                       ledger.credit("bank", 1_00)])
    db.session.commit()
    before = everything()
    with pytest.raises(payouts.ValidationFailed) as exc:
        payouts.import_confirmations(batch, treasurer, bank_confirmation(*good))
    problems = " ".join(exc.value.fields["file"])
    assert f"Row 4: line {ids[2]} cannot be posted: Not enough in Owed to farmer" in problems
    db.session.rollback()
    assert everything() == before
    # The rest of the file, without that line, goes through.
    result = payouts.import_confirmations(batch, treasurer, bank_confirmation(
        *[row for row in good if row[0] != ids[2]]))
    db.session.commit()
    assert len(result.paid) == 3


def test_farmers_are_told_in_their_language_with_the_single_path_texts(
        make_coop, make_user, make_farmer):
    coop, treasurer, batch, farmers = farmers_owed(make_coop, make_user, make_farmer, 6)
    sms = farmers[3]  # a farmer without e-mail, Spanish, told by SMS
    sms.email, sms.phone = None, "+573001112233"
    db.session.commit()
    lines = sorted(batch.lines, key=lambda line: line.id)
    failed = lines[4].id
    rows = [(line.id, "failed" if line.id == failed else "paid", f"NQ-{line.id}")
            for line in lines]
    payouts.import_confirmations(batch, treasurer, bank_confirmation(*rows))
    db.session.commit()
    jobs.drain()
    told = {m.user_id: m for m in messages_to() if m.template.startswith("farmer.")}
    assert set(told) == {f.id for f in farmers}
    by_farmer = {line.farmer_user_id: line for line in lines}
    for farmer in farmers:
        message = told[farmer.id]
        line = by_farmer[farmer.id]
        spanish = (farmer.locale or "es") == "es"
        assert message.locale == ("es_CO" if spanish else "en")
        assert message.template == ("farmer.payment_failed" if line.id == failed
                                    else "farmer.paid")
        assert message.event == f"payout-line:{line.id}:{line.status}"
        if spanish and line.id != failed:
            assert message.body.startswith("Minga: le pagamos "), message.body
        if not spanish and line.id != failed:
            assert message.body.startswith("Minga: you were paid "), message.body
    assert told[sms.id].channel == "sms" and told[sms.id].to_address == "+573001112233"
    assert told[sms.id].body.startswith("Minga: le pagamos ")
    assert told[sms.id].segments == 1
    # Character for character what `notify` writes for the same event, one person at a time.
    for farmer in farmers:
        bulk = told[farmer.id]
        line = by_farmer[farmer.id]
        [single] = messages.notify(
            farmer.id, bulk.template, event=f"probe:{line.id}", coop_id=coop.id, send=False,
            amount=messages.Money(line.amount_minor, line.currency),
            rail=messages.Label("rail", line.rail), reference=line.reference,
            coop=coop.name, link="/my/payments")
        assert (single.body, single.subject, single.locale, single.channel,
                single.to_address, single.segments, single.encoding, single.link) == (
            bulk.body, bulk.subject, bulk.locale, bulk.channel, bulk.to_address,
            bulk.segments, bulk.encoding, bulk.link), farmer.id
    db.session.rollback()
    # Their sending: one job for the farmers' messages (50 a job), one for the treasurer's.
    assert _count(Job, Job.task == "messages.send") == 2


def test_the_bulk_lookup_of_people_answers_as_the_one_at_a_time(world, make_buyer):
    w = world
    w.nequi.email, w.nequi.phone, w.nequi.locale = None, "+573001234567", "es"
    w.bank.locale, w.bank.channel, w.bank.timezone = "en", "sms", "America/Lima"
    w.cash.phone, w.cash.channel = "+573009998877", "whatsapp"
    buyer = make_buyer()
    db.session.commit()
    people = [w.nequi, w.bank, w.cash, w.idle, w.treasurer, w.manager, buyer, w.other_farmer]
    ids = {p.id for p in people} | {999_999}
    assert messages.recipients(ids) == {p.id: messages.recipient(p.id) for p in people}


def test_notify_many_skips_opted_out_and_those_told_already(world):
    w = world
    messages.unsubscribe(w.bank.id, "updates")
    db.session.commit()
    notices = [messages.Notice(p.id, "farmer.harvest_listed", event="bulk-probe:1",
                               context={"kg": messages.Kg(12_500), "coop": w.coop.name,
                                        "crop": messages.Label("crop", "coffee")})
               for p in (w.nequi, w.bank, w.cash)]
    first = messages.notify_many(notices, coop_id=w.coop.id)
    db.session.commit()
    assert len(first) == 2  # Beto stopped the updates
    assert messages.notify_many(notices, coop_id=w.coop.id) == []  # told already
    db.session.commit()
    assert {m.user_id for m in messages_to(template="farmer.harvest_listed")} == {
        w.nequi.id, w.cash.id}


def test_the_farmers_are_told_by_jobs_of_the_imports_own_transaction(make_coop, make_user,
                                                                      make_farmer,
                                                                      monkeypatch):
    """The import enqueues the telling in its transaction: rolled back, nobody is told and no
    job is left; committed, jobs of TELL_CHUNK lines tell each farmer once, however often
    they run."""
    monkeypatch.setattr(payouts, "TELL_CHUNK", 2)
    coop, treasurer, batch, farmers = farmers_owed(make_coop, make_user, make_farmer, 5)
    lines = sorted(batch.lines, key=lambda line: line.id)
    body = bank_confirmation(*[(line.id, "failed" if line is lines[0] else "paid",
                                f"R{line.id}") for line in lines])

    def tell_jobs() -> list[Job]:
        db.session.expire_all()
        return list(db.session.scalars(select(Job).where(Job.task == payouts.TELL_TASK)
                                       .order_by(Job.id)))

    payouts.import_confirmations(batch, treasurer, body)
    db.session.rollback()
    assert tell_jobs() == [] and messages_to(template="farmer.paid") == []
    payouts.import_confirmations(payouts.get_batch(batch.id), treasurer, body)
    db.session.commit()
    assert messages_to(template="farmer.paid") == []  # not in the import's request
    import json
    chunks = [json.loads(job.payload)["line_ids"] for job in tell_jobs()]
    assert chunks == [[lines[0].id, lines[1].id], [lines[2].id, lines[3].id], [lines[4].id]]
    jobs.drain()
    assert {j.status for j in tell_jobs()} == {"done"}
    paid = messages_to(template="farmer.paid")
    assert sorted(m.user_id for m in paid) == sorted(line.farmer_user_id for line in lines[1:])
    [failed] = messages_to(template="farmer.payment_failed")
    assert failed.user_id == lines[0].farmer_user_id
    assert failed.event == f"payout-line:{lines[0].id}:failed"
    # A job run again (a worker that died after its commit) writes nothing more.
    before = everything()
    assert payouts.tell_confirmed(batch.id, [line.id for line in lines]) == []
    db.session.commit()
    assert everything() == before
