from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from wtforms import BooleanField, HiddenField, SelectField
from wtforms.validators import Length, Optional

from ..common.fields import KilogramField


class IntakeForm(Form):
    received_kg = KilogramField(_l("Kilograms received (scale)"), validators=[Optional()])
    grade = SelectField(_l("Grade received"), validate_choice=False)
    not_delivered = BooleanField(_l("Nothing was delivered"))
    # One key per form shown: a double tap on a slow connection records the delivery once.
    idempotency_key = HiddenField(validators=[Length(max=64)])
