"""What the phone sends from the field (static/plotcapture.js, through the outbox): "I am at
my plot" (one GPS position) or "walk the boundary" (the positions recorded while walking
around the plot), with the GPS accuracy in metres.

    {"source": "gps_point" | "gps_walk",
     "positions": [[longitude, latitude], ...],   # numbers or decimal strings, 7 decimals
     "accuracy_m": 5}                              # the worst accuracy of the positions

`read_capture` turns it into the GeoJSON geometry `services.record_geometry` checks (a walk is
closed here: its first position again at the end) or refuses it with a clear message under
`geometry` (ValidationFailed). No database here."""
from __future__ import annotations

import math
from decimal import Decimal

from flask_babel import gettext as _

from ..common.errors import ValidationFailed
from . import geometry as geo

SOURCES = ("gps_point", "gps_walk")
MAX_POSITIONS = 5000
MAX_ACCURACY_M = 100_000


def _refuse(message, field: str = "geometry") -> ValidationFailed:
    return ValidationFailed(message, code="invalid_geometry", fields={field: [message]})


def _positions(raw) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(raw, list) or not raw:
        raise _refuse(_("No position was recorded: stand in the plot, or walk its boundary, "
                        "with the phone's location on."))
    if len(raw) > MAX_POSITIONS:
        raise _refuse(_("At most %(n)d positions in one walk.", n=MAX_POSITIONS))
    found = []
    for item in raw:
        try:
            found.append(geo._position(item))
        except geo.Refused as refused:
            raise _refuse(str(refused.problem.message))
    # The same position twice in a row (the walker stopped) is one position.
    distinct = [found[0]]
    for position in found[1:]:
        if position != distinct[-1]:
            distinct.append(position)
    return distinct


def _accuracy(raw) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, Decimal, str)):
        raise _refuse(_("The GPS accuracy must be a number of metres."), "accuracy_m")
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise _refuse(_("The GPS accuracy must be a number of metres."), "accuracy_m")
    if not value.is_finite() or value < 0 or value > MAX_ACCURACY_M:
        raise _refuse(_("The GPS accuracy must be a number of metres."), "accuracy_m")
    return max(1, math.ceil(value))


def read_capture(body) -> tuple[str, dict, int | None]:
    """(source, GeoJSON geometry, accuracy in whole metres) of what the phone sent."""
    if not isinstance(body, dict):
        raise _refuse(_("This is not a capture from the phone."))
    source = body.get("source")
    if source not in SOURCES:
        raise _refuse(_("Say whether this is a point or a walked boundary."), "source")
    accuracy = _accuracy(body.get("accuracy_m"))
    positions = _positions(body.get("positions"))
    if source == "gps_point":
        if len(positions) != 1:
            raise _refuse(_("A point is one position; a walk goes as a boundary."))
        lon, lat = positions[0]
        return source, {"type": "Point", "coordinates": [lon, lat]}, accuracy
    ring = positions[:-1] if len(positions) > 1 and positions[0] == positions[-1] else positions
    if len(ring) < 3:
        raise _refuse(_("Too few positions to close the boundary: %(n)d recorded, at least 3 "
                        "corners are needed. Walk all the way around the plot.", n=len(ring)))
    return source, {"type": "Polygon", "coordinates": [ring + [ring[0]]]}, accuracy
