from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length


class ReverseForm(FlaskForm):
    reason = StringField(_l("Why this entry is reversed"),
                         validators=[DataRequired(), Length(max=200)])
