"""A pool's delivery terms: how its lot reaches the buyers. EXW: the buyers (or their carrier)
pick it up at the coop's collection point; FCA: the coop hands it to a carrier or exporter at
a named place. With the day it is expected. Set when the pool opens (EXW at the coop's
collection point unless the manager says otherwise) and changed by the manager while the pool
is open; shown to the buyers on the pool's page and in the API."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from flask_babel import gettext as _

from ..common.dates import DateInputError, parse_date
from ..common.errors import Conflict, ValidationFailed
from ..common.forms import has_control
from ..common.models import utcnow
from ..cooperatives import services as coops
from .models import Pool

TERMS = ("EXW", "FCA")
DEFAULT_TERMS = "EXW"
MAX_PLACE = 200


@dataclass(frozen=True)
class Terms:
    terms: str
    place: str
    expected_on: date | None


def local_today(now: datetime | None = None) -> date:
    """Today where the coops are (the app's time zone): a manager in Cauca typing today's
    date at 8 p.m. is not in the past because it is already tomorrow in UTC."""
    zone = current_app.config.get("BABEL_DEFAULT_TIMEZONE", "America/Bogota") \
        if has_app_context() else "America/Bogota"
    return (now or utcnow()).astimezone(ZoneInfo(zone)).date()


def collection_place(coop_id: int) -> str:
    """The coop's collection point as the EXW place: its first point by name (with where it
    is), or "" when the coop has named none (the page then says "the collection point")."""
    points = coops.collection_points(coop_id)
    if not points:
        return ""
    point = points[0]
    return f"{point.name}, {point.place}"[:MAX_PLACE] if point.place else point.name[:MAX_PLACE]


def parse_terms(coop_id: int, terms, place, expected_on, *, today: date | None = None) -> Terms:
    """The terms as typed (a form or the API's JSON). Refuses, on the field: terms other than
    EXW or FCA, FCA without a named place, a place too long or with control characters, an
    expected date that is not a date or lies in the past. No terms: EXW; EXW with no place:
    the coop's collection point."""
    if terms is None or (isinstance(terms, str) and not terms.strip()):
        terms = DEFAULT_TERMS
    if not isinstance(terms, str) or terms.strip().upper() not in TERMS:
        raise ValidationFailed(_("Choose the delivery terms: EXW or FCA."),
                               fields={"delivery_terms": [_("Choose EXW or FCA.")]})
    terms = terms.strip().upper()
    if place is None:
        place = ""
    if not isinstance(place, str):
        raise ValidationFailed(_("The delivery place must be text."),
                               fields={"delivery_place": [_("Must be text.")]})
    place = " ".join(place.split())
    if has_control(place) or len(place) > MAX_PLACE:
        raise ValidationFailed(
            _("Give the place in at most %(n)d ordinary characters.", n=MAX_PLACE),
            fields={"delivery_place": [_("At most %(n)d characters.", n=MAX_PLACE)]})
    if terms == "FCA" and not place:
        raise ValidationFailed(
            _("FCA needs the place where the lot is handed to the carrier or exporter."),
            fields={"delivery_place": [_("Name the place (for example: Almacafé warehouse, "
                                         "Popayán).")]})
    if terms == "EXW" and not place:
        place = collection_place(coop_id)
    day = None
    if expected_on not in (None, ""):
        if not isinstance(expected_on, (str, date)):
            raise ValidationFailed(_("Give the expected date as YYYY-MM-DD."),
                                   fields={"delivery_expected_on": [_("Not a date.")]})
        try:
            day = parse_date(expected_on.strip() if isinstance(expected_on, str)
                             else expected_on)
        except DateInputError as exc:
            raise ValidationFailed(_("Give the expected date as YYYY-MM-DD."),
                                   fields={"delivery_expected_on": [exc.message]})
        if day < (today or local_today()):
            raise ValidationFailed(_("The expected delivery date is in the past."),
                                   fields={"delivery_expected_on": [_("In the past.")]})
    return Terms(terms, place, day)


def apply(pool: Pool, terms: Terms) -> None:
    pool.delivery_terms = terms.terms
    pool.delivery_place = terms.place
    pool.delivery_expected_on = terms.expected_on


def change_terms(pool: Pool, *, delivery_terms, delivery_place, delivery_expected_on,
                 today: date | None = None) -> Pool:
    """New delivery terms for an open pool (the manager's; the view checks the role). Refuses
    a pool that is no longer open (its buyers ordered on the terms it had) and what
    `parse_terms` refuses; nothing is changed then."""
    if pool.status != "open":
        raise Conflict(_("The delivery terms can only change while the pool is open."),
                       code="pool_closed")
    apply(pool, parse_terms(pool.coop_id, delivery_terms, delivery_place, delivery_expected_on,
                            today=today))
    return pool
