"""Money is integer minor units plus an ISO 4217 code; Babel formats it for the reader."""
from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision
from flask_babel import get_locale


def exponent(currency: str) -> int:
    """Digits after the decimal point that the currency's minor unit stands for (COP, PEN: 2)."""
    return get_currency_precision(currency)


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-exponent(currency))


def parse_major(text, currency: str) -> int:
    """"1234.50" in the currency's major unit -> minor units; refuses more decimals than it has."""
    from decimal import InvalidOperation

    if text is None or (isinstance(text, str) and not text.strip()) or isinstance(text, float):
        raise ValueError("amount required")
    try:
        amount = Decimal(str(text).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError("not a number")
    if not amount.is_finite():
        raise ValueError("not a number")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError("too many decimals")
    return int(scaled)


def format_money(minor: int | None, currency: str, locale=None) -> str:
    locale = locale or get_locale() or "es"
    return format_currency(to_decimal(minor or 0, currency), currency, locale=str(locale))
