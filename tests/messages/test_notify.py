"""notify(): one message per event, recipient and channel, in the recipient's language and
locale, on the channel they have, waiting for daytime when it is not urgent; opt-in and
unsubscribe; delivery reports; who sees which messages."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import func, select

from coop.extensions import db
from coop.jobs.models import Job
from coop.messages import services as messages
from coop.messages.models import Message
from coop.messages.services import Kg, Money


def _count(model=Message) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _farmer_by_phone(make_coop, make_farmer):
    coop = make_coop()
    farmer = make_farmer(coop, phone="+57 300 123 4567")
    farmer.email = None
    farmer.locale = "es"
    db.session.commit()
    return coop, farmer


def test_a_farmer_without_email_is_told_by_sms_in_spanish_figures(make_coop, make_farmer):
    coop, farmer = _farmer_by_phone(make_coop, make_farmer)
    [message] = messages.notify(farmer, "farmer.paid", event="payout-line:1", coop_id=coop.id,
                                amount=Money(124_000_000, "COP"), rail="Nequi",
                                reference="8812", coop=coop.name, link="/my/payouts")
    db.session.commit()
    assert message.channel == "sms"
    assert message.to_address.endswith("573001234567")
    assert "1.240.000,00 COP" in message.body          # es_CO, whatever the sender reads
    assert "8812" in message.body and "Nequi" in message.body
    assert message.body.endswith("http://minga.test/my/payouts")
    assert message.encoding == "GSM-7" and message.segments in (1, 2)
    # The send job was written with it, in the same transaction.
    [job] = db.session.scalars(select(Job)).all()
    assert job.task == "messages.send" and str(message.id) in job.payload


def test_an_english_buyer_reads_english_figures(make_buyer):
    buyer = make_buyer()
    buyer.locale = "en"
    db.session.commit()
    [message] = messages.notify(buyer, "buyer.captured", event="order:9:captured",
                                amount=Money(2_850_000, "COP"), pool="#9", kg=Kg(100_000),
                                price=Money(28_500, "COP"))
    assert message.channel == "email" and message.to_address == buyer.email
    assert "COP28,500.00" in message.body and "100" in message.body
    assert message.subject.startswith("Pool #9 confirmed")


def test_the_same_event_is_one_message_however_often_it_is_replayed(make_buyer):
    buyer = make_buyer()
    for _ in range(3):
        messages.notify(buyer, "buyer.released", event="order:5:released", pool="#5",
                        amount=Money(100, "COP"))
        db.session.commit()
    assert _count() == 1
    assert _count(Job) == 1


def test_a_rolled_back_event_tells_nobody(make_buyer):
    buyer = make_buyer()
    messages.notify(buyer, "buyer.released", event="order:6:released", pool="#6",
                    amount=Money(100, "COP"))
    db.session.rollback()
    assert _count() == 0 and _count(Job) == 0


def test_a_code_for_a_phone_never_goes_to_an_email(make_user):
    user = make_user()       # an e-mail, no phone
    assert messages.notify(user, "auth.reset_code", event="reset:1", channel="sms",
                           code="123456") == []


def test_a_message_that_can_wait_waits_for_daytime_where_the_person_lives(
        app, make_coop, make_farmer):
    coop, farmer = _farmer_by_phone(make_coop, make_farmer)
    app.config["MESSAGES_DAYTIME"] = (8, 20)
    try:
        night = datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)     # 23:00 in Bogotá
        [later] = messages.notify(farmer, "farmer.harvest_listed", event="listing:1",
                                  now=night, kg=Kg(100_000), crop="café", coop=coop.name)
        [now] = messages.notify(farmer, "farmer.paid", event="payout-line:2", now=night,
                                amount=Money(100, "COP"), rail="Nequi", reference="1",
                                coop=coop.name)
    finally:
        app.config["MESSAGES_DAYTIME"] = (0, 24)
    assert later.send_after == datetime(2026, 12, 3, 13, 0, tzinfo=timezone.utc)  # 08:00
    assert now.send_after == night                                  # money: at once


def test_news_needs_the_opt_in_and_an_unsubscribe_stops_a_topic(client, make_buyer):
    buyer = make_buyer()
    args = dict(crop="cacao", coop="Coop", kg=Kg(1000), price=Money(100, "COP"),
                closes=datetime(2026, 12, 9, tzinfo=timezone.utc))
    assert messages.notify(buyer, "buyer.new_pool", event="pool:1:new", **args) == []
    [reminder] = messages.notify(buyer, "buyer.pool_closing", event="pool:1:closing",
                                 pool="#1", kg=Kg(1000),
                                 closes=datetime(2026, 12, 9, tzinfo=timezone.utc))
    db.session.commit()
    text, html, headers = messages._email_parts(reminder)
    url = re.search(r"<(http://minga\.test(/messages/unsubscribe/[^>]+))>",
                    headers["List-Unsubscribe"]).group(2)
    assert url in text and url in html
    page = client.get(url)
    assert page.status_code == 200 and b"<form" in page.data
    # A mail program's one-click unsubscribe (RFC 8058): a POST without any form token.
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert messages.notify(buyer, "buyer.pool_closing", event="pool:2:closing", pool="#2",
                           kg=Kg(1000), closes=datetime(2026, 12, 9, tzinfo=timezone.utc)) == []
    # Money is never unsubscribed.
    assert messages.notify(buyer, "buyer.released", event="order:1:released", pool="#1",
                           amount=Money(100, "COP"))
    assert client.get("/messages/unsubscribe/forged-token").status_code == 404


def test_an_account_or_money_email_carries_no_unsubscribe(make_buyer):
    buyer = make_buyer()
    [message] = messages.notify(buyer, "buyer.released", event="order:2:released", pool="#2",
                                amount=Money(100, "COP"))
    assert "List-Unsubscribe" not in messages._email_parts(message)[2]


def test_delivery_reports_move_a_message_forward_never_back(make_buyer):
    buyer = make_buyer()
    [message] = messages.notify(buyer, "buyer.released", event="order:3:released", pool="#3",
                                amount=Money(100, "COP"))
    message.status, message.provider, message.provider_id = "sent", "twilio", "SM1"
    db.session.commit()
    assert messages.record_delivery("twilio", "SM1", "delivered")
    assert messages.record_delivery("twilio", "SM1", "sent")        # late, out of order
    assert message.status == "delivered" and message.delivered_at is not None
    assert not messages.record_delivery("twilio", "SM-unknown", "delivered")


def test_staff_see_their_coops_messages_and_a_person_their_own(
        client, login, make_coop, make_farmer, make_user):
    coop, farmer = _farmer_by_phone(make_coop, make_farmer)
    other = make_coop()
    messages.notify(farmer, "farmer.paid", event="payout-line:3", coop_id=coop.id,
                    amount=Money(100, "COP"), rail="Nequi", reference="REF-77", coop=coop.name)
    db.session.commit()
    manager = coop.memberships[0].user if hasattr(coop, "memberships") else None
    from coop.cooperatives import services as coops
    manager_id = coops.staff_ids(coop.id, "manager")[0]
    from coop.auth.models import User
    login(db.session.get(User, manager_id))
    page = client.get(f"/manage/coops/{coop.id}/messages")
    assert page.status_code == 200 and b"REF-77" in page.data
    assert client.get(f"/manage/coops/{other.id}/messages").status_code == 404
    stranger = make_user()
    login(stranger)
    assert client.get("/account/messages").status_code == 200
    assert b"REF-77" not in client.get("/account/messages").data
    del manager


def test_queued_messages_reach_the_stand_ins_and_a_rerun_sends_nothing_twice(
        make_coop, make_farmer, make_buyer, mailbox, sms_outbox):
    from coop.jobs import services as jobs
    coop, farmer = _farmer_by_phone(make_coop, make_farmer)
    buyer = make_buyer()
    [sms] = messages.notify(farmer, "farmer.paid", event="payout-line:7", coop_id=coop.id,
                            amount=Money(124_000_000, "COP"), rail="Nequi", reference="8812",
                            coop=coop.name)
    [mail] = messages.notify(buyer, "buyer.released", event="order:7:released", pool="#7",
                             amount=Money(2_850_000, "COP"), link="/my/orders")
    db.session.commit()
    assert [o.status for o in jobs.drain()] == ["done", "done"]
    db.session.expire_all()
    assert sms.status == "sent" and sms.provider == "twilio" and sms.provider_id
    assert mail.status == "sent" and mail.attempts == 1
    [texted] = sms_outbox.messages
    assert texted["to"] == sms.to_address and texted["status_callback"] == \
        "http://minga.test/messages/status/twilio"
    assert "1.240.000,00 COP" in texted["body"]
    [received] = mailbox
    assert received.text and received.html and "http://minga.test/my/orders" in received.html
    # The same job delivered again (a worker's retry) sends nothing more.
    for job_id in db.session.scalars(select(Job.id)):
        db.session.execute(Job.__table__.update().where(Job.id == job_id)
                           .values(status="pending"))
    db.session.commit()
    jobs.drain()
    assert len(sms_outbox.messages) == 1 and len(mailbox) == 1


def test_a_provider_outage_retries_the_message_and_a_refused_number_fails_it(
        make_coop, make_farmer, sms_outbox, app):
    from datetime import timedelta
    from coop.common.models import utcnow
    from coop.jobs import services as jobs
    coop, farmer = _farmer_by_phone(make_coop, make_farmer)
    [message] = messages.notify(farmer, "farmer.paid", event="payout-line:8", coop_id=coop.id,
                                amount=Money(100, "COP"), rail="Nequi", reference="1",
                                coop=coop.name)
    db.session.commit()
    saved = app.config["TWILIO_API_BASE"]
    app.config["TWILIO_API_BASE"] = "http://127.0.0.1:9"        # nothing listens there
    try:
        [outcome] = jobs.drain()
    finally:
        app.config["TWILIO_API_BASE"] = saved
    db.session.expire_all()
    assert outcome.status == "pending" and message.status == "queued" and message.attempts == 1
    assert message.error
    [again] = jobs.drain(now=utcnow() + timedelta(hours=2))
    db.session.expire_all()
    assert again.status == "done" and message.status == "sent" and message.attempts == 2
    assert len(sms_outbox.messages) == 1


def test_one_event_told_from_many_threads_at_once_is_one_message_and_one_job(app, make_buyer):
    """Eight workers replaying the same event at the same moment: the unique (event, person,
    channel) keeps one message, and only its writer enqueues a send (ON CONFLICT DO NOTHING:
    no error, no savepoint). On SQLite the writers take turns; on PostgreSQL they race."""
    import threading
    buyer_id = make_buyer().id
    barrier, outcomes = threading.Barrier(8), []

    def tell():
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                [message] = messages.notify(buyer_id, "buyer.released", event="order:77:released",
                                            pool="#77", amount=Money(100, "COP"))
                db.session.commit()
                outcomes.append(message.id)
            except Exception as exc:  # noqa: BLE001 - the outcome is what the test reads
                db.session.rollback()
                outcomes.append(type(exc).__name__)
            finally:
                db.session.remove()
    threads = [threading.Thread(target=tell) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == 8 and len(set(outcomes)) == 1 and isinstance(outcomes[0], int), \
        outcomes
    assert _count() == 1 and _count(Job) == 1
