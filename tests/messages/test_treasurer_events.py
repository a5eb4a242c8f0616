"""What a treasurer is told: a bank's confirmation file with failed lines (once an import),
differences found by reconciliation (once a coop a day, however often it runs)."""
from __future__ import annotations

import io

from coop.common.models import utcnow
from coop.extensions import db
from coop.jobs import services as jobs
from coop.ledger import services as ledger
from coop.payouts import services as payouts
from coop.treasury import bank_statement
from tests.plugins.payouts import bank_confirmation
from tests.support.sent import messages_to

HEADER = "id,Type,Source,Amount,Fee,Net,Currency,Created (UTC),Available On (UTC)\n"


def test_a_file_with_failed_lines_tells_the_treasurer_once(world, client, token, mailbox):
    w = world
    w.treasurer.locale = "es"
    db.session.commit()
    batch, _ = payouts.create_batch(w.coop, w.treasurer)
    db.session.commit()
    lines = {line.farmer_user_id: line for line in batch.lines}
    body = bank_confirmation((lines[w.nequi.id].id, "failed", ""),
                             (lines[w.bank.id].id, "failed", ""),
                             (lines[w.cash.id].id, "paid", "C-1"))
    headers = token(w.treasurer)
    for _ in range(2):
        response = client.post(f"/api/v1/payout-batches/{batch.id}/confirmations", data=body,
                               headers=headers, content_type="text/csv")
        assert response.status_code == 200, response.json
    jobs.drain()
    [message] = messages_to(w.treasurer.id, "treasurer.import_failures")
    assert message.event.startswith(f"payout-import:{batch.id}:")
    assert message.channel == "email" and message.status == "sent"
    assert message.subject == f"Lote de pagos #{batch.id}: 2 pagos fallidos"
    assert message.link == f"http://minga.test/manage/payout-batches/{batch.id}"
    [got] = [g for g in mailbox if g.rcpt_tos == [w.treasurer.email]]
    assert got.subject == message.subject and message.link in got.text
    # The other coop's treasurer hears nothing.
    assert messages_to(w.other_treasurer.id) == []


def test_a_file_without_failures_tells_the_treasurer_nothing(world):
    w = world
    batch, _ = payouts.create_batch(w.coop, w.treasurer)
    payouts.apply_confirmations(batch, w.treasurer, [
        (i + 1, line.id, "paid", f"R{line.id}") for i, line in enumerate(batch.lines)])
    db.session.commit()
    jobs.drain()
    assert messages_to(w.treasurer.id, "treasurer.import_failures") == []


def test_differences_found_tell_the_treasurer_once_a_day(market, login, mailbox):
    m = market
    ledger.post(m.coop, key="cap:ch_p1", kind="capture", external_ref="ch_p1",
                lines=[ledger.debit("stripe_clearing", 10_000),
                       ledger.credit("buyer_deposits", 10_000)])
    db.session.commit()
    client = login(m.treasurer)
    today = utcnow().date()
    data = {"file": (io.BytesIO((HEADER + f"txn_p1,charge,ch_p1,90.00,1.00,89.00,cop,"
                                 f"{today} 10:00:00,\n").encode()), "balance.csv")}
    response = client.post(f"/manage/coops/{m.coop.id}/treasury/stripe/import", data=data,
                           content_type="multipart/form-data")
    assert response.status_code == 302
    again = client.post(f"/manage/coops/{m.coop.id}/treasury/stripe/reconcile")
    assert again.status_code == 302
    # The bank's statement the same day, with a line nothing matches: the same day's notice.
    bank_statement.import_bank_statement(m.coop, m.treasurer, io.BytesIO(
        f"date,description,amount,reference\n{today},Consignacion,700.00,CONS-1\n".encode()))
    db.session.commit()
    jobs.drain()
    [message] = messages_to(m.treasurer.id, "treasurer.reconciliation")
    assert message.event == f"reconcile:{m.coop.id}:{today.isoformat()}"
    assert message.channel == "email" and message.status == "sent"
    assert message.subject == "Conciliación: 1 diferencias"
    assert message.link == f"http://minga.test/manage/coops/{m.coop.id}/treasury/reconciliation"
    assert [g.subject for g in mailbox if g.rcpt_tos == [m.treasurer.email]] == \
        [message.subject]
    # Another day's run is another notice.
    from coop.treasury import stripe_reconciliation
    from datetime import timedelta
    stripe_reconciliation.tell_differences(m.coop, 2, now=utcnow() + timedelta(days=1))
    db.session.commit()
    assert len(messages_to(m.treasurer.id, "treasurer.reconciliation")) == 2
