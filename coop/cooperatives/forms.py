from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from ..common.fields import HectaresField, Required, StrictIntegerField
from ..common.forms import Form
from ..catalog.labels import CROPS as CATALOGUE_CROPS

RAIL_CHOICES = [
    ("cash", _l("Cash at the collection point")), ("bank", _l("Bank account")),
    ("breb", _l("Bre-B key")), ("nequi", "Nequi"), ("daviplata", "Daviplata"),
    ("yape", "Yape"), ("plin", "Plin"), ("spei", _l("SPEI (CLABE, card or phone)")),
]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


ROLE_CHOICES = [("farmer", _l("Farmer")), ("manager", _l("Manager")),
                ("treasurer", _l("Treasurer"))]
# From the crop catalogue, so that reports count one crop under one name in any language.
LICIT_CHOICES = [("", "—")] + list(CATALOGUE_CROPS.items())
ILLICIT_CHOICES = [("", _l("None")), ("coca", _l("Coca")),
                   ("opium_poppy", _l("Opium poppy")), ("cannabis", _l("Cannabis"))]


class CoopForm(Form):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=160)])
    country = StringField(_l("Country (two letters, e.g. CO)"),
                          validators=[DataRequired(), Length(min=2, max=2)])
    currency = StringField(_l("Currency (three letters, e.g. COP)"),
                           validators=[DataRequired(), Length(min=3, max=3)])
    region = StringField(_l("Region"), validators=[Optional(), Length(max=120)])
    legal_name = StringField(_l("Legal name (as registered)"),
                             validators=[DataRequired(), Length(max=200)])
    tax_id = StringField(_l("Tax id (NIT with its check digit, RUC...)"),
                         validators=[DataRequired(), Length(max=32)])
    document = FileField(_l("Registration document (PDF or photo, up to 10 MB)"))


class RegistrationForm(Form):
    """A refused cooperative's registration, corrected."""
    legal_name = StringField(_l("Legal name (as registered)"),
                             validators=[DataRequired(), Length(max=200)])
    tax_id = StringField(_l("Tax id (NIT with its check digit, RUC...)"),
                         validators=[DataRequired(), Length(max=32)])
    document = FileField(_l("Registration document (PDF or photo, up to 10 MB)"))


class RefuseForm(Form):
    reason = TextAreaField(_l("Reason (the founder reads it)"),
                           validators=[DataRequired(), Length(max=500)])


class InvitationAccountForm(Form):
    name = StringField(_l("Your full name"), validators=[DataRequired(), Length(max=120)])
    password = PasswordField(_l("Password (at least 12 characters)"),
                             validators=[DataRequired(), Length(max=200)])


class FarmerForm(Form):
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail (optional)"),
                       validators=[Optional(), Email(), Length(max=254)], filters=[_strip])
    phone = StringField(_l("Phone (required without an e-mail)"),
                        validators=[Optional(), Length(max=20)])
    # At least 12 characters and not a common one (auth.passwords.check_new_password).
    password = PasswordField(_l("First password (at least 12 characters)"),
                             validators=[Optional(), Length(max=200)])
    member_number = StringField(_l("Member number"), validators=[DataRequired(), Length(max=32)])
    national_id = StringField(_l("National ID"), validators=[DataRequired(), Length(max=32)])
    # The identity document of the weekly purchase documents (optional): the choices are the
    # coop's country's (tax_id_choices), the number checked by the service.
    tax_id_type = SelectField(_l("Identity document (purchase documents)"),
                              choices=[("", "—")], validate_choice=False)
    tax_id = StringField(_l("Document number"), validators=[Optional(), Length(max=40)])
    gender = SelectField(_l("Gender"), choices=[("", "—"), ("female", _l("Female")),
                                               ("male", _l("Male")), ("other", _l("Other"))])
    household_size = StrictIntegerField(_l("People in the household"),
                                  validators=[Optional(), NumberRange(min=1, max=50)])
    payout_rail = SelectField(_l("Payout method"), choices=RAIL_CHOICES)
    payout_account = StringField(_l("Payout account"), validators=[Optional(), Length(max=64)])
    bank_name = StringField(_l("Bank"), validators=[Optional(), Length(max=80)])


class TaxIdForm(Form):
    """A member's identity document, recorded or changed on their page."""
    tax_id_type = SelectField(_l("Identity document (purchase documents)"),
                              choices=[("", "—")], validate_choice=False)
    tax_id = StringField(_l("Document number"), validators=[Optional(), Length(max=40)])


def tax_id_choices(country: str) -> list[tuple[str, str]]:
    """The identity documents a coop of `country` records its farmers by, "—" first (none)."""
    from ..common.labels import label
    from ..invoices.taxids import PERSON_ID_TYPES
    return [("", "—")] + [(kind, label(kind, "person_id_type"))
                          for kind in PERSON_ID_TYPES.get(country, ())]


class PlotForm(Form):
    name = StringField(_l("Plot name"), validators=[DataRequired(), Length(max=120)])
    hectares = HectaresField(_l("Hectares"), validators=[Required()])
    replaced_crop = SelectField(_l("Illicit crop it replaced"), choices=ILLICIT_CHOICES)
    illicit_hectares = HectaresField(_l("Hectares of it replaced"), validators=[Optional()])
    licit_crop = SelectField(_l("Legal crop grown now"), choices=LICIT_CHOICES,
                             validators=[Optional()])


class PayoutForm(Form):
    payout_rail = SelectField(_l("Payout method"), choices=RAIL_CHOICES)
    payout_account = StringField(_l("Payout account"), validators=[Optional(), Length(max=64)])
    bank_name = StringField(_l("Bank"), validators=[Optional(), Length(max=80)])


STAFF_ROLE_CHOICES = [("manager", _l("Manager")), ("treasurer", _l("Treasurer"))]


class RoleForm(Form):
    email = EmailField(_l("E-mail of the person"),
                       validators=[DataRequired(), Email(), Length(max=254)], filters=[_strip])
    role = SelectField(_l("Role"), choices=STAFF_ROLE_CHOICES)


class RevokeForm(Form):
    pass


class CollectionPointForm(Form):
    name = StringField(_l("Name of the collection point"),
                       validators=[DataRequired(), Length(max=160)])
    place = StringField(_l("Where it is (optional)"), validators=[Optional(), Length(max=200)])
