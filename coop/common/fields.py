"""Form fields for numbers typed the way people type them, in the page's regional locale.

`field.data` is the number as read (a Decimal in the field's unit: kilograms, major money
units, hectares, percent) or None when empty or unreadable; the services apply their own
ranges. An unreadable entry puts "Write it like 1.200,5 or 1200,5." on the field and the page
shows back exactly what was typed. A prefilled value (`field.data = Decimal(...)`) is written
in the page's locale, so that sending the form unchanged reads back the same number."""
from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, StringField
from wtforms.validators import DataRequired, StopValidation

from . import numbers

MAX_CHARS = 32


class Required(DataRequired):
    """Something must be typed (not only spaces). Unlike DataRequired it does not look at the
    number read, so 0 (a premium of zero) is an answer."""

    def __call__(self, form, field):
        raw = field.raw_data[0] if field.raw_data else ""
        if raw is None or not str(raw).strip():
            field.errors[:] = []
            raise StopValidation(self.message or field.gettext("This field is required."))


class LocaleDecimalField(StringField):
    lead = _l("Give a number.")
    example = numbers.KG_EXAMPLE
    example_format = numbers.KG_FORMAT
    display_format = numbers.KG_FORMAT
    inputmode = "decimal"
    # Beyond it the field refuses, saying it; None where the service says its own maximum.
    maximum = numbers.MAX_NUMBER

    def __init__(self, label=None, validators=None, **kwargs):
        render_kw = dict(kwargs.pop("render_kw", None) or {})
        render_kw.setdefault("inputmode", self.inputmode)
        render_kw.setdefault("autocomplete", "off")
        super().__init__(label, validators, render_kw=render_kw, **kwargs)

    def process_formdata(self, valuelist):
        self.data = None
        if not valuelist:
            return
        text = valuelist[0]
        if text is None or not str(text).strip():
            return
        if len(str(text)) > MAX_CHARS:
            raise ValueError(_l("That is too long for a number."))
        try:
            self.data = numbers.parse_number(str(text), example=self.example,
                                             fmt=self.example_format, maximum=self.maximum)
        except numbers.NumberInputError as exc:
            raise ValueError(f"{self.lead} {exc.message}")

    def format(self, value: Decimal) -> str:
        return numbers.format_number(value, self.display_format)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        if self.data is None or self.data == "":
            return ""
        if isinstance(self.data, str):
            return self.data
        return self.format(Decimal(self.data))


class KilogramField(LocaleDecimalField):
    """Kilograms; services turn the Decimal into grams with parse_kg (at most 10,000 t)."""
    lead = _l("Give kilograms as a number.")
    maximum = None


class MoneyField(LocaleDecimalField):
    """An amount in the currency's major unit (36000.5 COP); services make minor units
    (parse_major: at most money.MAX_MAJOR, said in the currency)."""
    lead = _l("Give the amount as a number.")
    maximum = None
    example = numbers.MONEY_EXAMPLE
    example_format = "#,##0.00"

    def format(self, value: Decimal) -> str:
        return numbers.format_money_input(value)


class HectaresField(LocaleDecimalField):
    lead = _l("Give hectares as a number.")
    example = numbers.HECTARES_EXAMPLE
    example_format = display_format = numbers.HECTARES_FORMAT


class PercentField(LocaleDecimalField):
    lead = _l("Give a percentage as a number.")
    example = numbers.PERCENT_EXAMPLE
    example_format = display_format = numbers.PERCENT_FORMAT


class WholeNumberField(LocaleDecimalField):
    """A count (shares) or basis points: "1.200" in es_CO is 1200; services check it is whole."""
    lead = _l("Give a whole number.")
    example = numbers.WHOLE_EXAMPLE
    example_format = display_format = numbers.WHOLE_FORMAT
    inputmode = "numeric"


class StrictIntegerField(IntegerField):
    """A whole number in ASCII digits, an optional leading minus, at most 18 digits (a
    household's size, a year, a figure carried by the page). wtforms' IntegerField takes
    whatever int() takes: "+5", " 5", "\u0665" (Arabic-Indic five), "\uff15" (full-width)."""

    def process_formdata(self, valuelist):
        if valuelist and valuelist[0] not in (None, ""):
            text = str(valuelist[0]).strip()
            if not numbers.WHOLE_ASCII.fullmatch(text):
                self.data = None
                raise ValueError(self.gettext("Not a valid integer value."))
        super().process_formdata(valuelist)
