"""Phone numbers in E.164 ("+573001234567"), parsed and validated per country with
`phonenumbers`: a number typed with its "+" and country code is read as such, one typed
without as a national number of the person's country (their coop's; Colombia when unknown)."""
from __future__ import annotations

import re

import phonenumbers
from flask_babel import gettext as _

from ..common.errors import ValidationFailed

DEFAULT_REGION = "CO"
# What people type between digits: spaces, dashes, dots, brackets; a "+" only in front.
_TYPED = re.compile(r"\+?[0-9\s\-().]*[0-9][0-9\s\-().]*")


def country_name(region: str) -> str:
    """The country's name in the page's language ("Colombia", "Perú")."""
    from babel import Locale
    from flask_babel import get_locale
    try:
        locale = get_locale() or Locale.parse("es")
    except (RuntimeError, ValueError):  # outside a request and app
        locale = Locale.parse("es")
    return locale.territories.get(region, region)


def parse(raw: str, region: str | None = None) -> str | None:
    """E.164 for `raw`, or None when it is no valid number: with "+" as typed; else first as a
    national number of `region` (Colombia by default), then as digits beginning with a
    country code ("573001234567")."""
    text = (raw or "").strip()
    if not text or len(text) > 32 or not text.isascii() or not _TYPED.fullmatch(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if not 7 <= len(digits) <= 15:
        return None
    tries = ["+" + digits] if text.startswith("+") else [digits, "+" + digits]
    for candidate in tries:
        try:
            number = phonenumbers.parse(candidate, None if candidate.startswith("+")
                                        else (region or DEFAULT_REGION))
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def normalise_phone(raw: str | None, region: str | None = None, *,
                    field: str = "phone") -> str | None:
    """The number in E.164 ("+57 300 123 4567", "3001234567" in Colombia -> "+573001234567");
    None when empty. Refuses (422 on `field`) anything but digits and the usual separators,
    and a number that is not valid in `region` (Colombia by default) nor with a country code,
    naming the country."""
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    region = (region or DEFAULT_REGION).upper()
    if not text.isascii() or not _TYPED.fullmatch(text):
        raise ValidationFailed(
            _("A phone number has only digits (spaces and dashes are fine), with + in front "
              "for another country."),
            code="invalid_phone", fields={field: [_("Only digits.")]})
    number = parse(text, region)
    if number is None:
        country = country_name(region)
        raise ValidationFailed(
            _("That is not a valid phone number in %(country)s. Type it as you would dial it "
              "there, or with + and the country code.", country=country),
            code="invalid_phone",
            fields={field: [_("Not a valid number in %(country)s.", country=country)]})
    return number


def region_of(e164: str | None) -> str | None:
    """The country ("CO", "PE") of a number in E.164, or None."""
    if not e164:
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def masked(e164: str | None) -> str:
    """The number as shown to someone who must recognise it, not read it: "+57 ••• ••• 4567"."""
    if not e164:
        return ""
    return f"{e164[:3]} ••• {e164[-4:]}"
