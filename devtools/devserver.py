"""`make run`: serve the demo on http://127.0.0.1:5000 (starting the Stripe sandbox if needed,
and the loopback mail and SMS stand-ins unless MAIL_SERVER / TWILIO_ACCOUNT_SID are set:
what they receive shows on /dev/messages), and a Celery worker with beat for the jobs
(unless MINGA_NO_WORKER is set: run `celery -A worker worker --beat` yourself)."""
from __future__ import annotations

import atexit
import os
import subprocess
import sys

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


def _die_with_parent() -> None:
    """In the child (Linux): SIGTERM when the process that started it dies, however it dies."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_worker() -> subprocess.Popen | None:
    """A Celery worker with an embedded beat on the development broker, with this process's
    environment (the stand-ins' settings included), so committed jobs (messages above all)
    run under `make run` as they do in production."""
    if os.environ.get("MINGA_NO_WORKER"):
        return None
    env = {**os.environ, "MINGA_ENV": os.environ.get("MINGA_ENV", "development")}
    schedule = os.path.join("instance", "celerybeat-schedule")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "--beat", "--pool", "solo",
         "--loglevel", "WARNING", "--schedule", schedule],
        env=env, preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    atexit.register(worker.terminate)
    print(f"Celery worker and beat (pid {worker.pid}) on the development broker")
    return worker


def main() -> None:
    start_stripe_sandbox()
    environment = os.environ.get("MINGA_ENV", "development")
    development = environment == "development"
    settings = start_message_standins() if development else {}
    app = create_app(environment, **settings)
    if development:
        from .devpage import install
        install(app)
        start_worker()
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")),
            debug=False, threaded=True)


if __name__ == "__main__":
    main()
