"""Delivery channels (placeholder until the channels branch lands: SMTP and the SMS
provider adapters replace the senders here)."""
from __future__ import annotations

from dataclasses import dataclass

GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")
FOLD = str.maketrans("áíóúÁÍÓÚâêîôûÂÊÎÔÛ", "aiouAIOUaeiouAEIOU")


@dataclass(frozen=True)
class Sent:
    provider: str
    provider_id: str
    status: str


class ChannelError(Exception):
    def __init__(self, message: str, *, code: str = "error", permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


def segments(body: str) -> tuple[int, str]:
    if all(ch in GSM7 or ch in GSM7_EXT for ch in body):
        septets = sum(2 if ch in GSM7_EXT else 1 for ch in body)
        return (1 if septets <= 160 else -(-septets // 153)), "GSM-7"
    units = len(body.encode("utf-16-le")) // 2
    return (1 if units <= 70 else -(-units // 67)), "UCS-2"


def normalise_for_sms(text: str) -> str:
    return text.translate(FOLD)


def _unconfigured(*_args, **_kwargs):
    raise ChannelError("no channel configured", code="not_configured")


send_email = send_sms = send_whatsapp = _unconfigured
