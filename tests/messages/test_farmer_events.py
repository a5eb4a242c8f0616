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
from coop.messages.services import Kg, Label, Money
from coop.payouts import services as payouts
from coop.pools import services as pools
from tests.plugins.payouts import bank_confirmation, owe
from tests.support.intake import FARMER, VISA
from tests.support.sent import messages_to

PHONE = "+573001234567"
HARVEST = (date.today() - timedelta(days=2)).isoformat()


def by_sms(user, locale="es"):
    """The farmer has no e-mail: told by SMS, in Spanish."""
    user.email, user.phone, user.locale = None, PHONE, locale
    db.session.commit()
    return user


def one_message(user, template):
    [message] = messages_to(user.id, template)
    return message


def reached(sms_outbox, message) -> dict:
    [got] = [m for m in sms_outbox.messages if m["to"] == message.to_address]
    assert got["body"] == message.body
    return got


def send_jobs() -> int:
    return db.session.scalar(select(func.count()).select_from(Job)
                             .where(Job.task == "messages.send"))


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
    closed = pools.close_pool(pool.id)
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
                               f"kg. Entreguelos en Vereda El Tambo a mas tardar el {day}.")
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
    pools.close_pool(pool.id)
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
            assert pools.close_pool(pool.id).status == "confirmed"
        assert {a.farmer_user_id for a in pools.pool_allocations(pool.id)} == \
            {f.id for f in m.farmers}
        return len(counter.statements)

    close([0, 0, 0])            # the market's own listings, and the first of everything
    few = close([1, 1, 1])      # 3 farmers, 3 allocations
    many = close([4, 1, 2])     # 3 farmers, 7 allocations
    assert many == few
    assert len(messages_to(template="farmer.harvest_sold")) == 9
