"""/dev/messages: under `make run` (devtools/devserver.py installs it on the development app)
it shows what the loopback stand-ins received; in testing and in production there is no
such page."""
from __future__ import annotations

import uuid

import pytest

from devtools.devpage import install

REDIS_URI = "redis://127.0.0.1:6379/15"  # production refuses memory://; never connected here


def test_there_is_no_dev_page_in_testing(client, app):
    assert client.get("/dev/messages").status_code == 404
    with pytest.raises(RuntimeError):
        install(app)


def test_there_is_no_dev_page_in_production(other_app):
    production = other_app("production", SECRET_KEY=uuid.uuid4().hex * 2,
                           RATELIMIT_STORAGE_URI=REDIS_URI, CELERY_BROKER_URL=REDIS_URI)
    assert production.test_client().get("/dev/messages").status_code == 404
    assert "dev_messages" not in production.blueprints


def test_the_dev_page_shows_the_mail_and_sms_the_stand_ins_received(
        other_app, app, tmp_path, message_standins, sms_outbox):
    from devtools.smtp_standin import SmtpStandin
    from coop.messages import channels
    standin = SmtpStandin(mailbox_dir=str(tmp_path)).start()
    try:
        development = other_app("development", DEV_MAILBOX_DIR=str(tmp_path),
                                DEV_SMS_STANDIN_URL=sms_outbox.api_base,
                                **standin.settings(), **sms_outbox.settings())
        install(development)
        with development.app_context():
            channels.send_email(to="ana@example.org", subject="Pool #9 confirmado",
                                text="Su pedido está confirmado.", html="<p>Confirmado</p>",
                                headers={"List-Unsubscribe": "<https://minga.test/u/x>"})
            channels.send_sms(to="+573001234567", body="Minga: le pagamos 1.240.000 COP")
            channels.send_whatsapp(to="+51987654321", body="Hola, está listo")
        assert len(list(tmp_path.glob("*.eml"))) == 1
        page = development.test_client().get("/dev/messages",
                                             headers={"Accept-Language": "es"})
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "Pool #9 confirmado" in html and "Su pedido está confirmado." in html
        assert "ana@example.org" in html and "https://minga.test/u/x" in html
        assert "+573001234567" in html and "le pagamos 1.240.000 COP" in html
        assert "whatsapp:+51987654321" in html
        assert "GSM-7" in html and "UCS-2" in html       # "está" by WhatsApp
        assert "Mensajes recibidos (desarrollo)" in html  # in Spanish
    finally:
        standin.stop()


def test_the_dev_page_says_so_when_the_sms_stand_in_is_down(other_app, tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    development = other_app("development", DEV_MAILBOX_DIR=str(tmp_path / "none"),
                            DEV_SMS_STANDIN_URL=url)
    install(development)
    page = development.test_client().get("/dev/messages", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "The SMS stand-in did not answer" in html and "No e-mail received yet." in html
