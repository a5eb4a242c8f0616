from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..common import web
from ..extensions import db, limiter
from . import organisations, recovery, services
from .forms import (CodeForm, CodeLoginForm, DisplayCurrencyForm, ForgotForm, LoginForm, NewPasswordForm,
                    PasswordChangeForm, PhoneChangeForm, PinChangeForm, PinForm,
                    PreferencesForm, ResetCodeForm, RevokeTokenForm, SendCodeForm, SignupForm)
from .limits import (attempt_counted, code_limits, logged_in_key, login_limits,
                     send_code_limits)
from .phones import masked

bp = Blueprint("auth", __name__)


def safe_next(target: str | None, fallback: str) -> str:
    """Only local paths: never redirect a user off Minga after login."""
    if target:
        parts = urlsplit(target)
        # Control characters would break the Location header (a 500); a backslash is read
        # as a slash by browsers ("/\\evil.example").
        if not parts.scheme and not parts.netloc and target.startswith("/") \
                and not target.startswith("//") and target.isprintable() and "\\" not in target:
            return target
    return fallback


def home_for(user) -> str:
    roles = {m.role for m in user.memberships}
    if "farmer" in roles and not roles & {"manager", "treasurer"}:
        return url_for("listings.mine")
    if roles & {"manager", "treasurer"}:
        return url_for("coops.dashboard")
    return url_for("catalog.supply")


# What a session keeps across login and logout: the visitor's language and region. Everything
# else goes, the CSRF secret included (Flask-WTF keeps it in the session), so a page or token
# from before the login, or from the session that logged out, is refused.
_KEPT = ("lang", "region")


def _fresh_session() -> None:
    kept = {k: session[k] for k in _KEPT if k in session}
    session.clear()
    g.pop("csrf_token", None)  # Flask-WTF's copy for this request
    session.update(kept)


def start_session(user, *, factor: str = "password") -> None:
    """Log `user` in on a new session (new CSRF secret); `factor` is how they proved who they
    are: "pin" (a PIN or first-login code) cannot change payout details."""
    _fresh_session()
    login_user(user)
    session.permanent = True
    session["login_factor"] = factor


@bp.route("/login", methods=["GET", "POST"])
@login_limits
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.login.data, form.password.data)
        if user:
            start_session(user, factor="pin" if services.is_pin_like(form.password.data)
                          else "password")
            if user.must_set_pin:
                return redirect(url_for("auth.choose_pin"))
            return redirect(safe_next(request.args.get("next"), home_for(user)))
        form.password.errors = [_("Wrong e-mail, phone or password.")]
        return render_template("auth/login.html", form=form), 401
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


# ---------------------------------------------------------------- getting in without help
# Each of these pages answers the same, status included, whether or not the account exists.

def _no_referrer(response):
    """A page whose URL holds a secret (a reset link) never hands it to another site."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/password/forgot", methods=["GET", "POST"])
@send_code_limits()
@web.unit_of_work
def forgot_password():
    """An e-mail gets a reset link; a phone number a 6-digit code (then the code's page)."""
    form = ForgotForm()
    if form.validate_on_submit():
        web.refusal_on_form(form, lambda status: (
            render_template("auth/forgot.html", form=form), status))
        attempt_counted()
        if recovery.request_reset(form.login.data) == "email":
            return render_template("auth/forgot_sent.html",
                                   minutes=current_app.config["PASSWORD_RESET_TTL_MINUTES"])
        code_form = ResetCodeForm(formdata=None, login=form.login.data.strip())
        return render_template("auth/reset_code.html", form=code_form, sent=True)
    return render_template("auth/forgot.html", form=form), 422 if form.errors else 200


@bp.route("/password/reset/code", methods=["GET", "POST"])
@code_limits()
@web.unit_of_work
def reset_with_code():
    """The code sent to the phone and the new password (or PIN): every session and API token
    of the account ends, and this browser logs in on a new session."""
    form = ResetCodeForm()

    def page(status):
        return render_template("auth/reset_code.html", form=form, sent=False), status
    if form.validate_on_submit():
        web.refusal_on_form(form, page)
        user, factor = recovery.reset_with_code(form.login.data, form.code.data,
                                                form.password.data, form.password_confirm.data)
        start_session(user, factor=factor)
        flash(_("Your PIN is changed. Every other session has ended.") if factor == "pin" else
              _("Your password is changed. Every other session and API token has ended."),
              "info")
        return redirect(home_for(user))
    return page(422 if form.errors else 200)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@web.unit_of_work
def reset_with_link(token):
    """The page of a reset link: a new password; the link then stops working."""
    form = NewPasswordForm()

    def page(status):
        return _no_referrer(current_app.make_response((render_template(
            "auth/reset_link.html", form=form, works=True), status)))
    if recovery.link_works(token) is None:
        return _no_referrer(current_app.make_response((render_template(
            "auth/reset_link.html", form=form, works=False), 404)))
    if form.validate_on_submit():
        web.refusal_on_form(form, page)
        user, factor = recovery.reset_with_link(token, form.password.data,
                                                form.password_confirm.data)
        start_session(user, factor=factor)
        flash(_("Your password is changed. Every other session and API token has ended."),
              "info")
        return redirect(home_for(user))
    return page(422 if form.errors else 200)


@bp.route("/login/code/send", methods=["GET", "POST"])
@send_code_limits()
@web.unit_of_work
def send_login_code():
    """A farmer without e-mail asks for a one-time login code by SMS (the same answer
    whether or not the phone has an account)."""
    form = SendCodeForm()
    if form.validate_on_submit():
        attempt_counted()
        recovery.request_login_code(form.login.data)
        return render_template("auth/login_code.html", sent=True,
                               form=CodeLoginForm(formdata=None, login=form.login.data.strip()))
    return render_template("auth/login_code_send.html", form=form), \
        422 if form.errors else 200


@bp.route("/login/code", methods=["GET", "POST"])
@code_limits()
@web.unit_of_work
def login_with_code():
    """Logs in with the phone number and the code sent to it (a session like a PIN's: it
    cannot change payout details)."""
    form = CodeLoginForm()
    if form.validate_on_submit():
        def refused(status):
            return render_template("auth/login_code.html", form=form, sent=False), 401
        web.refusal_on_form(form, refused)
        user = recovery.login_with_code(form.login.data, form.code.data)
        start_session(user, factor="pin")
        if user.must_set_pin:
            return redirect(url_for("auth.choose_pin"))
        return redirect(safe_next(request.args.get("next"), home_for(user)))
    return render_template("auth/login_code.html", form=form, sent=False), \
        422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@web.unit_of_work
def logout():
    """Ends the session on the server: the user's session version moves, so this cookie (and
    every other session of the account) no longer logs anyone in. API tokens stay."""
    if current_user.is_authenticated:
        services.end_sessions(current_user)
    logout_user()
    _fresh_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("catalog.home"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
@web.unit_of_work
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        web.refusal_on_form(form, lambda status: (
            render_template("auth/signup.html", form=form), status))
        user = services.sign_up_buyer(organisation=form.organisation.data,
                                      name=form.name.data, email=form.email.data,
                                      password=form.password.data, locale=session.get("lang"))
        db.session.flush()  # the new buyer has an id to log in with
        start_session(user)
        flash(_("Welcome to Minga."), "info")
        return redirect(url_for("catalog.supply"))
    return render_template("auth/signup.html", form=form), 422 if form.errors else 200


@bp.route("/lang/<code>", methods=["GET", "POST"])
@web.unit_of_work
def set_language(code):
    """"/lang/en", or with a region for numbers and dates: "/lang/es-PE" ("1,234.5")."""
    code, _sep, region = code.replace("_", "-").partition("-")
    if region and not _known_region(code, region):
        code = ""  # an unknown region changes nothing, like an unknown language
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
        if region:
            session["region"] = region.upper()
        if current_user.is_authenticated:
            current_user.locale = code
    return redirect(safe_next(request.args.get("next") or request.form.get("next"), "/"))


def _known_region(language: str, region: str) -> bool:
    from babel import localedata
    return len(region) == 2 and region.isascii() and region.isalpha() \
        and localedata.exists(f"{language}_{region.upper()}")


# Regions a buyer may choose for numbers and dates (members follow their coop's country).
REGIONS = ("CO", "PE", "MX", "EC", "BO", "US")


@bp.route("/account")
@login_required
def account():
    from decimal import Decimal

    from babel import Locale
    from flask_babel import get_locale

    from ..common.numbers import format_number
    language = get_locale().language if get_locale() else "es"
    regions = []
    for cc in REGIONS:
        if _known_region(language, cc):
            loc = Locale.parse(f"{language}_{cc}")
            regions.append({"code": f"{language}-{cc}", "name": Locale.parse(language)
                            .territories.get(cc, cc),
                            "example": format_number(Decimal("1234.5"), "#,##0.0", loc),
                            "current": get_locale() == loc})
    return _account_page(regions)


def _account_page(regions=None, preferences=None, phone_form=None, status=200):
    user = current_user
    if regions is None:
        regions = []
    if preferences is None:
        preferences = PreferencesForm(formdata=None, current_timezone=user.timezone,
                                      name=user.name, language=services.language_of(user),
                                      channel=user.channel or "", timezone=user.timezone or "",
                                      announcements=user.announcements)
    return render_template("auth/account.html", regions=regions,
                           tokens=services.tokens_of(user), revoke_form=RevokeTokenForm(),
                           preferences=preferences,
                           phone_form=phone_form or PhoneChangeForm(formdata=None),
                           uses_pin=recovery.uses_pin(user),
                           channel=services.channel_of(user),
                           timezone=services.timezone_of(user),
                           buyer_role=organisations.role_of(user),
                           currency_form=DisplayCurrencyForm(
                               formdata=None, display_currency=user.display_currency or "")
                           ), status


@bp.route("/account/preferences", methods=["POST"])
@login_required
@web.unit_of_work
def preferences():
    """The person's name, language, channel, time zone and consent to announcements."""
    user = current_user._get_current_object()
    form = PreferencesForm(current_timezone=user.timezone)
    if not form.validate_on_submit():
        return _account_page(preferences=form, status=422)
    web.refusal_on_form(form, lambda status: _account_page(preferences=form, status=status))
    services.update_preferences(user, name=form.name.data, language=form.language.data,
                                channel=form.channel.data or None,
                                timezone=form.timezone.data or None,
                                announcements=bool(form.announcements.data))
    session["lang"] = user.locale
    flash(_("Your preferences are saved."), "info")
    return redirect(url_for("auth.account"))


@bp.route("/account/pin/change", methods=["GET", "POST"])
@login_required
@limiter.limit(lambda: current_app.config["PIN_RATE_LIMIT"], methods=["POST"],
               key_func=lambda: f"pin-change:{current_user.get_id()}",
               deduct_when=lambda r: r.status_code == 422)
@web.unit_of_work
def change_pin():
    """A new PIN, given the current one; every other session and API token ends."""
    form = PinChangeForm()

    def page(status):
        return render_template("auth/pin_change.html", form=form), status
    if form.validate_on_submit():
        web.refusal_on_form(form, page)
        user = current_user._get_current_object()
        services.change_pin(user, form.current_pin.data, form.pin.data, form.pin_confirm.data)
        start_session(user, factor="pin")
        flash(_("Your PIN is changed. Every other session has ended."), "info")
        return redirect(url_for("auth.account"))
    return page(422 if form.errors else 200)


@bp.route("/account/phone", methods=["POST"])
@login_required
@send_code_limits(logged_in_key, per_address=False)
@web.unit_of_work
def change_phone():
    """A new phone number: a code goes to the old phone (or to the new one, when there is
    none), and the change waits for it (confirm_phone)."""
    form = PhoneChangeForm()
    if not form.validate_on_submit():
        return _account_page(phone_form=form, status=422)
    web.refusal_on_form(form, lambda status: _account_page(phone_form=form, status=status))
    attempt_counted()
    user = current_user._get_current_object()
    to = user.phone
    row = services.request_phone_change(user, form.phone.data)
    new = recovery.codes.payload_of(row)["phone"]
    return render_template("auth/phone_confirm.html", form=CodeForm(formdata=None),
                           to=masked(to or new), new=new)


@bp.route("/account/phone/confirm", methods=["POST"])
@login_required
@code_limits(logged_in_key, per_address=False)
@web.unit_of_work
def confirm_phone():
    form = CodeForm()

    def page(status):
        return render_template("auth/phone_confirm.html", form=form, to=None,
                               new=None), status
    if not form.validate_on_submit():
        return page(422)
    web.refusal_on_form(form, page)
    new = services.confirm_phone_change(current_user._get_current_object(), form.code.data)
    flash(_("Your phone number is now %(phone)s.", phone=new), "info")
    return redirect(url_for("auth.account"))


def _password_change_key() -> str:
    return f"password-change:{current_user.get_id()}"


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
# The current password is asked for: a session someone else holds must not guess it freely.
@limiter.limit(lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"], methods=["POST"],
               key_func=_password_change_key, deduct_when=lambda r: r.status_code == 422)
@web.unit_of_work
def change_password():
    """A new password, given the current one. Every other session and every API token of the
    account ends; this browser stays logged in (on a new session)."""
    form = PasswordChangeForm()

    def page(status):
        return render_template("auth/password.html", form=form), status
    if form.validate_on_submit():
        web.refusal_on_form(form, page)
        user = current_user._get_current_object()
        services.change_password(user, form.current_password.data, form.new_password.data,
                                 form.new_password_confirm.data)
        start_session(user, factor="password")
        flash(_("Your password is changed. Every other session and API token has ended."),
              "info")
        return redirect(url_for("auth.account"))
    return page(422 if form.errors else 200)


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
@web.unit_of_work
def revoke_token(token_id):
    """Ends one of the user's API tokens (another's, or an unknown one, is a 404)."""
    if not RevokeTokenForm().validate_on_submit():
        abort(400)
    services.revoke_token(current_user, token_id)
    flash(_("The API token is revoked."), "info")
    return redirect(url_for("auth.account"))


# Reachable before the PIN is chosen: the PIN page itself, logging out, the language, and what
# every page loads (static files, the service worker, the manifest, the offline page).
_BEFORE_PIN = {"auth.choose_pin", "auth.logout", "auth.set_language", "static",
               "listings.service_worker", "listings.manifest", "listings.offline"}


@bp.before_app_request
def _pin_first():
    """A farmer holding a first-login code chooses their PIN before anything else."""
    endpoint = request.endpoint or ""
    # The endpoint first: the API (tokens, not sessions) and static files never load the
    # session's user for this.
    if endpoint in _BEFORE_PIN or endpoint.startswith("api."):
        return None
    if getattr(current_user, "is_authenticated", False) and current_user.must_set_pin:
        return redirect(url_for("auth.choose_pin"))
    return None


@bp.route("/account/pin", methods=["GET", "POST"])
@login_required
@web.unit_of_work
def choose_pin():
    """The farmer's own PIN, in place of the first-login code a manager gave them."""
    form = PinForm()
    if not current_user.must_set_pin:
        return redirect(home_for(current_user))
    if form.validate_on_submit():
        web.refusal_on_form(form, lambda status: (
            render_template("auth/pin.html", form=form), status))
        user = current_user._get_current_object()
        services.set_pin(user, form.pin.data, form.pin_confirm.data)
        start_session(user, factor="pin")  # the PIN ended every session, this one too
        flash(_("Your PIN is saved. Log in with your phone number and this PIN from now on."),
              "info")
        return redirect(home_for(user))
    return render_template("auth/pin.html", form=form), 422 if form.errors else 200
