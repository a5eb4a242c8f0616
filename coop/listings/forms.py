from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from flask_wtf.file import FileField
from wtforms import SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from ..common.fields import KilogramField, Required


class ListingForm(Form):
    coop_id = SelectField(_l("Cooperative"), coerce=int, validate_choice=False)
    product = SelectField(_l("Crop and grade"), validate_choice=False,
                          validators=[DataRequired(message=_l("Choose the crop and grade of "
                                                              "the harvest."))])
    quantity_kg = KilogramField(_l("Kilograms"), validators=[Required()])
    harvested_on = StringField(_l("Harvest date"), validators=[DataRequired(), Length(max=10)],
                               render_kw={"type": "date"})
    # The cooperative's own points (cooperatives.CollectionPoint), by name: the view fills the
    # choices, the listings service checks the name against the coop's list.
    collection_point = SelectField(_l("Collection point"), validate_choice=False,
                                   validators=[Optional(), Length(max=160)])
    # The farmer's own plots (checkboxes): the view fills the choices, the listings service
    # checks them (coffee and cacao need one; one plot only: pre-checked).
    plot_ids = SelectMultipleField(_l("Plots this harvest came from"), coerce=int,
                                   validate_choice=False)
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=500)])
    photo = FileField(_l("Photo (optional, JPEG, PNG or WebP, up to 10 MB)"),
                      render_kw={"accept": "image/jpeg,image/png,image/webp",
                                 "capture": "environment"})


class WithdrawForm(Form):
    pass
