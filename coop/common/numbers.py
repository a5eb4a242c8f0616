"""Numbers as people type them: read (strictly) and written in the page's regional locale.

Colombia writes "1.234,5" (es_CO), Peru and Mexico "1,234.5" (es_PE, es_MX), like English.
A form reads what a person typed in the locale the page is shown in, with Babel's strict
parser: in es_CO "1.200" is 1200 and "1200,5" is 1200.5, while "1.5" or "1.20.0" (a dot that
is neither a thousands separator nor, there, a decimal point) is refused with an example of
how to write it. The JSON API never comes here: it keeps machine format ("1200.5").

The regional locale is chosen by coop/__init__.py's locale selector (a member's pages: the
coop's country; a buyer's: the browser's region); translations stay per language ("es")."""
from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError, localedata
from babel.numbers import (NumberFormatError, NumberPattern, get_decimal_symbol,
                           get_group_symbol, get_minus_sign_symbol, parse_decimal,
                           parse_pattern)
from flask import g
from flask_babel import get_locale
from flask_babel import gettext as _

DEFAULT_LOCALE = "es_CO"
# Digits of the example in a "write it like" message, and of a prefilled value.
KG_EXAMPLE, KG_FORMAT = Decimal("1200.5"), "#,##0.###"
MONEY_EXAMPLE = Decimal("36000.5")
HECTARES_EXAMPLE, HECTARES_FORMAT = Decimal("2.5"), "#,##0.####"
PERCENT_EXAMPLE, PERCENT_FORMAT = Decimal("12.5"), "#,##0.##"
WHOLE_EXAMPLE, WHOLE_FORMAT = Decimal("1200"), "#,##0"
# The largest number a form takes in any field (kilograms, money, hectares, counts): one
# quadrillion. Each field's service has its own, smaller, range (quantities.MAX_GRAMS,
# money.MAX_MAJOR, ...); this one keeps a typed number's digits within what those checks
# and the database's BIGINT can handle.
MAX_NUMBER = Decimal(10) ** 15


# A whole number as a machine or a person writes it in any of our locales: ASCII digits only.
WHOLE_ASCII = re.compile(r"-?[0-9]{1,18}")


def parse_whole(value) -> int:
    """An int, a whole Decimal, or "-12" in ASCII digits -> int; ValueError for anything
    else: "+5", "1e3", "12.0", full-width or Arabic-Indic digits, more than 18 digits."""
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value() \
                or abs(value) > MAX_NUMBER:
            raise ValueError("not a whole number")
        return int(value)
    text = str(value if value is not None else "").strip()
    if not WHOLE_ASCII.fullmatch(text):
        raise ValueError("not a whole number")
    return int(text)


class NumberInputError(ValueError):
    """What a person typed is not a number in the page's locale; `message` says how to write it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def regional_locale(language: str, country: str | None) -> str:
    """"es" + "PE" -> "es_PE" when CLDR knows it, else the bare language ("en" + "CO" -> "en")."""
    language = (language or "es").lower()
    country = (country or "").upper()
    if country.isalpha() and len(country) == 2 and localedata.exists(f"{language}_{country}"):
        return f"{language}_{country}"
    return language


@lru_cache(maxsize=128)
def locale_named(identifier: str) -> Locale:
    """Locale.parse, once per identifier and process (a Locale is read-only once built)."""
    return Locale.parse(identifier)


@lru_cache(maxsize=256)
def number_pattern(fmt: str) -> NumberPattern:
    """Babel's parsed number pattern, once per pattern and process."""
    return parse_pattern(fmt)


def format_decimal(value, format: str, locale) -> str:
    """babel.numbers.format_decimal with its defaults, without parsing the pattern (or the
    locale's name) again on every call: the same output."""
    if not isinstance(locale, Locale):
        locale = locale_named(str(locale))
    return number_pattern(format).apply(value, locale, decimal_quantization=True,
                                        group_separator=True, numbering_system="latn")


def request_locale() -> Locale | None:
    """flask_babel.get_locale(), read where Flask-Babel keeps the locale it chose for this
    request (or app context) once it has: get_locale itself walks the contexts on every call,
    and a page's filters ask ~50 times. force_locale and refresh change that same place."""
    ctx = g.get("_flask_babel") if g else None
    found = getattr(ctx, "babel_locale", None)
    return found if found is not None else get_locale()


def page_locale(locale=None) -> Locale:
    """The locale numbers are read and written in: the one given, else the request's."""
    if isinstance(locale, Locale):
        return locale
    if locale:
        try:
            return locale_named(str(locale))
        except (ValueError, UnknownLocaleError):
            pass
    return request_locale() or locale_named(DEFAULT_LOCALE)


def format_number(value, fmt: str = KG_FORMAT, locale=None) -> str:
    return format_decimal(value, format=fmt, locale=page_locale(locale))


def format_money_input(value: Decimal, locale=None) -> str:
    """A money amount for a form field: "36.000" or "36.000,50" (es_CO), no currency sign."""
    value = Decimal(value)
    fmt = "#,##0" if value == value.to_integral_value() else "#,##0.00"
    return format_number(value, fmt, locale)


def amount_examples(whole=Decimal(12500), locale=None) -> dict:
    """{"whole": "12.500", "decimals": "12.500,50"} in the page's locale, for messages."""
    return {"whole": format_money_input(Decimal(whole), locale),
            "decimals": format_money_input(Decimal(whole) + Decimal("0.50"), locale)}


def how_to_write(example: Decimal = KG_EXAMPLE, fmt: str = KG_FORMAT, locale=None) -> str:
    """"Write it like 1.200,5 or 1200,5." built from the locale's own symbols."""
    loc = page_locale(locale)
    grouped = format_decimal(example, format=fmt, locale=loc)
    plain = format_decimal(example, format=fmt.replace("#,##", ""), locale=loc)
    if grouped == plain:
        return _("Write it like %(example)s.", example=plain)
    return _("Write it like %(grouped)s or %(plain)s.", grouped=grouped, plain=plain)


def parse_number(text, locale=None, *, example: Decimal = KG_EXAMPLE,
                 fmt: str = KG_FORMAT, maximum: Decimal | None = MAX_NUMBER) -> Decimal:
    """Strictly parse what a person typed in the locale's notation. Refuses letters, exponents,
    misplaced separators, anything Babel's strict mode calls ambiguous, and numbers beyond
    `maximum` (None: the caller checks its own, smaller, range and says it)."""
    if isinstance(text, Decimal):
        if not text.is_finite():
            raise NumberInputError(how_to_write(example, fmt, locale))
        return text
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise NumberInputError(how_to_write(example, fmt, locale))
    if isinstance(text, int):
        return Decimal(text)
    loc = page_locale(locale)
    raw = text.strip()
    group = get_group_symbol(loc)
    if group in ("\u00a0", "\u202f"):  # a no-break space: let people type a plain one
        raw = raw.replace(" ", group)
    allowed = set("0123456789") | {get_decimal_symbol(loc), group, "-",
                                   get_minus_sign_symbol(loc)}
    if not raw or not any(ch.isdigit() for ch in raw) or any(ch not in allowed for ch in raw):
        raise NumberInputError(how_to_write(example, fmt, loc))
    try:
        value = parse_decimal(raw, locale=loc, strict=True)
    except (NumberFormatError, ValueError):
        raise NumberInputError(how_to_write(example, fmt, loc))
    if not value.is_finite():
        raise NumberInputError(how_to_write(example, fmt, loc))
    if maximum is not None and abs(value) > maximum:
        raise NumberInputError(_("That number is too large: at most %(max)s.",
                                 max=format_decimal(maximum, format="#,##0", locale=loc)))
    return value


def parse_kg_input(text, locale=None, *, allow_zero: bool = False) -> int:
    """Kilograms typed in the page's locale -> grams (the range rules of parse_kg)."""
    from .quantities import parse_kg
    return parse_kg(parse_number(text, locale, example=KG_EXAMPLE, fmt=KG_FORMAT),
                    allow_zero=allow_zero)
