"""What a channel answers: `Sent`, or it raises `ChannelError` (the providers and the
channels share them; coop/messages/channels.py re-exports both)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    provider: str      # "smtp", "twilio", ...
    provider_id: str   # the Message-ID we made, the provider's message sid
    status: str        # the provider's word: "sent" for SMTP, "queued" for Twilio


class ChannelError(Exception):
    """A message not sent: `code` names why (the provider's own code where it gives one);
    `permanent` when sending it again cannot help (the address is refused)."""

    def __init__(self, message: str, *, code: str = "error", permanent: bool = False):
        super().__init__(message)
        self.code = str(code)
        self.permanent = permanent
