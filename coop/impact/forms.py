"""The period of an impact report, read from the query string (a GET form: no CSRF token, it
changes nothing)."""
from flask_babel import lazy_gettext as _l
from wtforms import Form, StringField
from wtforms.validators import Length, Optional


class PeriodForm(Form):
    start = StringField(_l("From (YYYY-MM-DD)"), validators=[Optional(), Length(max=40)])
    end = StringField(_l("To (YYYY-MM-DD), included"), validators=[Optional(), Length(max=40)])
