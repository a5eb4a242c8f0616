"""The manager's plot forms. Coordinates are read by coop.plots.files (a decimal comma or
point, decimals kept as typed); the services check everything else."""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from ..common.fields import PercentField, Required, StrictIntegerField
from ..common.forms import Form
from ..common.labels import choices


class PointForm(Form):
    latitude = StringField(_l("Latitude (decimal degrees, south negative)"),
                           validators=[Required(), Length(max=32)],
                           render_kw={"inputmode": "decimal", "autocomplete": "off",
                                      "placeholder": "2,440000"})
    longitude = StringField(_l("Longitude (decimal degrees, west negative)"),
                            validators=[Required(), Length(max=32)],
                            render_kw={"inputmode": "decimal", "autocomplete": "off",
                                       "placeholder": "-76,600000"})


class PolygonForm(Form):
    LONG_FIELDS = ("positions",)
    positions = TextAreaField(
        _l("The boundary: one position per line, latitude then longitude, the first again "
           "at the end"), validators=[Required(), Length(max=80_000)],
        render_kw={"rows": 8, "placeholder": "2,440000 -76,600000\n2,440000 -76,599000\n"
                                             "2,441000 -76,599000\n2,440000 -76,600000"})


class FileForm(Form):
    file = FileField(_l("A GeoJSON or KML file"))


class CutoffForm(Form):
    land_use = SelectField(_l("Land use on 31 December 2020"),
                           choices=[("", "—")] + choices("plot_land_use"),
                           validators=[Required()])
    evidence_kind = SelectField(_l("Evidence"),
                                choices=[("", "—")] + choices("plot_evidence_kind"),
                                validators=[Required()])
    evidence_ref = StringField(_l("Reference of the evidence (satellite check, report...)"),
                               validators=[Optional(), Length(max=200)])
    document = FileField(_l("Document or photo (PDF, JPEG, PNG, WebP, up to 10 MB)"))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)],
                         render_kw={"rows": 2})


class LegalityForm(Form):
    tenure_type = SelectField(_l("How the farmer holds the land"),
                              choices=[("", "—")] + choices("plot_tenure_type"),
                              validators=[Required()])
    tenure_reference = StringField(_l("Reference (title's registration number...)"),
                                   validators=[Optional(), Length(max=200)])
    document = FileField(_l("Document (PDF or photo, up to 10 MB)"))


class ConsentForm(Form):
    signed = BooleanField(_l("The farmer signed this consent on paper; the coop keeps the "
                             "sheet"), validators=[Required(_l("Tick it once the farmer has "
                                                               "signed."))])


class WithdrawConsentForm(Form):
    pass


class SettingsForm(Form):
    area_tolerance = PercentField(_l("Area tolerance (% between declared and measured)"),
                                  validators=[Required()])
    gps_accuracy_max_m = StrictIntegerField(_l("Worst GPS accuracy accepted (metres)"),
                                            validators=[Required()])


class MyConsentForm(Form):
    """The farmer's own consent: the CSRF token only; the confirmation page shows the text."""
