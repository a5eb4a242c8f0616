"""/dev/messages: what the loopback stand-ins received, on the app `make run` serves
(devserver.py installs it; create_app never does, so testing and production have no such
page). E-mail from the stand-in's mailbox directory (DEV_MAILBOX_DIR, one .eml per
message), SMS and WhatsApp from the SMS stand-in's list (DEV_SMS_STANDIN_URL)."""
from __future__ import annotations

import email
from email import policy
from pathlib import Path

import requests
from flask import Blueprint, current_app, render_template

bp = Blueprint("dev_messages", __name__)
SHOWN = 50


def _mail(directory: str) -> list[dict]:
    files = sorted(Path(directory).glob("*.eml"), reverse=True)[:SHOWN] if directory else []
    rows = []
    for path in files:
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        rows.append({"file": path.name, "to": str(parsed.get("To", "")),
                     "subject": str(parsed.get("Subject", "")),
                     "date": str(parsed.get("Date", "")),
                     "unsubscribe": str(parsed.get("List-Unsubscribe", "")),
                     "text": text.get_content() if text is not None else ""})
    return rows


def _sms(url: str) -> tuple[list[dict], str | None]:
    if not url:
        return [], None
    try:
        answer = requests.get(url.rstrip("/") + "/__standin/messages", timeout=3)
        answer.raise_for_status()
        return list(reversed(answer.json().get("messages", [])))[:SHOWN], None
    except (requests.RequestException, ValueError) as exc:
        return [], str(exc)


def install(app) -> None:
    """Add the page to the development server's app (refused on a testing one)."""
    if app.config.get("TESTING"):
        raise RuntimeError("/dev/messages is for the development server only")
    app.register_blueprint(bp)


@bp.get("/dev/messages")
def received():
    from coop.messages.channels import segments
    mail = _mail(current_app.config.get("DEV_MAILBOX_DIR") or "")
    sms, problem = _sms(current_app.config.get("DEV_SMS_STANDIN_URL") or "")
    for row in sms:
        row["segments"], row["encoding"] = segments(row.get("body") or "")
    return render_template("messages/dev.html", mail=mail, sms=sms, problem=problem)
