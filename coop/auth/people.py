"""What the messages domain needs of a person, answered by the domain that owns users: their
addresses (phone in E.164), language, channel, time zone and consent (auth.services'
channel_of, timezone_of, language_of), wired by create_app (messages.people_from)."""
from __future__ import annotations

from ..extensions import db
from . import services
from .models import User


def _region(user: User) -> str | None:
    coops = [m.coop for m in user.memberships]
    return coops[0].country if coops else (user.buyer.country if user.buyer else None)


def recipient(user_id: int):
    from ..messages.services import Recipient
    user = db.session.get(User, user_id)
    if user is None:
        return None
    phone = services.reached_phone(user)
    channel = services.channel_of(user)
    if phone and not user.phone and channel == "email" and phone != user.phone:
        channel = "sms"
    return Recipient(id=user.id, name=user.name, email=user.email, phone=phone,
                     language=services.language_of(user), region=_region(user),
                     channel=channel, timezone=services.timezone_of(user),
                     announcements=bool(user.announcements))


def set_announcements(user_id: int, on: bool) -> None:
    user = db.session.get(User, user_id)
    if user is not None:
        services.set_announcements(user, on)


def names(user_ids: set[int]) -> dict[int, str]:
    from sqlalchemy import select
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all())
