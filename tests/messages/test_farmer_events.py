"""What a farmer is told, from the service where it happens: a harvest listed, sold into a
pool, delivered, paid (or not), share capital withheld. One message per event however often
it is replayed, on the farmer's channel (SMS without an e-mail), in their language, and it
reaches the stand-in."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask_babel import format_date, force_locale
from sqlalchemy import func, select

from coop.extensions import db
from coop.intake import services as intake
from coop.jobs import services as jobs
from coop.jobs.models import Job
from coop.messages import services as messages
from coop.messages.channels import segments
from coop.messages.models import Message
from coop.messages.services import Kg, Label, Money
from coop.payouts import services as payouts
from coop.pools import services as pools
from tests.plugins.payouts import bank_confirmation, owe
from tests.support.intake import FARMER, VISA
from tests.support.sent import messages_to
from tests.support.settle import close_and_settle

PHONE = "+573001234567"
HARVEST = (date.today() - timedelta(days=2)).isoformat()


def by_sms(user, locale="es", phone=PHONE):
    """The farmer has no e-mail: told by SMS, in Spanish."""
    user.email, user.phone, user.locale = None, phone, locale
    db.session.commit()
    return user


def one_message(user, template):
    [message] = messages_to(user.id, template)
    return message


def reached(sms_outbox, message) -> dict:
    [got] = [m for m in sms_outbox.messages if m["body"] == message.body]
    assert got["to"] == message.to_address
    return got


def send_jobs() -> int:
    return db.session.scalar(select(func.count()).select_from(Job)
                             .where(Job.task == "messages.send"))


def tell_jobs() -> int:
    return db.session.scalar(select(func.count()).select_from(Job)
                             .where(Job.task == payouts.TELL_TASK))


# ---------------------------------------------------------------- harvest listed


def test_a_listing_from_the_outbox_tells_the_farmer_once(client, login, make_coop, make_farmer,
                                                         sms_outbox):
    coop = make_coop(name="Cooperativa Nuevo Horizonte")
    farmer = make_farmer(coop)
    login(farmer)
    by_sms(farmer)
    token = client.get("/my/outbox/session").json["csrf_token"]
    headers = {"X-CSRFToken": token, "Idempotency-Key": "outbox-1"}
    data = {"crop": "coffee", "grade": "sca85", "quantity_kg": "1.240,5",
            "harvested_on": HARVEST, "collection_point": "Vereda El Tambo", "notes": ""}
    first = client.post("/api/v1/listings", data=data, headers=headers)
    assert first.status_code == 201, first.json
    again = client.post("/api/v1/listings", data=data, headers=headers)  # the outbox again
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    jobs.drain()
    message = one_message(farmer, "farmer.harvest_listed")
    assert message.event == f"listing:{first.json['id']}:listed"
    assert message.channel == "sms" and message.to_address == PHONE
    assert message.urgent is False  # it can wait for daytime
    assert message.body.startswith("Minga: 1.240,5 kg de Café pergamino publicados en Cooperativa Nuevo "
                                   "Horizonte.")
    assert message.body.endswith(" http://minga.test/my/listings")
    assert message.status == "sent" and message.segments in (1, 2)
    reached(sms_outbox, message)
    assert len(sms_outbox.messages) == 1


def test_a_listing_on_the_page_tells_an_english_farmer_by_email(client, login, make_coop,
                                                                make_farmer, mailbox):
    coop = make_coop(name="Coop Andes")
    farmer = make_farmer(coop)
    farmer.locale = "en"
    db.session.commit()
    login(farmer)
    response = client.post("/my/listings/new", data={
        "product": "coffee/sca85", "quantity_kg": "120.5", "harvested_on": HARVEST,
        "collection_point": "Vereda El Tambo", "notes": ""}, content_type="multipart/form-data")
    assert response.status_code == 302
    message = one_message(farmer, "farmer.harvest_listed")
    assert message.channel == "email" and message.status == "sent"
    assert message.subject == "Your harvest is listed: 120.5 kg of Coffee (parchment)"
    [got] = mailbox
    assert got.rcpt_tos == [farmer.email] and got.subject == message.subject
    assert "120.5 kg of Coffee (parchment) listed with Coop Andes" in got.text
    assert "http://minga.test/my/listings" in got.text
    assert got.headers.get("List-Unsubscribe")  # an update, not money: it can be stopped


# ---------------------------------------------------------------- sold into a pool


def test_closing_a_pool_tells_each_farmer_once_what_they_sold(market, stripe_clean,
                                                              make_listing, sms_outbox,
                                                              mailbox):
    m = market
    small = by_sms(m.farmers[0])
    m.farmers[1].locale = "en"
    db.session.commit()
    make_listing(m.farmers[1], kg="100")  # a second listing: one message for both
    pool = m.open_pool(min_kg="100", max_kg="700")
    pools.place_order(m.buyers[0], pool.id, quantity_kg="350", payment_method=VISA)
    closed = close_and_settle(pool.id)
    assert closed.status == "confirmed"
    jobs.drain()
    allocations = pools.pool_allocations(pool.id)
    grams = {}
    for a in allocations:
        grams[a.farmer_user_id] = grams.get(a.farmer_user_id, 0) + a.quantity_g
    assert len([a for a in allocations if a.farmer_user_id == m.farmers[1].id]) == 2
    due = pools.delivery_due(closed)
    price = allocations[0].farmer_price_per_kg_minor

    sms = one_message(small, "farmer.harvest_sold")
    assert sms.event == f"pool:{pool.id}:sold:{small.id}" and sms.channel == "sms"
    kg = f"{grams[small.id] // 1000}"
    with force_locale("es_CO"):
        day = format_date(due, "d MMM")
    assert sms.body.startswith(f"Minga: se vendieron {kg} kg de su Café pergamino a 28.000,00 COP el "
                               f"kg. Entréguelos en Vereda El Tambo a mas tardar el {day}.")
    assert sms.body.endswith(" http://minga.test/my/deliveries")
    assert sms.status == "sent" and sms.segments in (1, 2)
    reached(sms_outbox, sms)

    english = one_message(m.farmers[1], "farmer.harvest_sold")
    assert english.channel == "email"
    kg = f"{grams[m.farmers[1].id] // 1000}"
    assert english.body.startswith(f"Minga: {kg} kg of your Coffee (parchment) sold at COP28,000.00 per kg.")
    with force_locale("en"):
        assert english.subject == f"Sold: {kg} kg of Coffee (parchment), deliver by " \
                                  f"{format_date(due, 'd MMM')}"
    [got] = [g for g in mailbox if g.subject == english.subject]
    assert got.rcpt_tos == [m.farmers[1].email] and got.text.startswith(english.body[:60])
    assert price == 2_800_000
    # Closing again (a rerun of the close) tells nobody twice.
    close_and_settle(pool.id)
    jobs.drain()
    assert len(messages_to(template="farmer.harvest_sold")) == 3
    assert len(sms_outbox.messages) == 1


def test_closing_costs_one_notify_per_farmer_not_per_allocation(market, stripe_clean,
                                                                make_listing, count_queries):
    """The closing's queries grow with the farmers told, never with their allocations."""
    m = market

    def close(listings: list[int]) -> int:
        for farmer, count in zip(m.farmers, listings):
            for _ in range(count):
                make_listing(farmer, kg="10")
        kg = str(sum(listings) * 10 or 600)
        pool = m.open_pool(min_kg="1", max_kg=kg)
        pools.place_order(m.buyers[0], pool.id, quantity_kg=kg, payment_method=VISA)
        db.session.commit()
        with count_queries() as counter:
            assert close_and_settle(pool.id).status == "confirmed"
        assert {a.farmer_user_id for a in pools.pool_allocations(pool.id)} == \
            {f.id for f in m.farmers}
        return len(counter.statements)

    close([0, 0, 0])            # the market's own listings, and the first of everything
    few = close([1, 1, 1])      # 3 farmers, 3 allocations
    many = close([4, 1, 2])     # 3 farmers, 7 allocations
    assert many == few
    assert len(messages_to(template="farmer.harvest_sold")) == 9


# ---------------------------------------------------------------- delivery received, shares


def test_a_delivery_tells_the_farmer_the_kilograms_grade_amount_and_advance(sold, sms_outbox):
    from coop.cooperatives import finance
    m = sold
    farmer = by_sms(m.farmers[2])
    finance.update_settings(m.coop, m.manager, par_minor=50_000_000, min_shares=2,
                            withholding_bps=1000, advance_bps=2000)
    db.session.commit()
    first, created = intake.record_intake(m.manager, m.alloc[2].id, received_kg="150",
                                          grade="sca85", idempotency_key="intake-1")
    again, created_again = intake.record_intake(m.manager, m.alloc[2].id, received_kg="150",
                                                grade="sca85", idempotency_key="intake-1")
    assert created and not created_again and again.id == first.id
    jobs.drain()
    gross = FARMER * 150
    assert first.advance_minor == gross // 5 == 84_000_000
    message = one_message(farmer, "farmer.delivery_received")
    assert message.event == f"intake:{first.id}" and message.channel == "sms"
    # The grade's label in the farmer's language (its dash folded to GSM-7's).
    assert message.body.startswith("Minga: recibimos 150 kg de Café pergamino, calidad "
                                   "Excelente, SCA 85-89: 4.200.000,00 COP. Anticipo pagado: "
                                   "840.000,00 COP.")
    assert "150 kg" in message.body and "4.200.000,00 COP" in message.body
    assert "Anticipo pagado: 840.000,00 COP" in message.body
    assert message.body.endswith(f" http://minga.test/my/statements/{first.id}")
    reached(sms_outbox, message)

    shares = one_message(farmer, "farmer.shares_withheld")
    assert first.share_withholding_minor == gross // 10 == 42_000_000
    assert shares.body.startswith("Minga: 420.000,00 COP de su venta fueron a sus aportes en ")
    assert "Sus aportes: 420.000,00 COP." in shares.body
    assert shares.body.endswith(" http://minga.test/my/shares")
    assert shares.status == "sent"
    reached(sms_outbox, shares)
    assert len(sms_outbox.messages) == 2


def test_nothing_delivered_tells_the_farmer_nothing(sold):
    intake.record_intake(sold.manager, sold.alloc[0].id, received_kg="", grade=None,
                         not_delivered=True)
    jobs.drain()
    assert messages_to(sold.farmers[0].id, "farmer.delivery_received") == []


# ---------------------------------------------------------------- paid, failed


@pytest.fixture
def batch(world):
    w = world
    by_sms(w.nequi)
    w.bank.locale = "en"
    db.session.commit()
    w.batch, _ = payouts.create_batch(w.coop, w.treasurer)
    db.session.commit()
    w.lines = {line.farmer_user_id: line for line in w.batch.lines}
    return w


def test_the_banks_file_tells_each_farmer_paid_or_failed_once(batch, client, token,
                                                              sms_outbox, mailbox):
    w = batch
    nequi, bank = w.lines[w.nequi.id], w.lines[w.bank.id]
    body = bank_confirmation((nequi.id, "paid", "NQ-8812"), (bank.id, "failed", ""))
    headers = token(w.treasurer)
    for _ in range(2):  # the same file twice
        response = client.post(f"/api/v1/payout-batches/{w.batch.id}/confirmations",
                               data=body, headers=headers, content_type="text/csv")
        assert response.status_code == 200, response.json
    jobs.drain()
    paid = one_message(w.nequi, "farmer.paid")
    assert paid.event == f"payout-line:{nequi.id}:paid" and paid.channel == "sms"
    assert paid.body == ("Minga: le pagamos 150.000,00 COP por Nequi, ref. NQ-8812. "
                         "http://minga.test/my/payments")
    assert paid.status == "sent" and paid.segments == 1
    reached(sms_outbox, paid)
    failed = one_message(w.bank, "farmer.payment_failed")
    assert failed.event == f"payout-line:{bank.id}:failed" and failed.channel == "email"
    assert failed.subject == "Your payment of COP80,000.50 did not go through"
    assert failed.body.startswith("Minga: your payment of COP80,000.50 by Bank account failed.")
    [got] = [g for g in mailbox if g.rcpt_tos == [w.bank.email]]
    assert got.subject == failed.subject and "http://minga.test/my/payments" in got.text
    assert "List-Unsubscribe" not in got.headers  # money is always told
    # Both farmers' messages went in one send job, not one job a line.
    assert send_jobs() == 2  # the farmers' batch, and the treasurer's notice
    assert len(messages_to(template="farmer.paid")) == 1
    assert len(messages_to(template="farmer.payment_failed")) == 1


def test_a_cash_receipt_tells_the_farmer(batch, sms_outbox):
    w = batch
    by_sms(w.cash, phone="+573001234568")
    line = w.lines[w.cash.id]
    rows = [(1, line.id, "paid", f"CASH-{line.id}")]
    payouts.apply_confirmations(w.batch, w.treasurer, rows)
    db.session.commit()
    payouts.apply_confirmations(w.batch, w.treasurer, rows)  # recorded again: nothing new
    db.session.commit()
    jobs.drain()
    paid = one_message(w.cash, "farmer.paid")
    assert paid.body.startswith(f"Minga: le pagamos 20.000,00 COP por Efectivo, ref. "
                                f"CASH-{line.id}.")
    reached(sms_outbox, paid)


def test_a_big_file_sends_its_messages_fifty_a_job(batch, monkeypatch):
    """10,000 lines are 200 send jobs, not 10,000: here with batches of two."""
    w = batch
    monkeypatch.setattr(messages, "SEND_BATCH", 2)
    rows = [(i + 1, line.id, "paid", f"REF-{line.id}")
            for i, line in enumerate(w.lines.values())]
    assert len(rows) == 3
    payouts.apply_confirmations(w.batch, w.treasurer, rows)
    db.session.commit()
    assert tell_jobs() == 1 and send_jobs() == 0  # the import enqueues the telling
    jobs.drain()  # the tell job writes the messages and their send jobs, which run next
    assert send_jobs() == 2
    assert {m.status for m in messages_to(template="farmer.paid")} == {"sent"}


def test_telling_the_farmers_of_a_file_costs_no_statement_a_line(make_coop, make_user,
                                                                 make_farmer, count_queries):
    """The import enqueues one job telling its farmers (a thousand lines a job), and that job
    costs the same statements for 2 lines as for 6: the lines and the people in a query each,
    the messages in one INSERT, one send job (not a job, nor a look-up, a line)."""
    def imported(n: int) -> tuple[int, int, int]:
        treasurer = make_user()
        coop = make_coop(treasurer=treasurer)
        for i in range(n):
            owe(coop, make_farmer(coop, rail="nequi", account=f"300{1_000_000 + i}"), 10_000_00)
        batch, _ = payouts.create_batch(coop, treasurer)
        db.session.commit()
        body = bank_confirmation(*[(line.id, "paid", f"R{line.id}") for line in batch.lines])
        sends_before = send_jobs()
        payouts.import_confirmations(batch, treasurer, body)
        db.session.commit()
        [job_id] = db.session.scalars(select(Job.id).where(
            Job.task == payouts.TELL_TASK, Job.status == "pending"))
        with count_queries() as counter:
            assert jobs.run(job_id).status == "done"
        told = db.session.scalar(select(func.count()).select_from(Message).where(
            Message.template == "farmer.paid", Message.coop_id == coop.id))
        assert told == n
        return len(counter.statements), send_jobs() - sends_before, told

    two, six = imported(2), imported(6)
    assert two[:2] == six[:2], (two, six)
    assert six[1] == 1  # one send job for the file's messages


# ---------------------------------------------------------------- SMS length


@pytest.mark.parametrize("template,context", [
    ("farmer.harvest_listed", dict(kg=Kg(12_345_500), crop=Label("crop", "coffee-green"),
                                   coop="Cooperativa Agropecuaria Multiactiva del Sur del Cauca")),
    ("farmer.harvest_sold", dict(kg=Kg(12_345_500), crop=Label("crop", "coffee-green"),
                                 price=Money(2_800_000, "COP"), pool="#12345",
                                 point="Centro de acopio Vereda La Esperanza Alta",
                                 by=date(2026, 12, 24),
                                 coop="Cooperativa Agropecuaria Multiactiva del Sur del Cauca")),
    ("farmer.delivery_received", dict(kg=Kg(12_345_500), crop=Label("crop", "coffee-green"),
                                      grade=Label("grade", "sca85"),
                                      amount=Money(34_567_890_000, "COP"),
                                      advance=Money(6_913_578_000, "COP"))),
    ("farmer.paid", dict(amount=Money(34_567_890_000, "COP"), rail=Label("rail", "daviplata"),
                         reference="MINGA-12345-1234567",
                         coop="Cooperativa Agropecuaria Multiactiva del Sur del Cauca")),
    ("farmer.payment_failed", dict(amount=Money(34_567_890_000, "COP"),
                                   rail=Label("rail", "daviplata"),
                                   coop="Cooperativa Agropecuaria Multiactiva del Sur del Cauca")),
    ("farmer.shares_withheld", dict(amount=Money(3_456_789_000, "COP"),
                                    balance=Money(50_000_000_000, "COP"),
                                    coop="Cooperativa Agropecuaria Multiactiva del Sur del Cauca")),
])
def test_the_longest_spanish_sms_is_one_or_two_gsm_segments(make_coop, make_farmer, template,
                                                            context):
    farmer = by_sms(make_farmer(make_coop()))
    [message] = messages.notify(farmer, template, event=f"test:{template}",
                                link="/my/statements/123456", **context)
    assert "%(" not in message.body and "Minga:" in message.body
    count, encoding = segments(message.body)
    assert encoding == "GSM-7" and count <= 2, (count, message.body)
