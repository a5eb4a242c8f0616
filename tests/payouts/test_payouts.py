"""Payouts (issue 4, "Payouts"): what is due, batches per rail, bulk files, the bank's
confirmations, cash receipts, the farmer's payments page, the API rows and who may do what.
After every test the ledger must be sound (coop.ledger.services.check() == [])."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from coop.cooperatives.models import FarmerProfile
from coop.extensions import db
from coop.ledger import services as ledger
from coop.audit.models import AuditEvent
from coop.ledger.models import LedgerEntry
from coop.payouts import services as payouts
from coop.payouts.models import PayoutBatch, PayoutExclusion, PayoutLine
from tests.plugins.payouts import bank_confirmation, due_of, owe, set_account
from tests.support.confirm import confirm, is_confirmation

CLABE = "002010077777777771"
BATCH_FIELDS = {"id", "status", "total_minor", "lines"}
LINE_FIELDS = {"id", "farmer_id", "amount_minor", "rail", "status"}


@pytest.fixture(autouse=True)
def ledger_stays_sound(app):
    yield
    db.session.rollback()
    assert ledger.check() == []


def page_body(html):
    return html.split('<main id="main">', 1)[1].split("</main>", 1)[0]


def parse_csv(text):
    return list(csv.DictReader(io.StringIO(text)))




def counts():
    return (db.session.scalar(select(func.count()).select_from(LedgerEntry)),
            db.session.scalar(select(func.count()).select_from(AuditEvent)),
            tuple(db.session.execute(select(PayoutLine.id, PayoutLine.status, PayoutLine.reference)
                                     .order_by(PayoutLine.id)).all()))




# ---------------------------------------------------------------- amounts due and batches

def test_amount_due_is_the_payable_less_unconfirmed_lines(world):
    items = {p.farmer_id: p for p in payouts.payables(world.coop)}
    assert set(items) == {world.nequi.id, world.bank.id, world.cash.id}
    assert items[world.nequi.id].amount_due_minor == 150_000_00
    assert items[world.bank.id].rail == "bank" and items[world.bank.id].account == "12345678"
    batch, created = payouts.create_batch(world.coop, world.treasurer, rail="nequi")
    db.session.commit()
    assert created
    items = {p.farmer_id: p for p in payouts.payables(world.coop)}
    assert items[world.nequi.id].owed_minor == 150_000_00
    assert items[world.nequi.id].in_batches_minor == 150_000_00
    assert items[world.nequi.id].amount_due_minor == 0
    assert items[world.bank.id].amount_due_minor == 80_000_50
    owe(world.coop, world.nequi, 5_000_00)  # a new delivery while the batch waits
    assert due_of(world.coop, world.nequi) == 5_000_00


def test_batch_for_every_rail_pays_each_farmer_by_their_rail(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    lines = {line.farmer_user_id: line for line in batch.lines}
    assert set(lines) == {world.nequi.id, world.bank.id, world.cash.id}
    assert lines[world.nequi.id].rail == "nequi" and lines[world.nequi.id].account == "3001234567"
    assert lines[world.bank.id].rail == "bank" and lines[world.bank.id].bank_name == "Banco Agrario"
    assert lines[world.cash.id].rail == "cash"
    assert {line.amount_minor for line in batch.lines} == {150_000_00, 80_000_50, 20_000_00}
    assert batch.total_minor == 250_000_50 and batch.status == "open"
    assert all(line.status == "pending" for line in batch.lines)
    # Nothing moves in the ledger until the bank confirms.
    assert ledger.balance(world.coop, ledger.farmer_payable(world.nequi.id)) == 150_000_00
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action ==
                                                       "payouts.batch_created"))
    assert event.object_id == str(batch.id) and event.user_id == world.treasurer.id


def test_batch_for_one_rail_leaves_the_others_due(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    db.session.commit()
    assert [(line.farmer_user_id, line.rail) for line in batch.lines] == [(world.bank.id, "bank")]
    assert batch.rail == "bank"
    assert due_of(world.coop, world.nequi) == 150_000_00
    second, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    assert {line.farmer_user_id for line in second.lines} == {world.nequi.id, world.cash.id}


def test_nothing_due_is_a_conflict_and_writes_nothing(world):
    payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(PayoutBatch))
    with pytest.raises(payouts.Conflict) as exc:
        payouts.create_batch(world.coop, world.treasurer)
    assert exc.value.code == "nothing_due" and exc.value.status == 409
    db.session.rollback()
    with pytest.raises(payouts.Conflict):
        payouts.create_batch(world.coop, world.treasurer, rail="spei")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == before


def test_unknown_rail_is_refused(world):
    with pytest.raises(payouts.ValidationFailed) as exc:
        payouts.create_batch(world.coop, world.treasurer, rail="paypal")
    assert exc.value.code == "unknown_rail"


def test_same_idempotency_key_makes_one_batch(world):
    first, created = payouts.create_batch(world.coop, world.treasurer, idempotency_key="k1")
    db.session.commit()
    again, created_again = payouts.create_batch(world.coop, world.treasurer, idempotency_key="k1")
    assert created and not created_again and again.id == first.id
    with pytest.raises(payouts.ValidationFailed) as exc:
        payouts.create_batch(world.coop, world.treasurer, rail="cash", idempotency_key="k1")
    assert exc.value.code == "idempotency_key_reused"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == 1
    assert db.session.scalar(select(func.count()).select_from(PayoutLine)) == 3


def test_invalid_account_is_left_out_with_the_reason_and_stays_due(world, make_farmer):
    bad = make_farmer(world.coop, name="Eva", rail="nequi", account="3001112222")
    set_account(world.coop, bad, "nequi", "12345")
    owe(world.coop, bad, 9_000_00)
    spei = make_farmer(world.coop, name="Fito", rail="spei", account=CLABE)
    set_account(world.coop, spei, "spei", CLABE[:-1] + "2")  # wrong check digit
    owe(world.coop, spei, 7_000_00)
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    assert bad.id not in {line.farmer_user_id for line in batch.lines}
    reasons = {x.farmer_user_id: x for x in batch.exclusions}
    assert "Nequi" in reasons[bad.id].reason and reasons[bad.id].amount_minor == 9_000_00
    assert "CLABE" in reasons[spei.id].reason
    assert due_of(world.coop, bad) == 9_000_00
    # Corrected, the farmer is paid in the next batch.
    set_account(world.coop, bad, "nequi", "3001112222")
    batch2, _ = payouts.create_batch(world.coop, world.treasurer, rail="nequi")
    db.session.commit()
    assert [(line.farmer_user_id, line.amount_minor) for line in batch2.lines] == [
        (bad.id, 9_000_00)]


def test_only_left_out_farmers_is_nothing_due_with_the_reasons(world, make_farmer):
    bad = make_farmer(world.coop, name="Eva", rail="bank", account="12345678")
    set_account(world.coop, bad, "bank", "12")
    owe(world.coop, bad, 1_000_00)
    # Beto (bank, valid) is also on the rail: the batch pays him and leaves Eva out.
    first, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    assert [line.farmer_user_id for line in first.lines] == [world.bank.id]
    db.session.commit()
    with pytest.raises(payouts.Conflict) as exc:
        payouts.create_batch(world.coop, world.treasurer, rail="bank")
    assert exc.value.code == "nothing_due"
    assert any("bank account" in p for p in exc.value.fields["left_out"])


def test_yape_lines_stop_at_the_monthly_cap(make_coop, make_user, make_farmer):
    treasurer = make_user()
    coop = make_coop(country="PE", currency="PEN", treasurer=treasurer)
    farmer = make_farmer(coop, rail="yape", account="912345678")
    owe(coop, farmer, 30_000_00)
    now = datetime(2026, 11, 10, tzinfo=timezone.utc)
    batch, _ = payouts.create_batch(coop, treasurer, now=now)
    db.session.commit()
    (line,) = batch.lines
    assert line.amount_minor == payouts.YAPE_MONTHLY_CAP_MINOR == 25_750_00
    assert "Yape" in line.flag
    assert due_of(coop, farmer) == 4_250_00
    # Same month: the cap is reached (the pending line counts), so the farmer is left out.
    with pytest.raises(payouts.Conflict):
        payouts.create_batch(coop, treasurer, now=now + timedelta(days=1))
    db.session.rollback()
    payouts.import_confirmations(batch, treasurer, bank_confirmation((line.id, "paid", "YP-1")))
    db.session.commit()
    db.session.execute(PayoutLine.__table__.update().where(PayoutLine.id == line.id)
                       .values(confirmed_at=now))
    db.session.commit()
    with pytest.raises(payouts.Conflict) as exc:
        payouts.create_batch(coop, treasurer, now=now + timedelta(days=2))
    assert "Yape" in exc.value.fields["left_out"][0]
    db.session.rollback()
    # Next month there is room again.
    later, _ = payouts.create_batch(coop, treasurer, now=datetime(2026, 12, 1, 8,
                                                                  tzinfo=timezone.utc))
    db.session.commit()
    assert [line.amount_minor for line in later.lines] == [4_250_00]
    assert later.lines[0].flag == ""


def test_breb_amounts_over_the_transfer_limit_are_split(world, make_farmer):
    farmer = make_farmer(world.coop, name="Gus", rail="breb", account="@GUS123")
    owe(world.coop, farmer, 25_000_000_00)
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="breb")
    db.session.commit()
    amounts = [line.amount_minor for line in batch.lines]
    assert amounts == [11_500_000_00, 11_500_000_00, 2_000_000_00]
    assert all(line.account == "@GUS123" and "Bre-B" in line.flag for line in batch.lines)
    assert sum(amounts) == batch.total_minor == 25_000_000_00
    assert due_of(world.coop, farmer) == 0


def test_breb_under_the_limit_is_one_line(world, make_farmer):
    farmer = make_farmer(world.coop, name="Hugo", rail="breb", account="1234567")
    owe(world.coop, farmer, 11_500_000_00)
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="breb")
    assert [(line.amount_minor, line.flag) for line in batch.lines] == [(11_500_000_00, "")]
    db.session.commit()


def test_batch_build_costs_the_same_queries_for_5_and_40_farmers(
        make_coop, make_user, make_farmer, count_queries):
    def build(n):
        treasurer = make_user()
        coop = make_coop(treasurer=treasurer)
        for _ in range(n):
            owe(coop, make_farmer(coop, rail="nequi", account="3001234567"), 1_000_00)
        with count_queries() as counter:
            batch, _ = payouts.create_batch(coop, treasurer)
            assert len(batch.lines) == n
        db.session.commit()
        return counter.count
    assert build(5) == build(40)


# ---------------------------------------------------------------- bulk-payment files

def test_export_per_rail_has_the_rail_columns_and_parses_back(world, make_farmer):
    spei = make_farmer(world.coop, name="=cmd|calc", rail="spei", account=CLABE)
    owe(world.coop, spei, 1_234_50)
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    lines = {line.rail: line for line in batch.lines}
    nequi = parse_csv(payouts.export_csv(batch, world.treasurer, rail="nequi"))
    assert list(nequi[0]) == ["line_id", "name", "national_id", "phone", "amount", "currency",
                              "reference"]
    assert nequi == [{"line_id": str(lines["nequi"].id), "name": lines["nequi"].payee_name,
                      "national_id": lines["nequi"].national_id, "phone": "3001234567",
                      "amount": "150000.00", "currency": "COP",
                      "reference": f"MINGA-{batch.id}-{lines['nequi'].id}"}]
    bank = parse_csv(payouts.export_csv(batch, world.treasurer, rail="bank"))
    assert bank[0]["account_number"] == "12345678" and bank[0]["bank"] == "Banco Agrario"
    assert bank[0]["amount"] == "80000.50"
    spei_rows = parse_csv(payouts.export_csv(batch, world.treasurer, rail="spei"))
    assert spei_rows[0]["account"] == CLABE and spei_rows[0]["account_type"] == "clabe"
    assert spei_rows[0]["amount"] == "1234.50"
    assert spei_rows[0]["name"].startswith("'=")  # a spreadsheet does not run it
    cash = parse_csv(payouts.export_csv(batch, world.treasurer, rail="cash"))
    assert list(cash[0]) == ["line_id", "name", "national_id", "amount", "currency", "reference"]
    everything = parse_csv(payouts.export_csv(batch, world.treasurer))
    assert {r["rail"] for r in everything} == {"nequi", "bank", "cash", "spei"}
    assert sum(int(r["amount"].replace(".", "")) for r in everything) == batch.total_minor
    assert parse_csv(payouts.export_csv(batch, world.treasurer, rail="yape")) == []
    with pytest.raises(payouts.ValidationFailed):
        payouts.export_csv(batch, world.treasurer, rail="swift")
    db.session.commit()
    assert batch.exported_at is not None


def test_export_of_one_rail_batch_without_filter_uses_its_columns(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    db.session.commit()
    rows = parse_csv(payouts.export_csv(batch, world.treasurer))
    assert "account_number" in rows[0] and "rail" not in rows[0]


def test_currency_without_decimals_exports_whole_amounts(make_coop, make_user, make_farmer):
    treasurer = make_user()
    coop = make_coop(country="CL", currency="CLP", treasurer=treasurer)
    farmer = make_farmer(coop, rail="bank", account="98765432")
    owe(coop, farmer, 150_000)
    batch, _ = payouts.create_batch(coop, treasurer)
    db.session.commit()
    assert parse_csv(payouts.export_csv(batch, treasurer))[0]["amount"] == "150000"
    db.session.commit()


def test_paid_and_failed_lines_are_not_exported_again(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    by_rail = {line.rail: line for line in batch.lines}
    payouts.import_confirmations(batch, world.treasurer, bank_confirmation(
        (by_rail["nequi"].id, "paid", "NQ-1"), (by_rail["bank"].id, "failed", "")))
    db.session.commit()
    rows = parse_csv(payouts.export_csv(batch, world.treasurer))
    assert [int(r["line_id"]) for r in rows] == [by_rail["cash"].id]
    db.session.commit()


# ---------------------------------------------------------------- confirmations

def test_paid_line_posts_once_with_the_bank_reference(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="nequi")
    db.session.commit()
    (line,) = batch.lines
    bank_before = ledger.balance(world.coop, "bank")
    result = payouts.import_confirmations(batch, world.treasurer,
                                          bank_confirmation((line.id, "paid", "NQ-778")))
    db.session.commit()
    assert result.paid == [line.id]
    db.session.refresh(line)
    assert line.status == "paid" and line.reference == "NQ-778" and line.confirmed_at
    entry = db.session.get(LedgerEntry, line.entry_id)
    assert entry.idempotency_key == f"payout_line:{line.id}" and entry.external_ref == "NQ-778"
    assert {(p.account.code, p.amount_minor) for p in entry.postings} == {
        (ledger.farmer_payable(world.nequi.id), 150_000_00), ("bank", -150_000_00)}
    assert ledger.balance(world.coop, ledger.farmer_payable(world.nequi.id)) == 0
    assert ledger.balance(world.coop, "bank") == bank_before - 150_000_00
    assert due_of(world.coop, world.nequi) == 0
    db.session.refresh(batch)
    assert batch.status == "closed" and batch.closed_at
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "payouts.line_paid"))
    assert audit.object_id == str(line.id) and "NQ-778" in audit.after_json


def test_importing_the_same_file_twice_changes_nothing(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    rows = [(line.id, "paid", f"REF-{line.id}") for line in batch.lines]
    payouts.import_confirmations(batch, world.treasurer, bank_confirmation(*rows))
    db.session.commit()
    before = counts()
    balances = {a.code: a.balance_minor for a in ledger.accounts(world.coop)}
    result = payouts.import_confirmations(batch, world.treasurer, bank_confirmation(*rows))
    db.session.commit()
    assert sorted(result.unchanged) == sorted(r[0] for r in rows) and not result.paid
    assert counts() == before
    assert {a.code: a.balance_minor for a in ledger.accounts(world.coop)} == balances
    # Even the same line with another reference is not paid again.
    payouts.import_confirmations(batch, world.treasurer,
                                 bank_confirmation((rows[0][0], "paid", "OTHER")))
    db.session.commit()
    assert counts() == before


def test_the_ledger_key_alone_stops_a_second_payment(world):
    """Even if a line were somehow pending again, its ledger key posts once."""
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="cash")
    db.session.commit()
    (line,) = batch.lines
    payouts.import_confirmations(batch, world.treasurer, bank_confirmation((line.id, "paid", "R1")))
    db.session.commit()
    entry = ledger.post(world.coop, key=f"payout_line:{line.id}", kind="payout",
                        lines=[ledger.debit(ledger.farmer_payable(world.cash.id), 20_000_00),
                               ledger.credit("cash", 20_000_00)])
    assert entry.id == line.entry_id
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.kind == "payout")) == 1


def test_failed_line_returns_to_due_and_is_paid_in_a_later_batch(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    db.session.commit()
    (line,) = batch.lines
    entries_before = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    result = payouts.import_confirmations(batch, world.treasurer, bank_confirmation(
        (line.id, "failed", "account closed")))
    db.session.commit()
    assert result.failed == [line.id]
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries_before
    db.session.refresh(line)
    assert line.status == "failed" and line.entry_id is None
    assert due_of(world.coop, world.bank) == 80_000_50
    # A failed line never becomes paid afterwards.
    with pytest.raises(payouts.ValidationFailed):
        payouts.import_confirmations(batch, world.treasurer, bank_confirmation((line.id, "paid", "X")))
    db.session.rollback()
    later, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    db.session.commit()
    (again,) = later.lines
    assert again.amount_minor == 80_000_50 and again.id != line.id
    payouts.import_confirmations(later, world.treasurer, bank_confirmation((again.id, "paid", "B2")))
    db.session.commit()
    assert ledger.balance(world.coop, ledger.farmer_payable(world.bank.id)) == 0
    assert due_of(world.coop, world.bank) == 0


def test_paid_line_cannot_become_failed(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="nequi")
    db.session.commit()
    (line,) = batch.lines
    payouts.import_confirmations(batch, world.treasurer, bank_confirmation((line.id, "paid", "R")))
    db.session.commit()
    before = counts()
    with pytest.raises(payouts.ValidationFailed) as exc:
        payouts.import_confirmations(batch, world.treasurer,
                                     bank_confirmation((line.id, "failed", "")))
    assert "already confirmed paid" in " ".join(exc.value.fields["file"])
    db.session.rollback()
    assert counts() == before


def _bad_files(world, batch, other_batch, foreign_batch):
    line = batch.lines[0]
    return {
        "wrong header": ("id,status,ref\r\n%d,paid,R\r\n" % line.id, "header"),
        "no header": ("", "header"),
        "unknown line": (bank_confirmation((line.id, "paid", "R"), (999999, "paid", "R")),
                         "999999"),
        "line of another batch": (bank_confirmation((other_batch.lines[0].id, "paid", "R")),
                                  "not part of batch"),
        "line of another coop": (bank_confirmation((foreign_batch.lines[0].id, "paid", "R")),
                                 "not part of batch"),
        "bad status": (bank_confirmation((line.id, "done", "R")), "paid or failed"),
        "bad id": (bank_confirmation(("abc", "paid", "R")), "not a line number"),
        "paid without reference": (bank_confirmation((line.id, "paid", "")), "reference"),
        "duplicate line": (bank_confirmation((line.id, "paid", "R"), (line.id, "paid", "R")),
                           "already on row 2"),
        "too many columns": (bank_confirmation((line.id, "paid", "R", "x")), "3 columns"),
        "huge": ("line_id,status,reference\r\n" + "1,paid,R\r\n" * 600_000, "MB"),
        "not utf-8": (b"line_id,status,reference\r\n1,paid,\xff\xfe\r\n", "UTF-8"),
        "binary": (b"line_id,status,reference\r\n1,paid,\x00\r\n", "text"),
        "header only": ("line_id,status,reference\r\n", "no lines"),
    }


def test_malformed_files_are_refused_whole_with_row_messages(world, make_farmer):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="nequi")
    other, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    foreign, _ = payouts.create_batch(world.other, world.other_treasurer)
    db.session.commit()
    before = counts()
    for name, (data, expected) in _bad_files(world, batch, other, foreign).items():
        with pytest.raises(payouts.ValidationFailed) as exc:
            payouts.import_confirmations(batch, world.treasurer, data)
        assert exc.value.code == "invalid_confirmation_file", name
        messages = " ".join(exc.value.fields["file"])
        assert expected in messages, (name, messages)
        db.session.rollback()
        assert counts() == before, name


def test_a_bad_row_after_good_ones_writes_nothing(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    before = counts()
    good = [(line.id, "paid", f"R{line.id}") for line in batch.lines]
    with pytest.raises(payouts.ValidationFailed) as exc:
        payouts.import_confirmations(batch, world.treasurer,
                                     bank_confirmation(*good, (424242, "paid", "R")))
    assert "Row 5" in " ".join(exc.value.fields["file"])
    db.session.rollback()
    assert counts() == before


def test_payment_the_ledger_cannot_make_refuses_the_whole_file(world):
    """If the payable shrank after the batch was made, the posting is refused and nothing of the
    file is written."""
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    ledger.post(world.coop, key="correction", kind="adjustment",
                lines=[ledger.debit(ledger.farmer_payable(world.cash.id), 20_000_00),
                       ledger.credit("bank", 20_000_00)])
    db.session.commit()
    before = counts()
    rows = [(line.id, "paid", f"R{line.id}") for line in batch.lines]
    with pytest.raises(payouts.ValidationFailed) as exc:
        payouts.import_confirmations(batch, world.treasurer, bank_confirmation(*rows))
    assert "cannot be posted" in " ".join(exc.value.fields["file"])
    db.session.rollback()
    assert counts() == before


def test_cash_lines_post_against_cash(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="cash")
    db.session.commit()
    (line,) = batch.lines
    payouts.import_confirmations(batch, world.treasurer, bank_confirmation((line.id, "paid", "REC-1")))
    db.session.commit()
    assert ledger.balance(world.coop, "cash") == -20_000_00
    assert ledger.balance(world.coop, ledger.farmer_payable(world.cash.id)) == 0


def test_file_with_bom_and_spaces_is_read(world):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="nequi")
    db.session.commit()
    (line,) = batch.lines
    data = ("\ufeffLine_ID, Status ,reference\r\n %d , PAID , NQ-9 \r\n\r\n" % line.id).encode()
    result = payouts.import_confirmations(batch, world.treasurer, data)
    db.session.commit()
    assert result.paid == [line.id]
    db.session.refresh(line)
    assert line.reference == "NQ-9"


# ---------------------------------------------------------------- HTML pages

def test_treasurer_pages_make_export_and_confirm_a_batch(world, login):
    client = login(world.treasurer)
    page = client.get(f"/manage/coops/{world.coop.id}/payables")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert world.nequi.name in text and "3001234567" in text
    first = client.post(f"/manage/coops/{world.coop.id}/payout-batches",
                        data={"rail": "", "idempotency_key": "form-1"})
    # The first POST shows the lines and totals; only "Yes" makes the batch.
    assert is_confirmation(first)
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == 0
    response = confirm(client, first)
    assert response.status_code == 302
    batch = db.session.scalar(select(PayoutBatch))
    assert response.headers["Location"].endswith(f"/manage/payout-batches/{batch.id}")
    # The same form sent again (double click) makes no second batch.
    again = client.post(f"/manage/coops/{world.coop.id}/payout-batches",
                        data={"rail": "", "idempotency_key": "form-1"})
    assert again.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == 1
    page = client.get(f"/manage/payout-batches/{batch.id}").get_data(as_text=True)
    assert "rail=nequi" in page and "receipts" in page
    export = client.get(f"/manage/payout-batches/{batch.id}/export.csv?rail=nequi")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    assert "attachment" in export.headers["Content-Disposition"]
    rows = parse_csv(export.get_data(as_text=True))
    assert [r["phone"] for r in rows] == ["3001234567"]
    nequi_line = int(rows[0]["line_id"])
    upload = client.post(f"/manage/payout-batches/{batch.id}/confirmations", data={
        "file": (io.BytesIO(bank_confirmation((nequi_line, "paid", "NQ-1")).encode()), "conf.csv")},
        content_type="multipart/form-data")
    # The file is read and shown first; the confirmation page carries it to "Yes".
    assert is_confirmation(upload) and "NQ-1" in upload.get_data(as_text=True)
    assert db.session.get(PayoutLine, nequi_line).status == "pending"
    upload = confirm(client, upload)
    assert upload.status_code == 302
    assert db.session.get(PayoutLine, nequi_line).status == "paid"
    pasted = client.post(f"/manage/payout-batches/{batch.id}/confirmations",
                         data={"text": "line_id,status,reference\n999,paid,X\n"})
    assert pasted.status_code == 422
    assert "999" in pasted.get_data(as_text=True)


def test_nothing_due_form_answers_409_with_the_reason(world, login):
    client = login(world.treasurer)
    response = client.post(f"/manage/coops/{world.coop.id}/payout-batches",
                           data={"rail": "spei", "idempotency_key": "x"})
    assert response.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(PayoutBatch)) == 0


def test_left_out_farmers_are_shown_on_the_batch_page(world, login, make_farmer):
    bad = make_farmer(world.coop, name="Eva", rail="daviplata", account="3001112222")
    set_account(world.coop, bad, "daviplata", "55")
    owe(world.coop, bad, 3_000_00)
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    page = login(world.treasurer).get(f"/manage/payout-batches/{batch.id}")
    text = page.get_data(as_text=True)
    assert bad.name in text and "Daviplata" in text
    assert db.session.scalar(select(func.count()).select_from(PayoutExclusion)) == 1


def test_cash_receipt_page_for_signature(world, login):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    cash_line = next(line for line in batch.lines if line.rail == "cash")
    client = login(world.treasurer)
    page = client.get(f"/manage/payout-batches/{batch.id}/receipts")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<script" not in page_body(text)  # the receipt needs no JavaScript
    assert world.cash.name in text and "20.000,00" in text and "firma" in text.lower()
    assert world.nequi.name not in text  # only cash lines
    one = client.get(f"/manage/payout-batches/{batch.id}/receipts?line={cash_line.id}")
    assert one.status_code == 200 and world.cash.name in one.get_data(as_text=True)
    nequi_line = next(line for line in batch.lines if line.rail == "nequi")
    assert client.get(f"/manage/payout-batches/{batch.id}/receipts?line={nequi_line.id}"
                      ).status_code == 404
    # The treasurer records the signed receipt.
    first = client.post(f"/manage/payout-lines/{cash_line.id}/cash",
                        data={"status": "paid", "reference": "REC-7"})
    assert is_confirmation(first) and "REC-7" in first.get_data(as_text=True)
    db.session.refresh(cash_line)
    assert cash_line.status == "pending"
    done = confirm(client, first)
    assert done.status_code == 302
    db.session.refresh(cash_line)
    assert cash_line.status == "paid" and cash_line.reference == "REC-7"
    assert client.post(f"/manage/payout-lines/{nequi_line.id}/cash",
                       data={"status": "paid"}).status_code == 404


def test_farmer_sees_owed_paid_when_and_by_which_rail(world, login):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    nequi_line = next(line for line in batch.lines if line.rail == "nequi")
    client = login(world.nequi)
    text = client.get("/my/payments").get_data(as_text=True)
    assert "150.000,00" in text and "Nequi" in text and "•••4567" in text
    assert "camino" in text  # on its way
    payouts.import_confirmations(batch, world.treasurer,
                                 bank_confirmation((nequi_line.id, "paid", "NQ-55")))
    db.session.commit()
    owe(world.coop, world.nequi, 1_000_00)
    text = client.get("/my/payments").get_data(as_text=True)
    assert "NQ-55" in text and "Pagado" in text and "1.000,00" in text
    # A failed line says the money is owed again.
    bank_line = next(line for line in batch.lines if line.rail == "bank")
    payouts.import_confirmations(batch, world.treasurer,
                                 bank_confirmation((bank_line.id, "failed", "")))
    db.session.commit()
    text = login(world.bank).get("/my/payments").get_data(as_text=True)
    assert "80.000,50" in text and "no se completó" in text.lower()
    # Other farmers' payments are not shown.
    assert "NQ-55" not in text


# ---------------------------------------------------------------- API

def test_api_payables_and_batch_rows(world, client, token):
    headers = token(world.treasurer)
    body = client.get(f"/api/v1/coops/{world.coop.id}/payables", headers=headers).json
    items = {i["farmer_id"]: i for i in body["items"]}
    assert set(items) == {world.nequi.id, world.bank.id, world.cash.id}
    assert {"farmer_id", "name", "amount_due_minor", "currency"} <= set(items[world.nequi.id])
    assert items[world.bank.id]["amount_due_minor"] == 80_000_50
    assert items[world.bank.id]["currency"] == "COP"
    created = client.post(f"/api/v1/coops/{world.coop.id}/payout-batches",
                          json={"rail": "nequi"}, headers={**headers, "Idempotency-Key": "b1"})
    assert created.status_code == 201
    batch = created.json
    assert BATCH_FIELDS <= set(batch) and batch["status"] == "open"
    assert batch["total_minor"] == 150_000_00
    assert [LINE_FIELDS <= set(line) for line in batch["lines"]] == [True]
    assert batch["lines"][0]["farmer_id"] == world.nequi.id
    assert batch["lines"][0]["rail"] == "nequi" and batch["lines"][0]["status"] == "pending"
    replay = client.post(f"/api/v1/coops/{world.coop.id}/payout-batches",
                         json={"rail": "nequi"}, headers={**headers, "Idempotency-Key": "b1"})
    assert replay.status_code == 201 and replay.json == batch
    assert replay.headers["Idempotent-Replayed"] == "true"
    reused = client.post(f"/api/v1/coops/{world.coop.id}/payout-batches",
                         json={"rail": "bank"}, headers={**headers, "Idempotency-Key": "b1"})
    assert reused.status_code == 422 and reused.json["error"]["code"] == "idempotency_key_reused"
    after = client.get(f"/api/v1/coops/{world.coop.id}/payables", headers=headers).json
    assert world.nequi.id not in {i["farmer_id"] for i in after["items"]}
    assert client.get(f"/api/v1/payout-batches/{batch['id']}", headers=headers).json == batch
    export = client.get(f"/api/v1/payout-batches/{batch['id']}/export.csv", headers=headers)
    assert export.status_code == 200 and export.mimetype == "text/csv"
    line_id = batch["lines"][0]["id"]
    assert parse_csv(export.get_data(as_text=True))[0]["line_id"] == str(line_id)
    conf = bank_confirmation((line_id, "paid", "NQ-1"))
    confirmed = client.post(f"/api/v1/payout-batches/{batch['id']}/confirmations", data=conf,
                            headers={**headers, "Content-Type": "text/csv"})
    assert confirmed.status_code == 200
    assert confirmed.json["lines"][0]["status"] == "paid" and confirmed.json["status"] == "closed"
    before = counts()
    twice = client.post(f"/api/v1/payout-batches/{batch['id']}/confirmations", data=conf,
                        headers={**headers, "Content-Type": "text/csv"})
    assert twice.status_code == 200 and twice.json == confirmed.json
    assert counts() == before


def test_api_refusals(world, client, token):
    headers = token(world.treasurer)
    url = f"/api/v1/coops/{world.coop.id}/payout-batches"
    assert client.post(url, json={"rail": "paypal"}, headers=headers).status_code == 422
    assert client.post(url, json={"rail": 5}, headers=headers).status_code == 422
    assert client.post(url, data="{", headers={**headers, "Content-Type": "application/json"}
                       ).status_code == 400
    made = client.post(url, headers=headers)  # no body: every rail
    assert made.status_code == 201 and len(made.json["lines"]) == 3
    nothing = client.post(url, json={}, headers=headers)
    assert nothing.status_code == 409 and nothing.json["error"]["code"] == "nothing_due"
    bad = client.post(f"/api/v1/payout-batches/{made.json['id']}/confirmations",
                      data="nope\n1,paid,R\n", headers={**headers, "Content-Type": "text/csv"})
    assert bad.status_code == 422
    assert bad.json["error"]["code"] == "invalid_confirmation_file"
    assert bad.json["error"]["fields"]["file"]
    assert client.get(f"/api/v1/payout-batches/{made.json['id']}/export.csv?rail=x",
                      headers=headers).status_code == 422
    assert client.get("/api/v1/payout-batches/999999", headers=headers).status_code == 404


def test_openapi_describes_the_payout_rows(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/coops/{id}/payables", "/coops/{id}/payout-batches", "/payout-batches/{id}",
                 "/payout-batches/{id}/export.csv", "/payout-batches/{id}/confirmations"):
        assert path in paths
    body = paths["/payout-batches/{id}/confirmations"]["post"]["requestBody"]
    assert "text/csv" in body["content"]


# ---------------------------------------------------------------- who may do what

def _actors(world):
    return {"treasurer": world.treasurer, "manager": world.manager, "farmer": world.nequi,
            "buyer": world.buyer, "other_treasurer": world.other_treasurer}


# Members of the coop without the role: 403; anyone outside it (a buyer, another coop's
# treasurer): 404, so no batch's existence is revealed.
API_EXPECTED = {"treasurer": "ok", "manager": 403, "farmer": 403, "buyer": 404,
                "other_treasurer": 404, "anon": 401}


def test_api_access_for_each_role_on_each_endpoint(world, client, token):
    batch, _ = payouts.create_batch(world.coop, world.treasurer, rail="bank")
    db.session.commit()
    line_id = batch.lines[0].id
    conf = bank_confirmation((line_id, "failed", "x"))
    calls = [
        ("get", f"/api/v1/coops/{world.coop.id}/payables", {}, 200),
        ("post", f"/api/v1/coops/{world.coop.id}/payout-batches", {"json": {"rail": "cash"}}, 201),
        ("get", f"/api/v1/payout-batches/{batch.id}", {}, 200),
        ("get", f"/api/v1/payout-batches/{batch.id}/export.csv", {}, 200),
        ("post", f"/api/v1/payout-batches/{batch.id}/confirmations",
         {"data": conf, "content_type": "text/csv"}, 200),
    ]
    tokens = {name: token(user) for name, user in _actors(world).items()}
    tokens["anon"] = {}
    # Refused callers first (and nothing changes), the treasurer last.
    for actor in ("anon", "manager", "farmer", "buyer", "other_treasurer", "treasurer"):
        for method, url, kwargs, ok in calls:
            before = counts()
            response = getattr(client, method)(url, headers=tokens[actor], **kwargs)
            expected = ok if API_EXPECTED[actor] == "ok" else API_EXPECTED[actor]
            assert response.status_code == expected, (actor, method, url, response.json)
            if expected >= 400:
                assert response.json["error"]["code"]
                assert counts() == before, (actor, url)


HTML_EXPECTED = {"treasurer": "ok", "manager": 403, "farmer": 403, "buyer": 404,
                 "other_treasurer": 404, "anon": "login"}


def test_html_access_for_each_role_on_each_route(world, app, client, login):
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    cash_line = next(line for line in batch.lines if line.rail == "cash")
    routes = [
        ("get", f"/manage/coops/{world.coop.id}/payables", {}, 200),
        ("post", f"/manage/coops/{world.coop.id}/payout-batches",
         {"data": {"rail": "", "idempotency_key": "h1"}}, 409),  # everything is in a batch
        ("get", f"/manage/payout-batches/{batch.id}", {}, 200),
        ("get", f"/manage/payout-batches/{batch.id}/export.csv?rail=cash", {}, 200),
        ("get", f"/manage/payout-batches/{batch.id}/receipts", {}, 200),
        ("post", f"/manage/payout-batches/{batch.id}/confirmations",
         {"data": {"text": bank_confirmation((cash_line.id, "failed", "x"))}}, 302),
        ("post", f"/manage/payout-lines/{cash_line.id}/cash",
         {"data": {"status": "paid", "reference": "R"}}, 422),  # already failed: refused
    ]
    blueprint_rules = {r.rule for r in app.url_map.iter_rules() if r.endpoint.startswith("payouts.")}
    assert len(blueprint_rules) == len(routes) + 1  # + /my/payments, checked below
    for actor in ("anon", "manager", "farmer", "buyer", "other_treasurer", "treasurer"):
        client.post("/logout")
        if actor != "anon":
            login(_actors(world)[actor])
        for method, url, kwargs, ok in routes:
            before = counts()
            response = getattr(client, method)(url, **kwargs)
            expected = HTML_EXPECTED[actor]
            if expected == "ok" and ok == 302 and method == "post":
                # An irreversible action: the first POST only shows what will happen.
                assert is_confirmation(response), (actor, url)
                assert counts() == before, (actor, url)
                response = confirm(client, response)
            if expected == "login":
                assert response.status_code == 302 and "/login" in response.headers["Location"]
            elif expected == "ok":
                assert response.status_code == ok, (actor, url, response.data[:300])
            else:
                assert response.status_code == expected, (actor, url)
            if expected != "ok":
                assert counts() == before, (actor, url)
    for actor, expected in (("farmer", 200), ("treasurer", 403), ("manager", 403),
                            ("buyer", 403)):
        client.post("/logout")
        login(_actors(world)[actor])
        assert client.get("/my/payments").status_code == expected, actor
    client.post("/logout")
    assert client.get("/my/payments").status_code == 302


def test_a_treasurer_who_is_also_a_farmer_elsewhere_sees_only_their_coops(world, client, token):
    """Another coop's batch is a 404 even for a treasurer, never a 403 that would reveal it."""
    foreign, _ = payouts.create_batch(world.other, world.other_treasurer)
    db.session.commit()
    headers = token(world.treasurer)
    assert client.get(f"/api/v1/payout-batches/{foreign.id}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/coops/{world.other.id}/payables",
                      headers=headers).status_code == 404
    assert client.post(f"/api/v1/payout-batches/{foreign.id}/confirmations",
                       data=bank_confirmation((foreign.lines[0].id, "paid", "R")),
                       headers=headers).status_code == 404
    assert db.session.get(PayoutLine, foreign.lines[0].id).status == "pending"


def test_member_record_is_not_needed_for_the_payable_to_show(world, make_user):
    """Money owed to someone without a farmer record is shown and left out, never lost."""
    stranger = make_user(name="Sin ficha")
    owe(world.coop, stranger, 5_00)
    batch, _ = payouts.create_batch(world.coop, world.treasurer)
    db.session.commit()
    assert stranger.id in {x.farmer_user_id for x in batch.exclusions}
    assert due_of(world.coop, stranger) == 5_00
    assert db.session.scalar(select(FarmerProfile).where(FarmerProfile.user_id == stranger.id)) \
        is None
