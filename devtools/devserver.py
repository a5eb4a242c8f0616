"""`make run`: serve the demo on http://127.0.0.1:5000 (starting the Stripe sandbox if needed,
and the loopback mail and SMS stand-ins unless MAIL_SERVER / TWILIO_ACCOUNT_SID are set:
what they receive shows on /dev/messages), with a Celery worker and beat beside it
(devtools/workers.py: on REDIS_URL's Redis, else an embedded broker in instance/), stopped
with the server."""
from __future__ import annotations

import os

from coop import create_app

from .sandbox import ensure_dev_sandbox


def start_stripe_sandbox() -> None:
    """Without a STRIPE_SECRET_KEY, the local sandbox, its webhooks sent to this server."""
    port = os.environ.get("PORT", "5000")
    sandbox = ensure_dev_sandbox(os.environ.get("MINGA_ENV", "development"),
                                 webhook_url=f"http://127.0.0.1:{port}/stripe/webhook")
    if sandbox is not None:
        print(f"Stripe sandbox (localstripe) on {sandbox.api_base}; test card pm_card_visa")


def start_message_standins() -> dict:
    """The SMTP and SMS stand-ins on loopback for whatever the environment does not name; the
    settings that point the app at them (also put in the environment, for the processes
    started after this one: the Celery worker)."""
    from config import Config
    settings: dict = {}
    if not os.environ.get("MAIL_SERVER"):
        from .smtp_standin import SmtpStandin
        mail = SmtpStandin(mailbox_dir=Config.DEV_MAILBOX_DIR).start()
        settings.update(mail.settings())
        print(f"SMTP stand-in on 127.0.0.1:{mail.port}; mail kept in {Config.DEV_MAILBOX_DIR}")
    if not os.environ.get("TWILIO_ACCOUNT_SID"):
        from .sms_standin import SmsStandin
        sms = SmsStandin().start()
        settings.update(sms.settings(), DEV_SMS_STANDIN_URL=sms.api_base)
        print(f"SMS/WhatsApp stand-in (Twilio's API) on {sms.api_base}")
    os.environ.update({name: ("1" if value else "0") if isinstance(value, bool) else str(value)
                       for name, value in settings.items()})
    return settings


def start_background_workers(environment: str) -> None:
    """The jobs run in a real Celery worker, and beat sends the periodic ones (a pool closes
    at its time), as in production; both stop with this server. MINGA_NO_WORKER: none (run
    `celery -A worker worker` and `celery -A worker beat` yourself)."""
    if os.environ.get("MINGA_NO_WORKER"):
        return
    from . import workers
    logs = workers.start(environment)
    print(f"Celery worker and beat on {_shown(workers.broker_url())}; logs: "
          + ", ".join(str(path) for path in logs))


def _shown(url: str) -> str:
    """A broker URL without its password."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def main() -> None:
    start_stripe_sandbox()
    environment = os.environ.get("MINGA_ENV", "development")
    development = environment == "development"
    settings = start_message_standins() if development else {}
    if os.environ.get("PORT") and "PUBLIC_BASE_URL" not in os.environ:
        # Links in messages and the SMS delivery reports' address: this server.
        os.environ["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{os.environ['PORT']}"
        settings["PUBLIC_BASE_URL"] = os.environ["PUBLIC_BASE_URL"]
    start_background_workers(environment)
    app = create_app(environment, **settings)
    if development:
        from .devpage import install
        install(app)
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")),
            debug=False, threaded=True)


if __name__ == "__main__":
    main()
