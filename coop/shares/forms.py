from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class SettingsForm(FlaskForm):
    par_value = StringField(_l("Par value of one share"),
                            validators=[DataRequired(), Length(max=20)],
                            render_kw={"inputmode": "decimal"})
    min_shares = StringField(_l("Minimum subscription (shares)"),
                             validators=[DataRequired(), Length(max=10)],
                             render_kw={"inputmode": "numeric"})
    withholding_pct = StringField(_l("Withheld from what farmers are owed until paid (%)"),
                                  validators=[DataRequired(), Length(max=10)],
                                  render_kw={"inputmode": "decimal"})
    advance_pct = StringField(_l("Advance paid in cash at intake (%)"),
                              validators=[DataRequired(), Length(max=10)],
                              render_kw={"inputmode": "decimal"})


class PaymentForm(FlaskForm):
    member = SelectField(_l("Member"), validate_choice=False, validators=[DataRequired()])
    amount = StringField(_l("Amount"), validators=[DataRequired(), Length(max=20)],
                         render_kw={"inputmode": "decimal"})
    via = SelectField(_l("Paid"), choices=[("cash", _l("in cash")), ("bank", _l("into the bank"))])
    note = StringField(_l("Note (receipt number)"), validators=[Optional(), Length(max=200)])
    idempotency_key = HiddenField(validators=[Length(max=64)])


class SubscriptionForm(FlaskForm):
    member = SelectField(_l("Member"), validate_choice=False, validators=[DataRequired()])
    shares = StringField(_l("Shares subscribed"), validators=[DataRequired(), Length(max=10)],
                         render_kw={"inputmode": "numeric"})


class RedeemForm(FlaskForm):
    note = StringField(_l("Why (the member leaves)"), validators=[DataRequired(), Length(max=200)])
