"""What the messages domain wrote for a person (Message rows), and the code or link in it."""
from __future__ import annotations

import re

from sqlalchemy import select

from coop.extensions import db
from coop.messages.models import Message


def messages_to(user_id: int | None = None, template: str | None = None) -> list[Message]:
    """The Message rows (of `user_id`, of `template`), oldest first."""
    stmt = select(Message).order_by(Message.id)
    if user_id is not None:
        stmt = stmt.where(Message.user_id == user_id)
    if template is not None:
        stmt = stmt.where(Message.template == template)
    db.session.expire_all()
    return list(db.session.scalars(stmt))


def last_message(template: str, user_id: int | None = None) -> Message:
    found = messages_to(user_id, template)
    assert found, f"no {template} message (sent: {[m.template for m in messages_to()]})"
    return found[-1]


def code_in(message: Message) -> str:
    """The 6-digit code a message carries."""
    match = re.search(r"\b(\d{6})\b", message.body)
    assert match, message.body
    return match.group(1)


def reset_token_in(message: Message) -> str:
    """The token of the reset link a message carries."""
    match = re.search(r"/password/reset/([A-Za-z0-9_-]+)", message.body)
    assert match, message.body
    return match.group(1)
