"""What the messages domain needs of a person, answered by the domain that owns users."""
from __future__ import annotations

from flask import current_app

from ..extensions import db
from .models import User

TIMEZONES = {"CO": "America/Bogota", "PE": "America/Lima", "EC": "America/Guayaquil",
             "BO": "America/La_Paz", "MX": "America/Mexico_City"}


def _region(user: User) -> str | None:
    coops = [m.coop for m in user.memberships]
    return coops[0].country if coops else (user.buyer.country if user.buyer else None)


def recipient(user_id: int):
    from ..messages.services import Recipient
    user = db.session.get(User, user_id)
    if user is None:
        return None
    region = _region(user)
    phone = user.phone
    if phone and not phone.startswith("+"):
        phone = "+" + phone
    channel = getattr(user, "channel", None) or ("email" if user.email else "sms")
    timezone = getattr(user, "timezone", None) or TIMEZONES.get(region or "", None) or \
        current_app.config.get("BABEL_DEFAULT_TIMEZONE", "America/Bogota")
    return Recipient(id=user.id, name=user.name, email=user.email, phone=phone,
                     language=user.locale if user.locale in ("es", "en") else "es",
                     region=region, channel=channel, timezone=timezone,
                     announcements=bool(getattr(user, "announcements", False)))


def set_announcements(user_id: int, on: bool) -> None:
    user = db.session.get(User, user_id)
    if user is not None and hasattr(user, "announcements"):
        user.announcements = on


def names(user_ids: set[int]) -> dict[int, str]:
    from sqlalchemy import select
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all())
