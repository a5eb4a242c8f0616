from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class ReverseForm(Form):
    reason = StringField(_l("Why this entry is reversed"),
                         validators=[DataRequired(), Length(max=200)])
