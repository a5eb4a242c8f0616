"""The buyer's form for the DDS reference number TRACES gave its due diligence statement."""
from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, StringField
from wtforms.validators import Length

from ..common.fields import Required
from ..common.forms import Form


class DdsForm(Form):
    reference = StringField(_l("DDS reference number (as TRACES shows it)"),
                            validators=[Required(), Length(max=80)],
                            render_kw={"autocomplete": "off", "spellcheck": "false",
                                       "placeholder": "25COXRT3VGH7L9"})
    # The reference recorded when the page was shown: a change names what it replaces.
    replaces = HiddenField(validators=[Length(max=80)])
