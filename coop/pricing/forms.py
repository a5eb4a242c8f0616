from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..common.fields import MoneyField, Required


class PriceForm(Form):
    product = SelectField(_l("Crop and grade"), validate_choice=False,
                          validators=[DataRequired()])
    floor = MoneyField(_l("Floor per kg (the farmer price may never go below it)"),
                       validators=[Required()])
    farmer_price = MoneyField(_l("Farmer price per kg"), validators=[Required()])
    commission_kind = SelectField(_l("Commission"), choices=[
        ("bps", _l("Basis points of the farmer price (100 = 1%)")),
        ("per_kg", _l("Amount per kg"))])
    commission = MoneyField(_l("Commission value"), validators=[Required()])
    premium = MoneyField(_l("Social premium per kg"), validators=[Required()])
    tiers = TextAreaField(_l("Volume tiers: one per line, \"kg commission\" (lower commission "
                             "from that many kg)"), validators=[Optional(), Length(max=1000)])
    note = StringField(_l("Why the change (optional)"), validators=[Optional(), Length(max=200)])
    # Shown after a plausibility warning: the box confirms the numbers the token stands for.
    confirm = BooleanField(_l("Yes, this is right"))
    confirm_token = HiddenField(validators=[Optional(), Length(max=32)])
