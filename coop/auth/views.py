from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..common import web
from ..extensions import db, limiter
from . import services
from .forms import LoginForm, PasswordChangeForm, PinForm, RevokeTokenForm, SignupForm
from .limits import login_limits

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
    return render_template("auth/account.html", regions=regions,
                           tokens=services.tokens_of(current_user), revoke_form=RevokeTokenForm())


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
    if (getattr(current_user, "is_authenticated", False) and current_user.must_set_pin
            and request.endpoint not in _BEFORE_PIN
            and not (request.endpoint or "").startswith("api.")):
        return redirect(url_for("auth.choose_pin"))


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
