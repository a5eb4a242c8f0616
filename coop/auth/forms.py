from flask_babel import lazy_gettext as _l
from ..common.forms import Form
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
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


_DIGITS = {"inputmode": "numeric", "pattern": "[0-9]*"}


class ForgotForm(Form):
    """An e-mail (a link is sent) or a phone number (a 6-digit code is sent)."""
    login = StringField(_l("Your e-mail or phone number"),
                        validators=[DataRequired(), Length(max=254)])


class SendCodeForm(Form):
    """A farmer's phone number, to be sent a one-time login code."""
    login = StringField(_l("Your phone number"), validators=[DataRequired(), Length(max=254)],
                        render_kw={"inputmode": "tel", "autocomplete": "tel"})


class CodeLoginForm(Form):
    login = StringField(_l("Your phone number"), validators=[DataRequired(), Length(max=254)],
                        render_kw={"inputmode": "tel", "autocomplete": "tel"})
    code = StringField(_l("The 6-digit code"), validators=[DataRequired(), Length(max=20)],
                       render_kw={**_DIGITS, "autocomplete": "one-time-code"})


class ResetCodeForm(Form):
    """The code sent to the phone and the new secret: a password, or a PIN for a farmer who
    logs in with one."""
    login = StringField(_l("Your phone number"), validators=[DataRequired(), Length(max=254)],
                        render_kw={"inputmode": "tel", "autocomplete": "tel"})
    code = StringField(_l("The 6-digit code"), validators=[DataRequired(), Length(max=20)],
                       render_kw={**_DIGITS, "autocomplete": "one-time-code"})
    password = PasswordField(_l("Your new password, or your new PIN (4 to 6 digits) if you log "
                                "in with a PIN"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    password_confirm = PasswordField(_l("The same again"),
                                     validators=[DataRequired(), Length(max=200)],
                                     render_kw={"autocomplete": "new-password"})


class NewPasswordForm(Form):
    password = PasswordField(_l("New password (at least 12 characters)"),
                             validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "new-password"})
    password_confirm = PasswordField(_l("The new password again"),
                                     validators=[DataRequired(), Length(max=200)],
                                     render_kw={"autocomplete": "new-password"})


class PinChangeForm(Form):
    current_pin = PasswordField(_l("Your current PIN"),
                                validators=[DataRequired(), Length(max=20)],
                                render_kw={**_DIGITS, "autocomplete": "current-password"})
    pin = PasswordField(_l("Your new PIN (4 to 6 digits)"),
                        validators=[DataRequired(), Length(max=20)],
                        render_kw={**_DIGITS, "autocomplete": "new-password"})
    pin_confirm = PasswordField(_l("The same PIN again"),
                                validators=[DataRequired(), Length(max=20)],
                                render_kw={**_DIGITS, "autocomplete": "new-password"})


CHANNEL_CHOICES = [("", _l("The usual (e-mail if I have one, else SMS)")),
                   ("email", _l("E-mail")), ("sms", _l("SMS")), ("whatsapp", _l("WhatsApp"))]
LANGUAGE_CHOICES = [("es", "Español"), ("en", "English")]
TIMEZONES = ("America/Bogota", "America/Lima", "America/Guayaquil", "America/La_Paz",
             "America/Mexico_City", "America/New_York", "America/Sao_Paulo", "Europe/Madrid",
             "Europe/Berlin", "UTC")


class PreferencesForm(Form):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=120)],
                       filters=[_strip])
    language = SelectField(_l("Language of your messages and pages"),
                           choices=LANGUAGE_CHOICES)
    channel = SelectField(_l("How we tell you things"), choices=CHANNEL_CHOICES)
    timezone = SelectField(_l("Your time zone (messages that can wait come in daytime)"),
                           choices=[])
    announcements = BooleanField(_l("Send me announcements and news (you can stop them any "
                                    "time)"))

    def __init__(self, *args, current_timezone: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        zones = list(TIMEZONES)
        if current_timezone and current_timezone not in zones:
            zones.insert(0, current_timezone)
        self.timezone.choices = [("", _l("My cooperative's country's"))] + [
            (z, z.replace("_", " ")) for z in zones]


class PhoneChangeForm(Form):
    phone = StringField(_l("Your new phone number"),
                        validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "tel"})


class CodeForm(Form):
    """A 6-digit code that confirms a change (of phone, of payout account)."""
    code = StringField(_l("The 6-digit code"), validators=[DataRequired(), Length(max=20)],
                       render_kw={**_DIGITS, "autocomplete": "one-time-code"})


class DisplayCurrencyForm(Form):
    """The currency a buyer sees indicative amounts in (fx.services.DISPLAY_CURRENCIES)."""
    display_currency = SelectField(_l("Show indicative amounts in"), choices=[
        ("", _l("The cooperative's currency (no conversion)")),
        ("EUR", _l("Euro (EUR)")), ("USD", _l("US dollar (USD)"))])


BUYER_ROLE_CHOICES = [("purchaser", _l("Purchaser: places orders")),
                      ("accounts", _l("Accounts: receives invoices, sees orders, cannot order")),
                      ("admin", _l("Admin: manages users and billing, places orders"))]


class BuyerInviteForm(Form):
    email = EmailField(_l("Your colleague's e-mail"),
                       validators=[DataRequired(), Length(max=254)], filters=[_strip])
    role = SelectField(_l("Role"), choices=BUYER_ROLE_CHOICES)


class BuyerRoleForm(Form):
    role = SelectField(_l("Role"), choices=BUYER_ROLE_CHOICES)


class OrganisationActionForm(Form):
    """A button that acts (remove, withdraw, accept): only its CSRF token."""


class JoinAccountForm(Form):
    name = StringField(_l("Your full name"), validators=[DataRequired(), Length(max=120)],
                       filters=[_strip])
    password = PasswordField(_l("Password (at least 12 characters)"),
                             validators=[DataRequired(), Length(max=200)])
