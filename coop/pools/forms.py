from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from ..common.fields import KilogramField, Required
from ..common.forms import Form

TEST_CARDS = [("pm_card_visa", _l("Test card: Visa 4242 (succeeds)")),
              ("pm_card_chargeCustomerFail", _l("Test card: 0341 (declined)"))]


TERMS_CHOICES = [("EXW", _l("Pickup at the collection point (EXW)")),
                 ("FCA", _l("Handed to a carrier or exporter at a named place (FCA)"))]


class TermsForm(Form):
    """A pool's delivery terms (checked by coop/pools/terms.py: FCA needs the place)."""
    delivery_terms = SelectField(_l("Delivery terms"), choices=TERMS_CHOICES, default="EXW",
                                 validate_choice=False)
    delivery_place = StringField(_l("Place (for EXW, empty: the collection point)"),
                                 validators=[Optional(), Length(max=200)])
    delivery_expected_on = StringField(_l("Expected delivery date (optional)"),
                                       validators=[Optional(), Length(max=10)],
                                       render_kw={"type": "date"})


class PoolForm(TermsForm):
    product = SelectField(_l("Crop and grade"), validate_choice=False,
                          validators=[DataRequired()])
    min_kg = KilogramField(_l("Minimum kg to go ahead"), validators=[Required()])
    max_kg = KilogramField(_l("Maximum kg"), validators=[Required()])
    closes_at = StringField(_l("Closes at (date and time, your time zone)"),
                            validators=[DataRequired(), Length(max=32)],
                            render_kw={"type": "datetime-local"})


class OrderForm(Form):
    quantity_kg = KilogramField(_l("Kilograms"), validators=[Required()])
    payment_method = SelectField(_l("Card"), choices=TEST_CARDS, validate_choice=False)
    # The form's own idempotency key, made when the page is shown: submitting it twice (or
    # confirming two confirmation pages of it) places one order.
    idempotency_key = HiddenField(validators=[Length(max=64), Regexp(r"^[A-Za-z0-9_-]*$")])


class ChangeOrderForm(Form):
    quantity_kg = KilogramField(_l("New kilograms"), validators=[Required()])


class ActionForm(Form):
    pass
