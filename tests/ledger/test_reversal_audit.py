"""Reversing a ledger entry from the page, POSTed again and again (a double tap, a retry, a
script): one reversal and ONE audit event, with the first reason — not one event per POST
with a different reason each (issue 10 §4)."""
from __future__ import annotations

from sqlalchemy import func, select

from coop.audit import services as audit
from coop.audit.models import AuditEvent
from coop.extensions import db
from coop.ledger import services as ledger
from coop.ledger.models import LedgerEntry


def test_repeated_reversal_posts_write_one_audit_event(make_coop, make_user, login):
    treasurer = make_user(name="Tesorera")
    coop = make_coop(treasurer=treasurer)
    entry = ledger.post(coop, key="manual-1", kind="manual",
                        lines=[ledger.debit("stripe_clearing", 10_000),
                               ledger.credit("buyer_deposits", 10_000)])
    db.session.commit()
    client = login(treasurer)
    url = f"/manage/coops/{coop.id}/ledger/entries/{entry.id}/reverse"
    for n in range(32):
        assert client.post(url, data={"reason": f"reason number {n}"}).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.reverses_id == entry.id)) == 1
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.coop_id == coop.id, AuditEvent.action == "ledger.reverse")).all()
    assert len(events) == 1
    assert "reason number 0" in events[0].after_json
    assert ledger.balance(coop, "stripe_clearing") == 0


def test_record_once_records_the_first_time_only(make_coop):
    coop = make_coop()
    assert audit.record_once(coop.id, None, "ledger.reverse", "ledger_entry", 7, {}, {"a": 1})
    assert not audit.record_once(coop.id, None, "ledger.reverse", "ledger_entry", 7, {}, {"a": 2})
    assert audit.record_once(coop.id, None, "ledger.reverse", "ledger_entry", 8, {}, {"a": 3})
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "ledger.reverse")) == 2  # the founding's role events apart
