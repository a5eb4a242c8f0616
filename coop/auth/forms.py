from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LoginForm(Form):
    login = StringField(_l("E-mail or phone number"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password or PIN"),
                             validators=[DataRequired(), Length(max=200)])


class PinForm(Form):
    """A farmer's PIN, chosen at the first login (checked in auth.services.check_new_pin)."""
    pin = PasswordField(_l("Your new PIN (4 to 6 digits)"),
                        validators=[DataRequired(), Length(max=20)],
                        render_kw={"inputmode": "numeric", "autocomplete": "new-password",
                                   "pattern": "[0-9]*"})
    pin_confirm = PasswordField(_l("The same PIN again"),
                                validators=[DataRequired(), Length(max=20)],
                                render_kw={"inputmode": "numeric",
                                           "autocomplete": "new-password", "pattern": "[0-9]*"})


class SignupForm(Form):
    organisation = StringField(_l("Organisation"), validators=[DataRequired(), Length(max=160)])
    name = StringField(_l("Your name"), validators=[Length(max=120)])
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=254)],
                       filters=[_strip])
    # At least 12 characters and not a common one: auth.passwords.check_new_password says so.
    password = PasswordField(_l("Password (at least 12 characters)"),
                             validators=[DataRequired(), Length(max=200)])


class PasswordChangeForm(Form):
    current_password = PasswordField(_l("Current password"),
                                     validators=[DataRequired(), Length(max=200)],
                                     render_kw={"autocomplete": "current-password"})
    new_password = PasswordField(_l("New password (at least 12 characters)"),
                                 validators=[DataRequired(), Length(max=200)],
                                 render_kw={"autocomplete": "new-password"})
    new_password_confirm = PasswordField(_l("The new password again"),
                                         validators=[DataRequired(), Length(max=200)],
                                         render_kw={"autocomplete": "new-password"})


class RevokeTokenForm(Form):
    """Only the CSRF token: revoking an API token is a POST from the account page."""
