from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..common.fields import MoneyField, Required, StrictIntegerField


class ActionForm(Form):
    """A button: CSRF only."""


class UploadForm(Form):
    file = FileField(_l("CSV file"), validators=[FileRequired()])


class BankMatchForm(Form):
    kind = HiddenField(validators=[DataRequired()])
    target_id = HiddenField(validators=[DataRequired()])


class CostForm(Form):
    amount = MoneyField(_l("Amount"), validators=[Required()])
    spent_on = StringField(_l("Date"), validators=[DataRequired(), Length(max=10)],
                           render_kw={"type": "date"})
    description = StringField(_l("What it was"), validators=[DataRequired(), Length(max=200)])
    reference = StringField(_l("Bank reference (optional)"),
                            validators=[Optional(), Length(max=200)])
    key = HiddenField(validators=[DataRequired(), Length(max=64)])
    # Shown after a plausibility warning: the box confirms the amount the token stands for.
    confirm = BooleanField(_l("Yes, this is right"))
    confirm_token = HiddenField(validators=[Optional(), Length(max=32)])


class CloseForm(Form):
    expected_surplus = StrictIntegerField(validators=[Optional()])
    year = StrictIntegerField(validators=[DataRequired(), NumberRange(2000, 2200)])


class NoteForm(Form):
    """Mark a difference explained: the treasurer's note (checked by the service)."""
    note = StringField(_l("Why it is not a difference"), validators=[Length(max=1000)])
