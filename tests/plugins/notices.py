"""What auth asked the messages domain to send (`notified`: one record per notify call, with
the code or link it carried). Until the messages domain exists, a stand-in module records the
calls and sends nothing; once it exists, the real notify runs and is recorded as well."""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest


@dataclass
class Notice:
    user_id: int
    template: str
    event: str
    channel: str | None
    context: dict = field(default_factory=dict)


@pytest.fixture(autouse=True)
def notified(monkeypatch):
    calls: list[Notice] = []
    try:
        import coop.messages.services as messages
        real = messages.notify
    except ImportError:
        messages = types.ModuleType("coop.messages.services")
        package = types.ModuleType("coop.messages")
        package.services = messages
        package.__path__ = []
        monkeypatch.setitem(sys.modules, "coop.messages", package)
        monkeypatch.setitem(sys.modules, "coop.messages.services", messages)
        real = None

    def notify(user, template, *, event, channel=None, **context):
        calls.append(Notice(user.id, template, event, channel, dict(context)))
        if real is not None:
            return real(user, template, event=event, channel=channel, **context)
        return []
    monkeypatch.setattr(messages, "notify", notify, raising=False)
    return calls
