"""Delivery channels: e-mail over SMTP, SMS and WhatsApp through the configured provider
adapter (coop/messages/providers/), and what an SMS costs in segments.

    sent = send_email(to="ana@example.org", subject="...", text="...", html="<p>...</p>",
                      headers={"List-Unsubscribe": "<https://...>"})
    sent = send_sms(to="+573001234567", body="...", status_callback="https://.../twilio")

Each returns `Sent(provider, provider_id, status)` or raises `ChannelError`, whose
`permanent` says whether trying again can help: a refused address is permanent; a
connection error, a timeout or a server's 5xx is not. Settings come from the app's config
(MAIL_*, SMS_PROVIDER and the provider's own; see README)."""
from __future__ import annotations

import smtplib
import ssl
import unicodedata
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr

from flask import current_app

from . import providers
from .outcomes import ChannelError, Sent

__all__ = ["ChannelError", "Sent", "send_email", "send_sms", "send_whatsapp", "segments",
           "normalise_for_sms"]


# --- e-mail ---------------------------------------------------------------------------------

def send_email(*, to: str, subject: str, text: str, html: str,
               headers: dict | None = None) -> Sent:
    """One multipart/alternative message (text, then HTML) from MAIL_FROM to `to`, with the
    extra `headers` (List-Unsubscribe ...), over SMTP: STARTTLS when MAIL_USE_STARTTLS (a
    server that cannot is refused, never a plain login), a login when MAIL_USERNAME is set.
    The Message-ID is made here and is the returned provider_id."""
    config = current_app.config
    sender = config["MAIL_FROM"]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "minga.local"
    message = EmailMessage()
    message_id = make_msgid(domain=domain)
    try:
        message["From"] = sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = message_id
        for name, value in (headers or {}).items():
            if name.lower() in ("from", "to", "subject", "message-id"):
                continue  # ours; a caller's header must not replace them
            message[name] = value
    except ValueError as exc:  # a line break in a header: no retry makes it sendable
        raise ChannelError(f"bad header: {exc}", code="bad_header", permanent=True) from exc
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    host, port = config["MAIL_SERVER"], int(config["MAIL_PORT"])
    try:
        with smtplib.SMTP(host, port, timeout=int(config["MAIL_TIMEOUT_SECONDS"])) as smtp:
            smtp.ehlo()
            if config.get("MAIL_USE_STARTTLS"):
                if not smtp.has_extn("starttls"):
                    raise ChannelError(f"{host}:{port} offers no STARTTLS", code="smtp_no_tls")
                smtp.starttls(context=_tls_context(config.get("MAIL_CA_FILE") or None))
                smtp.ehlo()
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message, from_addr=parseaddr(sender)[1],
                              to_addrs=[parseaddr(to)[1] or to])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise ChannelError(f"{to} refused: {code} {_text(reply)}", code=f"smtp_{code}",
                           permanent=500 <= code < 600) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError(f"login refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                           code="smtp_auth") from exc
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"{exc.smtp_code} {_text(exc.smtp_error)}",
                           code=f"smtp_{exc.smtp_code}") from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS
        # smtplib reports a reply that timed out as "Connection unexpectedly closed".
        timed_out = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
        code = "timeout" if timed_out else "connection"
        raise ChannelError(f"{host}:{port}: {exc}", code=code) from exc
    return Sent(provider="smtp", provider_id=message_id, status="sent")


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


# --- SMS and WhatsApp -----------------------------------------------------------------------

def send_sms(*, to: str, body: str, status_callback: str | None = None) -> Sent:
    """`body` by SMS to `to` (E.164) through the SMS_PROVIDER's adapter; delivery reports go
    to `status_callback` (the public URL of /messages/status/<provider>)."""
    return providers.configured().send(to, body, channel="sms",
                                       status_callback=status_callback)


def send_whatsapp(*, to: str, body: str, status_callback: str | None = None,
                  template: str | None = None, variables: dict | None = None) -> Sent:
    """`body` by WhatsApp to `to` (E.164, or already "whatsapp:+57..."), as send_sms.

    WhatsApp takes a free-form `body` only within 24 hours of the person's last message to
    us; a message we start must be a template approved in advance: `template` is its id at
    the provider (Twilio's ContentSid, "HX..."), `variables` its placeholders ({"1": ...}),
    and `body` is then only our record of what it says. Outside the window a free-form
    message is accepted and then reported failed (Twilio's 63016)."""
    address = to if to.startswith("whatsapp:") else f"whatsapp:{to}"
    return providers.configured().send(address, body, channel="whatsapp",
                                       status_callback=status_callback, template=template,
                                       variables=variables)


# --- segments -------------------------------------------------------------------------------

# GSM 03.38's basic set (ESC aside) and its extension table, whose characters take two septets.
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_SINGLE, GSM7_PART = 160, 153   # septets: one message, each part of a longer one
UCS2_SINGLE, UCS2_PART = 70, 67     # UTF-16 code units likewise


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7 or ch in GSM7_EXTENSION for ch in text)


def segments(body: str) -> tuple[int, str]:
    """(segments, "GSM-7" | "UCS-2") that `body` is sent as: GSM-7 when every character is
    in its set (an extension character counts two septets), else UCS-2 (UTF-16 code units).
    A long message is cut into parts of 153 septets or 67 units, never inside an extension
    character's escape or a surrogate pair. An empty body is one segment."""
    if is_gsm7(body):
        sizes = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        single, part, encoding = GSM7_SINGLE, GSM7_PART, "GSM-7"
    else:
        sizes = [len(ch.encode("utf-16-le")) // 2 for ch in body]
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    if sum(sizes) <= single:
        return 1, encoding
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count, encoding


# Typography a translation may carry that GSM-7 has in plain form.
_PLAIN = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"',
          "\u201e": '"', "\u00ab": '"', "\u00bb": '"', "\u2013": "-", "\u2014": "-",
          "\u2212": "-", "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
          "\u00ba": "o", "\u00aa": "a", "\t": " "}


def normalise_for_sms(text: str) -> str:
    """`text` with what would make it UCS-2 folded into GSM-7 where a plain form reads the
    same: á í ó ú (and other accented letters outside GSM-7) lose their accent, curly
    quotes, dashes, ellipses and odd spaces become plain; é, ñ, ü, ¿, ¡ stay (GSM-7 has
    them). What has no plain form (an emoji) is kept as it is."""
    out = []
    for ch in text:
        if ch in GSM7 or ch in GSM7_EXTENSION:
            out.append(ch)
        elif ch in _PLAIN:
            out.append(_PLAIN[ch])
        else:
            base = unicodedata.normalize("NFD", ch)[0]
            out.append(base if base != ch and base in GSM7 else ch)
    return "".join(out)
