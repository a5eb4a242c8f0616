"""Money is integer minor units plus an ISO 4217 code; Babel formats it for the reader."""
from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision

from .numbers import MONEY_EXAMPLE, NumberInputError, parse_number, request_locale

# The largest amount Minga takes, in any currency's major unit: one trillion (10^12 COP is
# 250 million US dollars, far above any cooperative's year). Within it every amount, and the
# sum of a million of them, fits the database's BIGINT minor units.
MAX_MAJOR = 10 ** 12


class AmountTooLarge(ValueError):
    """An amount beyond MAX_MAJOR; `message` says the maximum in the currency."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def too_large_message(currency: str, locale=None) -> str:
    """"At most 1.000.000.000.000,00 COP." in the page's locale."""
    from flask_babel import gettext as _
    maximum = format_money(MAX_MAJOR * 10 ** exponent(currency), currency, locale)
    return _("The amount is too large: at most %(max)s.", max=maximum)


def exponent(currency: str) -> int:
    """Digits after the decimal point that the currency's minor unit stands for (COP, PEN: 2)."""
    return _precision(currency)


@lru_cache(maxsize=64)
def _precision(currency: str) -> int:
    return get_currency_precision(currency)


def to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-exponent(currency))


def parse_major(text, currency: str, *, locale=None) -> int:
    """"1234.50" in the currency's major unit -> minor units; refuses more decimals than it has.
    A string is machine format ("1234.50", no separators) unless `locale` is given: then it is
    read strictly in that locale ("en": "1,234.50" as a bank's CSV writes it). A Decimal is
    taken as it is (a form's MoneyField has read it in the page's locale already)."""
    from decimal import InvalidOperation

    from .quantities import MACHINE_NUMBER

    if text is None or (isinstance(text, str) and not text.strip()) or isinstance(text, float) \
            or isinstance(text, bool):
        raise ValueError("amount required")
    if isinstance(text, Decimal):
        amount = text
    elif isinstance(text, int):
        amount = Decimal(text)
    elif locale is not None:
        if len(str(text)) > 64:  # no amount is written with more characters
            raise AmountTooLarge(too_large_message(currency))
        try:  # the amount's own maximum (MAX_MAJOR, below) is the one said
            amount = parse_number(str(text), locale, maximum=None)
        except NumberInputError as exc:
            raise ValueError(exc.message)
    else:
        if not MACHINE_NUMBER.fullmatch(str(text).strip()):
            raise ValueError("not a number")
        try:
            amount = Decimal(str(text).strip())
        except InvalidOperation:
            raise ValueError("not a number")
    if not amount.is_finite():
        raise ValueError("not a number")
    if abs(amount) > MAX_MAJOR:  # before any arithmetic on a 400-digit number
        raise AmountTooLarge(too_large_message(currency))
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError("too many decimals")
    return int(scaled)


def parse_money_input(text, currency: str, locale=None) -> int:
    """Money typed in the page's locale, in major units -> minor units of `currency`."""
    value = parse_number(text, locale, example=MONEY_EXAMPLE, fmt="#,##0.00")
    return parse_major(value, currency)


def format_money(minor: int | None, currency: str, locale=None) -> str:
    """In the reader's regional locale, always with the ISO code where Spanish shows a sign:
    es_CO "28.500,00 COP", es_PE "28,500.00 PEN" (not "$" or "S/", which a buyer abroad
    could misread); English keeps CLDR's pattern ("COP28,500.00")."""
    return _format_money(minor or 0, currency, str(locale or request_locale() or "es"))


@lru_cache(maxsize=8192)
def _format_money(minor, currency: str, locale_name: str) -> str:
    """format_money's text, kept per (amount, currency, locale) in this process: a page shows
    the same prices many times, and Babel's pattern takes ~50 µs an amount."""
    from .numbers import locale_named, number_pattern
    loc = locale_named(locale_name)
    value = to_decimal(minor, currency)
    # babel's format_currency with its defaults, the pattern parsed once per process.
    pattern = (number_pattern(SPANISH_MONEY) if loc.language == "es"
               else loc.currency_formats["standard"])
    return pattern.apply(value, loc, currency=currency, currency_digits=True,
                         decimal_quantization=True, group_separator=True,
                         numbering_system="latn")


SPANISH_MONEY = "#,##0.00\u00a0\u00a4\u00a4"
