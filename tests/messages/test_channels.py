"""The channels against real servers on loopback: e-mail through the SMTP stand-in
(STARTTLS, login), SMS and WhatsApp through the stand-in of Twilio's Messages API; which
failures are permanent and which are worth another try."""
from __future__ import annotations

import re
import socket

import pytest

from coop.messages import channels
from coop.messages.channels import ChannelError


def _email(**overrides):
    values = dict(to="ana@example.org", subject="Su pago está listo",
                  text="Le pagamos 1.240.000 COP.\n\nGracias.",
                  html="<p>Le pagamos <b>1.240.000 COP</b>.</p>",
                  headers={"List-Unsubscribe": "<https://minga.test/messages/unsubscribe/x>",
                           "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
    values.update(overrides)
    return channels.send_email(**values)


def test_an_email_arrives_in_text_and_html_with_its_headers_over_tls_and_a_login(tls_mailbox,
                                                                                  app):
    sent = _email()
    [got] = tls_mailbox
    assert sent.provider == "smtp" and sent.status == "sent"
    assert got.headers["Message-ID"] == sent.provider_id
    assert re.fullmatch(r"<[^@>]+@minga\.example>", sent.provider_id)
    assert got.rcpt_tos == ["ana@example.org"]
    assert got.mail_from == "no-reply@minga.example"
    assert got.headers["From"] == app.config["MAIL_FROM"]
    assert got.subject == "Su pago está listo"
    assert got.headers["List-Unsubscribe"] == "<https://minga.test/messages/unsubscribe/x>"
    assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.headers["Content-Type"].startswith("multipart/alternative")
    assert got.text.strip() == "Le pagamos 1.240.000 COP.\n\nGracias."
    assert "<b>1.240.000 COP</b>" in got.html
    assert got.login == app.config["MAIL_USERNAME"] == "minga"
    assert got.tls is True  # the stand-in makes its certificate with openssl


def test_a_callers_header_never_replaces_the_sender_or_the_message_id(mailbox):
    sent = _email(headers={"From": "evil@example.org", "Message-ID": "<x@y>"})
    [got] = mailbox
    assert got.headers["From"] != "evil@example.org"
    assert got.headers["Message-ID"] == sent.provider_id


@pytest.mark.parametrize("server", ["mailbox", "tls_mailbox"])
def test_a_wrong_password_is_refused_and_worth_retrying_once_fixed(server, request, app):
    received = request.getfixturevalue(server)
    app.config["MAIL_PASSWORD"] = "wrong"
    with pytest.raises(ChannelError) as refused:
        _email()
    assert refused.value.code == "smtp_auth" and not refused.value.permanent
    assert received == []


def test_a_refused_address_is_permanent(mailbox, message_standins):
    message_standins.smtp.refuse.add("nobody@example.org")
    with pytest.raises(ChannelError) as refused:
        _email(to="nobody@example.org")
    assert refused.value.permanent and refused.value.code == "smtp_550"
    assert mailbox == []


def test_no_mail_server_is_a_temporary_failure(mailbox, app):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        app.config["MAIL_PORT"] = sock.getsockname()[1]
    with pytest.raises(ChannelError) as failed:
        _email()
    assert failed.value.code == "connection" and not failed.value.permanent


def test_a_server_without_starttls_gets_no_login_in_the_clear(app, tls_mailbox):
    from devtools.smtp_standin import SmtpStandin
    plain = SmtpStandin(tls=False).start()
    try:
        assert app.config["MAIL_USE_STARTTLS"] is True
        app.config.update(MAIL_PORT=plain.port)          # STARTTLS still required
        with pytest.raises(ChannelError) as refused:
            _email()
        assert refused.value.code == "smtp_no_tls" and plain.messages == []
        app.config.update(MAIL_USE_STARTTLS=False)        # a loopback relay, told so
        _email()
        assert plain.messages[0].login == "minga" and plain.messages[0].tls is False
    finally:
        plain.stop()


# --- SMS and WhatsApp ----------------------------------------------------------------------

def test_an_sms_reaches_the_provider_with_its_fields_and_basic_auth(sms_outbox, app):
    sent = channels.send_sms(to="+573001234567", body="Minga: le pagamos 1.240.000 COP.",
                             status_callback="http://minga.test/messages/status/twilio")
    assert sent.provider == "twilio" and sent.status == "queued"
    assert re.fullmatch(r"SM[0-9a-f]{32}", sent.provider_id)
    [got] = sms_outbox.messages
    assert got["sid"] == sent.provider_id
    assert got["to"] == "+573001234567" and got["from"] == app.config["TWILIO_FROM"]
    assert got["body"] == "Minga: le pagamos 1.240.000 COP."
    assert got["status_callback"] == "http://minga.test/messages/status/twilio"
    assert got["account_sid"] == app.config["TWILIO_ACCOUNT_SID"]


def test_a_whatsapp_goes_from_the_whatsapp_sender_to_a_whatsapp_address(sms_outbox, app):
    sent = channels.send_whatsapp(to="+51987654321", body="Hola, su pago está listo.")
    [got] = sms_outbox.messages
    assert got["to"] == "whatsapp:+51987654321"
    assert got["from"] == app.config["TWILIO_WHATSAPP_FROM"] == "whatsapp:+14155238886"
    assert got["status_callback"] is None and sent.provider_id == got["sid"]
    # A sender configured as a bare number is still sent as a WhatsApp address.
    app.config["TWILIO_WHATSAPP_FROM"] = "+14155238886"
    channels.send_whatsapp(to="whatsapp:+51987654321", body="Hola")
    assert sms_outbox.messages[1]["from"] == "whatsapp:+14155238886"
    assert sms_outbox.messages[1]["to"] == "whatsapp:+51987654321"


def test_a_messaging_service_stands_in_for_the_from_number(sms_outbox, app):
    app.config.update(TWILIO_FROM="", TWILIO_MESSAGING_SERVICE_SID="MG" + "a" * 32)
    channels.send_sms(to="+573001234567", body="Hola")
    [got] = sms_outbox.messages
    assert got["from"] is None and got["messaging_service_sid"] == "MG" + "a" * 32


def test_no_sender_configured_sends_nothing(sms_outbox, app):
    app.config.update(TWILIO_FROM="", TWILIO_MESSAGING_SERVICE_SID="")
    with pytest.raises(ChannelError) as refused:
        channels.send_sms(to="+573001234567", body="Hola")
    assert refused.value.code == "not_configured" and sms_outbox.requests == 0


def test_the_stand_in_refuses_a_wrong_token_like_twilio(sms_outbox, app):
    import requests
    url = f"{sms_outbox.api_base}/2010-04-01/Accounts/{sms_outbox.account_sid}/Messages.json"
    form = {"To": "+573001234567", "From": "+15005550006", "Body": "x"}
    assert requests.post(url, data=form).status_code == 401
    answer = requests.post(url, data=form, auth=(sms_outbox.account_sid, "wrong"))
    assert answer.status_code == 401 and answer.json()["code"] == 20003
    answer = requests.post(url, data={"From": "+15005550006", "Body": "x"},
                           auth=(sms_outbox.account_sid, sms_outbox.auth_token))
    assert answer.status_code == 400 and answer.json()["code"] == 21604
    assert sms_outbox.messages == []
    # A wrong token is our account's fault, not the number's: worth another try once fixed.
    app.config["TWILIO_AUTH_TOKEN"] = "wrong"
    with pytest.raises(ChannelError) as refused:
        channels.send_sms(to="+573001234567", body="Hola")
    assert refused.value.code == "20003" and not refused.value.permanent


def test_a_refused_number_is_permanent_with_twilios_code(sms_outbox):
    with pytest.raises(ChannelError) as refused:
        channels.send_sms(to="3001234567", body="Hola")  # not E.164
    assert refused.value.permanent and refused.value.code == "21211"
    assert "Invalid 'To' Phone Number" in str(refused.value)
    assert sms_outbox.messages == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_too_many_requests_or_a_server_error_is_temporary(sms_outbox, status):
    sms_outbox.fail_next(status)
    with pytest.raises(ChannelError) as failed:
        channels.send_sms(to="+573001234567", body="Hola")
    assert not failed.value.permanent
    assert sms_outbox.messages == []
    channels.send_sms(to="+573001234567", body="Hola")  # the next try goes through
    assert len(sms_outbox.messages) == 1


def test_an_unreachable_provider_is_temporary(sms_outbox, app):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        app.config["TWILIO_API_BASE"] = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with pytest.raises(ChannelError) as failed:
        channels.send_whatsapp(to="+573001234567", body="Hola")
    assert failed.value.code == "connection" and not failed.value.permanent


def test_an_unknown_provider_setting_sends_nothing(sms_outbox, app):
    app.config["SMS_PROVIDER"] = "carrier-pigeon"
    with pytest.raises(ChannelError) as refused:
        channels.send_sms(to="+573001234567", body="Hola")
    assert refused.value.code == "not_configured" and sms_outbox.requests == 0


def test_the_server_takes_no_mail_without_the_login(mailbox, app):
    app.config["MAIL_USERNAME"] = ""
    with pytest.raises(ChannelError) as refused:
        _email()
    assert refused.value.code == "smtp_530" and not refused.value.permanent
    assert mailbox == []


def test_a_named_recipient_gets_the_bare_address_in_the_envelope(mailbox):
    _email(to="Ana Pérez <ana@example.org>")
    [got] = mailbox
    assert got.rcpt_tos == ["ana@example.org"]
    assert got.headers["To"] == "Ana Pérez <ana@example.org>"


@pytest.fixture
def silent_server():
    """A port that takes connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_a_mail_server_that_never_answers_times_out_temporarily(mailbox, app, silent_server):
    app.config.update(MAIL_PORT=silent_server, MAIL_TIMEOUT_SECONDS=1)
    try:
        with pytest.raises(ChannelError) as failed:
            _email()
    finally:
        app.config["MAIL_TIMEOUT_SECONDS"] = 30
    assert failed.value.code == "timeout" and not failed.value.permanent


def test_a_provider_that_never_answers_times_out_temporarily(sms_outbox, app, silent_server):
    app.config.update(TWILIO_API_BASE=f"http://127.0.0.1:{silent_server}",
                      SMS_TIMEOUT_SECONDS=1)
    try:
        with pytest.raises(ChannelError) as failed:
            channels.send_sms(to="+573001234567", body="Hola")
    finally:
        app.config["SMS_TIMEOUT_SECONDS"] = 30
    assert failed.value.code == "timeout" and not failed.value.permanent


def test_a_line_break_in_a_header_is_refused_for_good_and_sends_nothing(mailbox):
    with pytest.raises(ChannelError) as refused:
        _email(subject="Hola\r\nBcc: everyone@example.org")
    assert refused.value.permanent and refused.value.code == "bad_header"
    with pytest.raises(ChannelError):
        _email(headers={"List-Unsubscribe": "<https://x>\r\nBcc: everyone@example.org"})
    assert mailbox == []


TEMPLATE = "HX" + "b" * 32


def test_a_whatsapp_template_goes_as_its_content_sid_and_variables(sms_outbox):
    import json
    sent = channels.send_whatsapp(to="+573001234567", body="Minga: le pagamos 1.240.000 COP",
                                  template=TEMPLATE, variables={"1": "1.240.000 COP", 2: "8812"})
    [got] = sms_outbox.messages
    assert got["sid"] == sent.provider_id and got["content_sid"] == TEMPLATE
    assert json.loads(got["content_variables"]) == {"1": "1.240.000 COP", "2": "8812"}
    assert got["body"] == ""  # the template's text is the provider's, not ours
    with pytest.raises(ChannelError) as refused:
        channels.send_whatsapp(to="+573001234567", body="x", template="not-a-content-sid")
    assert refused.value.permanent and refused.value.code == "21655"


def test_a_free_form_whatsapp_outside_the_24_hour_window_is_reported_failed(sms_outbox):
    sms_outbox.whatsapp_window = {"+573001111111"}   # only this person wrote to us lately
    inside = channels.send_whatsapp(to="+573001111111", body="Hola",
                                    status_callback="http://minga.test/messages/status/twilio")
    outside = channels.send_whatsapp(to="+573002222222", body="Hola",
                                     status_callback="http://minga.test/messages/status/twilio")
    templated = channels.send_whatsapp(
        to="+573002222222", body="Hola", template=TEMPLATE,
        status_callback="http://minga.test/messages/status/twilio")
    reported = {sent.provider_id: [c["params"].get("ErrorCode") or c["params"]["MessageStatus"]
                                   for c in sms_outbox.wait_for_callbacks(sent.provider_id, 2)]
                for sent in (inside, outside, templated)}
    assert reported == {inside.provider_id: ["sent", "delivered"],
                        outside.provider_id: ["sent", "63016"],
                        templated.provider_id: ["sent", "delivered"]}
