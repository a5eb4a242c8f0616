"""Delivery reports: the SMS stand-in's signed status callbacks, replayed into
POST /messages/status/<provider>, move the message; a tampered, unsigned or foreign report
is refused; and the whole way from notify() to "delivered" through real servers."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st
from sqlalchemy import select

from devtools.sms_standin import twilio_signature

from coop.extensions import db
from coop.jobs import services as jobs
from coop.messages import channels, services as messages
from coop.messages.models import Message
from coop.messages.providers.twilio import signature_for
from coop.messages.services import Money
from tests.support.messaging import replay

CALLBACK = "http://minga.test/messages/status/twilio"


@pytest.fixture
def reports(monkeypatch):
    """What the webhook hands to messages.record_delivery."""
    got = []
    monkeypatch.setattr(messages, "record_delivery",
                        lambda *args: got.append(args) or True)
    return got


def _notify_paid(farmer, coop):
    return messages.notify(farmer, "farmer.paid", event="payout-line:1", coop_id=coop.id,
                           amount=Money(124_000_000, "COP"), rail="Nequi", reference="8812",
                           coop=coop.name, link="/my/payouts")


def _sent_sms(sms_outbox, to="+573001234567"):
    sent = channels.send_sms(to=to, body="Minga: su pago", status_callback=CALLBACK)
    return sent, sms_outbox.wait_for_callbacks(sent.provider_id, 2)


def test_the_stand_ins_signed_reports_are_accepted_in_order(client, sms_outbox, reports):
    sent, callbacks = _sent_sms(sms_outbox)
    assert [c["url"] for c in callbacks] == [CALLBACK, CALLBACK]
    assert [c["delivered"] for c in callbacks] == [False, False]  # recorded, not posted
    for callback in callbacks:
        assert replay(client, callback).status_code == 204
    assert reports == [("twilio", sent.provider_id, "sent", None),
                       ("twilio", sent.provider_id, "delivered", None)]


def test_a_failing_handset_reports_failed_with_twilios_error_code(client, sms_outbox, reports):
    sms_outbox.failing.add("+573009999999")
    sent, callbacks = _sent_sms(sms_outbox, to="+573009999999")
    assert [c["params"]["MessageStatus"] for c in callbacks] == ["sent", "failed"]
    assert replay(client, callbacks[1]).status_code == 204
    assert reports == [("twilio", sent.provider_id, "failed", "30003")]


def test_a_tampered_report_is_refused(client, sms_outbox, reports):
    sent, callbacks = _sent_sms(sms_outbox)
    tampered = {**callbacks[0]["params"], "MessageStatus": "delivered"}
    assert replay(client, callbacks[0], params=tampered).status_code == 403
    assert replay(client, callbacks[0], signature="").status_code == 403
    assert replay(client, callbacks[0], signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    response = client.post("/messages/status/twilio", data=callbacks[0]["params"])
    assert response.status_code == 403  # no X-Twilio-Signature at all
    assert reports == []


def test_a_report_signed_for_another_url_is_refused(client, sms_outbox, reports, app):
    """The signature covers PUBLIC_BASE_URL's URL: one made for another host (what
    request.url says behind a proxy, say) does not pass."""
    sent, callbacks = _sent_sms(sms_outbox)
    params = callbacks[0]["params"]
    token = app.config["TWILIO_AUTH_TOKEN"]
    other = signature_for(token, "http://localhost/messages/status/twilio", params)
    assert replay(client, callbacks[0], signature=other).status_code == 403
    assert replay(client, callbacks[0]).status_code == 204
    app.config["PUBLIC_BASE_URL"] = "https://minga.example"
    try:
        assert replay(client, callbacks[0]).status_code == 403
        mine = signature_for(token, "https://minga.example/messages/status/twilio", params)
        assert replay(client, callbacks[0], signature=mine).status_code == 204
    finally:
        app.config["PUBLIC_BASE_URL"] = "http://minga.test"


def test_a_report_signed_with_another_token_is_refused(client, sms_outbox, reports):
    sent, callbacks = _sent_sms(sms_outbox)
    forged = signature_for("not-our-token", CALLBACK, callbacks[0]["params"])
    assert replay(client, callbacks[0], signature=forged).status_code == 403
    assert reports == []


def test_an_unknown_provider_is_404(client, reports):
    assert client.post("/messages/status/nexmo", data={"MessageSid": "x"},
                       headers={"X-Twilio-Signature": "x"}).status_code == 404
    assert client.get("/messages/status/twilio").status_code == 405
    assert reports == []


def test_a_signed_report_naming_no_message_is_400(client, reports, app):
    params = {"MessageStatus": "delivered"}
    signature = signature_for(app.config["TWILIO_AUTH_TOKEN"], CALLBACK, params)
    response = client.post("/messages/status/twilio", data=params,
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 400 and reports == []


def test_a_farmers_sms_goes_from_notify_to_delivered(client, sms_outbox, make_coop,
                                                      make_farmer):
    """notify -> the send job -> the stand-in -> its signed report -> delivered."""
    coop = make_coop()
    farmer = make_farmer(coop, phone="+57 300 123 4567")
    farmer.email = None
    db.session.commit()
    [message] = _notify_paid(farmer, coop)
    db.session.commit()
    jobs.drain()
    message = db.session.scalar(select(Message).where(Message.id == message.id))
    assert message.status == "sent" and message.provider == "twilio"
    [got] = sms_outbox.messages
    assert got["sid"] == message.provider_id and got["to"] == "+573001234567"
    assert got["body"] == message.body
    callbacks = sms_outbox.wait_for_callbacks(message.provider_id, 2)
    assert callbacks[0]["url"] == "http://minga.test/messages/status/twilio"
    for callback in callbacks:
        assert replay(client, callback).status_code == 204
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "delivered"


def test_a_buyers_email_goes_from_notify_to_the_mailbox(mailbox, make_buyer):
    buyer = make_buyer()
    [message] = messages.notify(buyer, "buyer.captured", event="order:9:captured",
                                amount=Money(2_850_000, "COP"), pool="#9",
                                kg=messages.Kg(100_000), price=Money(28_500, "COP"))
    db.session.commit()
    jobs.drain()
    db.session.expire_all()
    message = db.session.get(Message, message.id)
    assert message.status == "sent" and message.provider == "smtp"
    [got] = mailbox
    assert got.rcpt_tos == [buyer.email] and got.subject == message.subject
    assert got.headers["Message-ID"] == message.provider_id
    assert got.text and got.html and message.body.split("\n\n")[0] in got.text


def test_reports_posted_over_http_reach_the_running_app(sms_outbox, live_server, app,
                                                        make_coop, make_farmer):
    """With the app served over HTTP (as under `make run`), the stand-in POSTs its signed
    reports itself, to the URL PUBLIC_BASE_URL names, and the message is delivered."""
    coop = make_coop()
    farmer = make_farmer(coop, phone="+57 300 765 4321")
    farmer.email = None
    db.session.commit()
    app.config["PUBLIC_BASE_URL"] = live_server.url
    sms_outbox.deliver_callbacks = None  # loopback URLs are posted to
    try:
        [message] = _notify_paid(farmer, coop)
        db.session.commit()
        jobs.drain()
        db.session.expire_all()
        sid = db.session.get(Message, message.id).provider_id
        callbacks = sms_outbox.wait_for_callbacks(sid, 2)
    finally:
        app.config["PUBLIC_BASE_URL"] = "http://minga.test"
    assert [c["url"] for c in callbacks] == [f"{live_server.url}/messages/status/twilio"] * 2
    assert [(c["delivered"], c["answer"]) for c in callbacks] == [(True, 204), (True, 204)]
    db.session.expire_all()
    assert db.session.get(Message, message.id).status == "delivered"


def test_the_signature_is_twilios_own_worked_example():
    """The example of Twilio's webhook security page: token 12345, this URL and these
    parameters sign as 0/KCTR6DLpKmkAf8muzZqo1nDgQ=, in whatever order they come."""
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = [("To", "+18005551212"), ("CallSid", "CA1234567890ABCDE"), ("Digits", "1234"),
              ("From", "+12349013030"), ("Caller", "+12349013030")]
    assert signature_for("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    from coop.messages.providers.twilio import Twilio
    adapter = Twilio({"TWILIO_AUTH_TOKEN": "12345"})
    assert adapter.verify_callback(url, dict(params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not adapter.verify_callback(url, dict(params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ")
    assert not adapter.verify_callback(url + "&x=1", dict(params),
                                       "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not Twilio({"TWILIO_AUTH_TOKEN": ""}).verify_callback(url, dict(params), "")


@given(st.dictionaries(st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122),
                               min_size=1, max_size=12),
                       st.text(max_size=40), max_size=8),
       st.text(min_size=1, max_size=20))
def test_the_stand_in_and_the_adapter_sign_alike(params, token):
    """Two implementations written apart (devtools imports nothing of Minga's)."""
    url = "https://minga.example/messages/status/twilio"
    assert twilio_signature(token, url, params) == signature_for(token, url, params)
