"""The forms of a lot's journey (checked by coop/lots/dispatch.py)."""
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..common.forms import Form


class ReadyForm(Form):
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=1000)])


class DispatchedForm(Form):
    carrier = StringField(_l("Carrier or exporter"), validators=[Length(max=120)])
    document_number = StringField(_l("Document number (bill of lading, remesa, waybill)"),
                                  validators=[Length(max=80)])
    on_date = StringField(_l("Dispatched on"), validators=[Length(max=10)],
                          render_kw={"type": "date"})
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=1000)])


class DeliveredForm(Form):
    on_date = StringField(_l("Delivered on (empty: today)"),
                          validators=[Optional(), Length(max=10)], render_kw={"type": "date"})
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=1000)])


STEP_FORMS = {"ready": ReadyForm, "dispatched": DispatchedForm, "delivered": DeliveredForm}


class ReceiptForm(Form):
    note = TextAreaField(_l("Note (optional)"), validators=[Optional(), Length(max=1000)])


class ProblemForm(Form):
    note = TextAreaField(_l("What is the problem?"), validators=[Length(max=1000)])
    # The form's own key, made when the page is shown: sending it twice is one report.
    key = HiddenField(validators=[DataRequired(), Length(max=48)])
