"""Pytest plugin: every message the suite sends reaches a real server on loopback.

- `message_standins` (session, autouse): the SMTP stand-in (aiosmtpd with AUTH, in plain
  SMTP as a loopback relay is: each STARTTLS handshake cost ~25 ms, and the suite sends
  thousands of e-mails) and the SMS stand-in (Twilio's Messages API), started once; the
  session app's MAIL_* and TWILIO_* settings point at them.
- `mailbox`: what reached the SMTP stand-in during the test (a list of
  devtools.smtp_standin.Received: envelope, headers, text and html), emptied per test.
- `tls_mailbox`: the same, from a second SMTP stand-in that requires STARTTLS (a self-signed
  certificate) and AUTH over it, as production's mail servers do; the app points at it for
  the test.
- `sms_outbox`: the SMS stand-in, emptied per test: `.messages` (Twilio's fields),
  `.callbacks` (the delivery reports it would send: url, params, signature),
  `.failing`, `.fail_next(status)`, `.wait_for_callbacks(sid)`.

The test app has no HTTP server, so the stand-in only records the reports addressed to
PUBLIC_BASE_URL (http://minga.test); tests.support.messaging.replay(client, callback) posts
one through the test client as Twilio would."""
from __future__ import annotations

import pytest

from devtools.sms_standin import SmsStandin
from devtools.smtp_standin import SmtpStandin

SETTINGS = ("MAIL_SERVER", "MAIL_PORT", "MAIL_USE_STARTTLS", "MAIL_CA_FILE", "MAIL_USERNAME",
            "MAIL_PASSWORD", "SMS_PROVIDER", "TWILIO_API_BASE", "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN", "TWILIO_FROM", "TWILIO_WHATSAPP_FROM",
            "TWILIO_MESSAGING_SERVICE_SID")


class Standins:
    def __init__(self, smtp: SmtpStandin, sms: SmsStandin):
        self.smtp, self.sms = smtp, sms


@pytest.fixture(scope="session", autouse=True)
def message_standins(app):
    smtp = SmtpStandin(tls=False).start()
    sms = SmsStandin(deliver_callbacks=False).start()
    saved = {name: app.config.get(name) for name in SETTINGS}
    app.config.update(smtp.settings(), **sms.settings())
    try:
        yield Standins(smtp, sms)
    finally:
        app.config.update(saved)
        smtp.stop()
        sms.stop()


@pytest.fixture(scope="session")
def _tls_standin():
    smtp = SmtpStandin().start()
    yield smtp
    smtp.stop()


@pytest.fixture
def tls_mailbox(_tls_standin, message_standins, app):
    _tls_standin.clear()
    _tls_standin.refuse.clear()
    assert _tls_standin.tls, "the STARTTLS stand-in needs openssl for its certificate"
    app.config.update(_tls_standin.settings())
    yield _tls_standin.messages
    _tls_standin.clear()
    app.config.update(message_standins.smtp.settings())


@pytest.fixture
def mailbox(message_standins, app):
    smtp = message_standins.smtp
    smtp.clear()
    smtp.refuse.clear()
    settings = smtp.settings()
    yield smtp.messages
    smtp.refuse.clear()
    app.config.update(settings)  # a test that changed the password or port


@pytest.fixture
def sms_outbox(message_standins, app):
    sms = message_standins.sms
    sms.clear()
    settings = sms.settings()
    yield sms
    sms.clear()
    sms.deliver_callbacks = False
    app.config.update(settings)



@pytest.fixture(autouse=True)
def _fresh_standins(message_standins):
    """What an earlier test sent is not kept for the whole session."""
    message_standins.smtp.clear()
    message_standins.sms.clear()
