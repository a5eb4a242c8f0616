"""What the messages domain needs of a person, answered by the domain that owns users: their
addresses (phone in E.164), language, channel, time zone and consent (auth.services'
channel_of, timezone_of, language_of), wired by create_app (messages.people_from): one
person (`recipient`) or many in one query (`recipients`)."""
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


def recipients(user_ids) -> dict:
    """`recipient` for many people at once (a bank's file telling 10,000 farmers): one query
    of plain rows (no User objects, no memberships loaded one person at a time), the same
    answers as `recipient` gives for each. Missing ids are left out."""
    from flask import current_app, g
    from sqlalchemy import select

    from ..common.bulk import id_sets
    from ..cooperatives.models import Cooperative, Membership
    from ..messages.services import Recipient
    from .models import Buyer
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return {}
    # The country of the person's first membership's coop (as user.memberships orders them),
    # else their buyer organisation's: the region of their numbers and their time zone.
    coop_country = (select(Cooperative.country)
                    .join(Membership, Membership.coop_id == Cooperative.id)
                    .where(Membership.user_id == User.id)
                    .order_by(Membership.id).limit(1)
                    .correlate(User).scalar_subquery())
    languages = current_app.config.get("LANGUAGES", ("es", "en"))
    default_language = current_app.config.get("BABEL_DEFAULT_LOCALE", "es")
    default_tz = current_app.config.get("BABEL_DEFAULT_TIMEZONE", "America/Bogota")
    reached = g.get("auth_reached_at") or {}
    zones = services.COUNTRY_TIMEZONES
    out = {}
    for where in id_sets(User.id, ids):
        rows = db.session.execute(
            select(User.id, User.name, User.email, User.phone, User.locale, User.channel,
                   User.timezone, User.announcements, coop_country.label("coop_country"),
                   Buyer.country.label("buyer_country"))
            .outerjoin(Buyer, Buyer.id == User.buyer_id).where(where))
        for (uid, name, email, own_phone, locale, chosen, zone, announcements, country,
             buyer_country) in rows:
            region = country or buyer_country
            phone = reached.get(uid, own_phone) if reached else own_phone
            # auth.services.channel_of, on the row
            if chosen == "email" and email:
                channel = "email"
            elif chosen in ("sms", "whatsapp") and own_phone:
                channel = chosen
            else:
                channel = "email" if email else "sms"
            if phone and not own_phone and channel == "email":
                channel = "sms"
            out[uid] = Recipient(
                id=uid, name=name, email=email, phone=phone,
                language=locale if locale in languages else default_language,
                region=region, channel=channel,
                timezone=zone or zones.get(region or "", default_tz),
                announcements=bool(announcements))
    return out
