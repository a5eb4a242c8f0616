from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..common import web
from ..extensions import db, limiter
from . import services
from .forms import LoginForm, PinForm, SignupForm

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


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed(response) -> bool:
    return response.status_code in (401, 429)


def _account_limit():
    return current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"]


def _account_key() -> str:
    """The account being tried (as typed, lower-cased, digits of a phone): the per-account
    limit on failed logins holds whatever address the attempts come from."""
    login = (request.form.get("login") or "").strip().lower()[:254]
    if "@" not in login:
        digits = "".join(ch for ch in login if ch.isdigit())
        login = digits[-9:] or login  # the same with or without the country code
    return "login-account:" + login


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(_account_limit, key_func=_account_key, methods=["POST"], deduct_when=_failed)
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.login.data, form.password.data)
        if user:
            login_user(user)
            session.permanent = True
            if user.must_set_pin:
                return redirect(url_for("auth.choose_pin"))
            return redirect(safe_next(request.args.get("next"), home_for(user)))
        form.password.errors = [_("Wrong e-mail, phone or password.")]
        return render_template("auth/login.html", form=form), 401
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
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
        login_user(user)
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
    return render_template("auth/account.html", regions=regions)


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
        services.set_pin(current_user, form.pin.data, form.pin_confirm.data)
        flash(_("Your PIN is saved. Log in with your phone number and this PIN from now on."),
              "info")
        return redirect(home_for(current_user))
    return render_template("auth/pin.html", form=form), 422 if form.errors else 200
