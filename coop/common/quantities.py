"""Kilograms travel as decimal strings and live in the database as integer grams."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l

# Machine format, as the API sends it: digits, optionally "." and decimals. Never a comma:
# what people type goes through coop.common.numbers in their page's locale first.
MACHINE_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")

MAX_GRAMS = 10_000_000_000  # 10,000 tonnes: more than any cooperative lists at once


class QuantityError(ValueError):
    pass


def parse_kg(value, *, allow_zero: bool = False) -> int:
    """Turn "120.5" (machine format, or a Decimal/int) into grams. Refuses floats, commas,
    negatives, >3 decimals, huge."""
    if isinstance(value, bool) or isinstance(value, float):
        raise QuantityError(_l("Give kilograms as a number with at most 3 decimals."))
    if value is None or (isinstance(value, str) and not value.strip()):
        raise QuantityError(_l("Kilograms are required."))
    if not isinstance(value, (str, int, Decimal)):  # a JSON list or object is no quantity
        raise QuantityError(_l("Give kilograms as a number, like 120.5."))
    if isinstance(value, str) and not MACHINE_NUMBER.fullmatch(value.strip()):
        raise QuantityError(_l("Give kilograms as a number, like 120.5."))
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value) \
            if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError, TypeError):
        raise QuantityError(_l("Give kilograms as a number, like 120.5."))
    if not amount.is_finite():
        raise QuantityError(_l("Give kilograms as a number, like 120.5."))
    # Before any arithmetic: quantize() and int() choke on (or crawl through) huge exponents.
    if amount < 0:
        raise QuantityError(_l("Kilograms must be more than zero."))
    if amount > Decimal(MAX_GRAMS) / 1000:
        raise QuantityError(_l("That is more than 10,000 tonnes; check the number."))
    if amount.as_tuple().exponent < -3 and amount != amount.quantize(Decimal("0.001")):
        raise QuantityError(_l("Kilograms can have at most 3 decimals (grams)."))
    grams = int((amount * 1000).to_integral_value())
    if grams < 0 or (grams == 0 and not allow_zero):
        raise QuantityError(_l("Kilograms must be more than zero."))
    if grams > MAX_GRAMS:
        raise QuantityError(_l("That is more than 10,000 tonnes; check the number."))
    return grams


def format_kg(grams: int | None) -> str:
    """Grams as the API's kilogram string: 120500 -> "120.500"."""
    grams = int(grams or 0)
    sign = "-" if grams < 0 else ""
    grams = abs(grams)
    return f"{sign}{grams // 1000}.{grams % 1000:03d}"


def grams_to_decimal(grams: int) -> Decimal:
    return Decimal(int(grams)) / 1000
