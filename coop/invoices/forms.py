from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from ..common.forms import Form
from .models import KINDS


def _country_choices():
    from babel import Locale
    from flask_babel import get_locale
    from ..cooperatives.services import _COUNTRIES
    locale = get_locale() or Locale("en")
    names = locale.territories
    return [("", _l("Choose a country"))] + sorted(
        ((code, names.get(code, code)) for code in _COUNTRIES), key=lambda pair: pair[1])


class BillingForm(Form):
    legal_name = StringField(_l("Legal name of your organisation"),
                             validators=[DataRequired(), Length(max=200)])
    tax_id = StringField(_l("Tax id (VAT number, NIT, RUC, EIN...)"),
                         validators=[DataRequired(), Length(max=40)])
    country = SelectField(_l("Country"), validate_choice=False, validators=[DataRequired()])
    address = TextAreaField(_l("Billing address"), validators=[DataRequired(), Length(max=300)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.country.choices = _country_choices()


def _date(form, field):
    from datetime import date
    if field.data:
        try:
            field.data = date.fromisoformat(str(field.data))
        except ValueError:
            raise ValidationError(_l("Give the date as YYYY-MM-DD."))
    else:
        field.data = None


class SettingsForm(Form):
    legal_name = StringField(_l("Legal name"), validators=[DataRequired(), Length(max=200)])
    tax_id = StringField(_l("Tax id (NIT with its check digit, or RUC)"),
                         validators=[DataRequired(), Length(max=20)])
    address = TextAreaField(_l("Registered address"), validators=[DataRequired(), Length(max=300)])


for _kind in KINDS:
    setattr(SettingsForm, f"{_kind}_prefix",
            StringField(_l("Prefix"), validators=[Optional(), Length(max=10)]))
    setattr(SettingsForm, f"{_kind}_from",
            StringField(_l("First authorised number"), validators=[Optional(), Length(max=20)],
                        render_kw={"inputmode": "numeric"}))
    setattr(SettingsForm, f"{_kind}_to",
            StringField(_l("Last authorised number"), validators=[Optional(), Length(max=20)],
                        render_kw={"inputmode": "numeric"}))
    setattr(SettingsForm, f"{_kind}_resolution",
            StringField(_l("Resolution (number and text)"),
                        validators=[Optional(), Length(max=200)]))
    setattr(SettingsForm, f"{_kind}_resolution_on",
            StringField(_l("Resolution date"), validators=[Optional(), Length(max=10), _date],
                        render_kw={"type": "date"}))


class AcceptanceForm(Form):
    code = StringField(_l("Acceptance code (CUFE, CDR)"),
                       validators=[DataRequired(), Length(max=200)])


class ImportForm(Form):
    file = FileField(_l("CSV file of number,code lines"))
