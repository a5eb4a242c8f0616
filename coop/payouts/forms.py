from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from flask_wtf.file import FileField
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..cooperatives.labels import RAILS
from ..cooperatives.models import PAYOUT_RAILS


class BatchForm(Form):
    rail = SelectField(_l("Rail"), choices=[("", _l("Every rail"))] + [
        (r, RAILS[r]) for r in PAYOUT_RAILS],
                       validators=[Optional()])
    # A fresh key per page view: a double click or a resent form makes one batch, not two.
    idempotency_key = HiddenField(validators=[DataRequired(), Length(max=255)])


class ConfirmationsForm(Form):
    LONG_FIELDS = ("text",)  # a pasted confirmation file (parse_confirmations limits it)
    file = FileField(_l("Confirmation file from the bank (CSV: line_id,status,reference)"))
    text = TextAreaField(_l("...or paste its content"), validators=[Optional()])


class CashConfirmForm(Form):
    status = SelectField(_l("Outcome"), choices=[("paid", _l("Paid, receipt signed")),
                                                 ("failed", _l("Not paid"))])
    reference = StringField(_l("Receipt number"), validators=[Optional(), Length(max=255)])
