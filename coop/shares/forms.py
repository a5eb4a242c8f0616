from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from ..common.fields import MoneyField, PercentField, WholeNumberField, Required


class SettingsForm(Form):
    par_value = MoneyField(_l("Par value of one share"), validators=[Required()])
    min_shares = WholeNumberField(_l("Minimum subscription (shares)"),
                                  validators=[Required()])
    withholding_pct = PercentField(_l("Withheld from what farmers are owed until paid (%)"),
                                   validators=[Required()])
    advance_pct = PercentField(_l("Advance paid in cash at intake (%)"),
                               validators=[Required()])


class PaymentForm(Form):
    member = SelectField(_l("Member"), validate_choice=False, validators=[DataRequired()])
    amount = MoneyField(_l("Amount"), validators=[Required()])
    via = SelectField(_l("Paid"), choices=[("cash", _l("in cash")), ("bank", _l("into the bank"))])
    note = StringField(_l("Note (receipt number)"), validators=[Optional(), Length(max=200)])
    idempotency_key = HiddenField(validators=[Length(max=64)])


class SubscriptionForm(Form):
    member = SelectField(_l("Member"), validate_choice=False, validators=[DataRequired()])
    shares = WholeNumberField(_l("Shares subscribed"), validators=[Required()])


class RedeemForm(Form):
    note = StringField(_l("Why (the member leaves)"), validators=[DataRequired(), Length(max=200)])
