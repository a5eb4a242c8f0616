"""Minga: a marketplace for farmers' cooperatives leaving illicit crops."""
from __future__ import annotations

from collections import ChainMap
from datetime import date
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request, session
from flask_babel import format_date, format_datetime, format_decimal, format_timedelta
from flask_babel import gettext as _, ngettext
from flask.sessions import SecureCookieSessionInterface
from flask.templating import Environment as FlaskEnvironment
from werkzeug.exceptions import HTTPException

from config import CONFIGS, ProductionConfig

from .extensions import babel, compress, csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: str | type | None = "development", **overrides) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"), instance_path=str(ROOT / "instance"))
    app.jinja_environment = _Environment
    config_obj = CONFIGS[config] if isinstance(config, str) else (config or CONFIGS["development"])
    app.config.from_object(config_obj)
    app.config.update(overrides)
    uri = app.config.get("SQLALCHEMY_DATABASE_URI", "")
    if uri in ("sqlite://", "sqlite:///:memory:"):
        # An in-memory database lives in one connection: no pool to size.
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.pop("pool_size", None)
        options.pop("max_overflow", None)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    if config_obj is ProductionConfig or (isinstance(config_obj, type)
                                          and issubclass(config_obj, ProductionConfig)):
        config_obj.check(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.session_interface = _NoCookieOnStaticFiles()
    register_extensions(app)
    register_converters(app)
    register_blueprints(app)
    register_domain_hooks(app)
    register_jobs(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_commands(app)
    register_headers(app)
    return app


class _NoCookieOnStaticFiles(SecureCookieSessionInterface):
    """A logged-in session is refreshed on every response, but not on static files: those are
    public and cached for a year, and must never carry (nor let a cache keep) a session."""

    def should_set_cookie(self, app, session) -> bool:
        if request.endpoint == "static":
            return False
        return super().should_set_cookie(app, session)

    def get_signing_serializer(self, app):
        """The session's serializer, made once per secret key rather than on every request
        (itsdangerous builds its signer and its JSON wrapper each time: ~3% of a small API
        answer)."""
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = getattr(self, "_serializer", None)
        if cached is None or cached[0] != key:
            cached = (key, super().get_signing_serializer(app))
            self._serializer = cached
        return cached[1]


def select_locale():
    """A regional locale such as es_CO or es_PE: the language as before (the switch, the
    account's choice, the browser), the region from the coop for a member (its country),
    else from the visitor's choice or browser ("es-PE"). Translations stay per language:
    gettext falls back from es_PE to the "es" catalog."""
    if not request:
        return "es"
    language = _language()
    return _regional(language, _region(language))


def _language() -> str:
    chosen = session.get("lang")
    if chosen in ("es", "en"):
        return chosen
    from flask_login import current_user
    if getattr(current_user, "is_authenticated", False) and current_user.locale in ("es", "en"):
        return current_user.locale
    # Farmers read Spanish: Spanish unless the browser prefers English over it.
    return request.accept_languages.best_match(["es", "en"], default="es")


def _regional(language: str, region: str | None) -> str:
    from .common.numbers import regional_locale
    chosen = regional_locale(language, region)
    if chosen == "es":
        return "es_CO"  # Minga's first coops are Colombian; "es" alone reads like es_CO
    return chosen


def _region(language: str) -> str | None:
    from flask_login import current_user
    if getattr(current_user, "is_authenticated", False) and current_user.memberships:
        # A member reads in the coop's country: the coop of the page, else their first.
        coop_id = (request.view_args or {}).get("coop_id")
        coops = [m.coop for m in current_user.memberships]
        coop = next((c for c in coops if c.id == coop_id), coops[0])
        return coop.country
    chosen = session.get("region")
    if isinstance(chosen, str) and len(chosen) == 2 and chosen.isalpha():
        return chosen.upper()
    # The browser's region for its most preferred tag in this language ("es-PE" -> PE).
    for tag, _quality in request.accept_languages:
        parts = tag.replace("_", "-").split("-")
        if parts[0].lower() == language and len(parts) > 1 and len(parts[1]) == 2 \
                and parts[1].isalpha():
            return parts[1].upper()
    return None


def register_extensions(app: Flask) -> None:
    from .extensions import install_connection_check, install_sqlite_pragmas
    install_sqlite_pragmas()
    install_connection_check()
    db.init_app(app)
    from .common import transactions
    transactions.install(app)  # after db.init_app: its teardown runs before the session's removal
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(ROOT / "translations"))
    limiter.init_app(app)
    # Flask-Compress's own evaluation of conditional requests is off (config.py): it ran on
    # every response. _conditional, registered before it so that it runs after it (on the
    # compressed ETag), answers only where a view gave a validator to compare.
    app.after_request(_conditional)
    compress.init_app(app)

    from .auth.services import user_for_session

    # The session's id is "<user id>:<session version>" (User.get_id): a session made before
    # the user's last logout or change of password finds nobody.
    login_manager.user_loader(user_for_session)

    # Import every model so metadata is complete for Alembic and create_all in tools.
    from . import models  # noqa: F401


def blueprints() -> list:
    """Every blueprint of the app, in the order they are registered: the one list to extend.
    A blueprint's routes may sit in several modules (the /api/v1 blueprint gets its endpoints
    from each domain's api.py, listings from views.py and offline.py): each is imported here,
    explicitly, before its blueprint is registered."""
    # Each domain's API endpoints, in the order the OpenAPI document lists them.
    from .api import me, openapi, tokens  # noqa: F401
    from .catalog import api as catalog_api  # noqa: F401
    from .cooperatives import api as coops_api  # noqa: F401
    from .listings import api as listings_api  # noqa: F401
    from .pools import api as pools_api  # noqa: F401
    from .ledger import api as ledger_api  # noqa: F401
    from .payouts import api as payouts_api  # noqa: F401
    from .intake import api as intake_api  # noqa: F401
    from .plots import api as plots_api  # noqa: F401
    from .lots import api as lots_api  # noqa: F401
    from .invoices import api as invoices_api  # noqa: F401
    from .fx import api as fx_api  # noqa: F401
    from .api.blueprint import bp as api_bp
    from .auth.views import bp as auth_bp
    from .auth import organisation_views  # noqa: F401  (the buyer organisation's pages)
    from .catalog.views import bp as catalog_bp
    from .cooperatives.views import bp as coops_bp
    from .impact.views import bp as impact_bp
    from .invoices.views import bp as invoices_bp
    from .intake.views import bp as intake_bp
    from .jobs.views import bp as jobs_bp
    from .ledger.views import bp as ledger_bp
    from .listings import offline  # noqa: F401  (the service worker, the offline page)
    from .listings.views import bp as listings_bp
    from .lots.dispatch_views import bp as dispatch_bp
    from .messages.webhooks import bp as messages_status_bp
    from .payments.views import bp as payments_bp
    from .payouts.views import bp as payouts_bp
    from .pools.views import bp as pools_bp
    from .plots import field_views  # noqa: F401  (the farmer's plots, the field capture)
    from .plots.views import bp as plots_bp
    from .lots.eudr_views import bp as eudr_bp
    from .lots.views import bp as lots_bp
    from .pricing.views import bp as pricing_bp
    from .shares.views import bp as shares_bp
    from .staff.views import bp as staff_bp
    from .messages.views import bp as messages_bp, public_bp as messages_public_bp
    from .treasury.views import bp as treasury_bp
    return [auth_bp, catalog_bp, coops_bp, listings_bp, api_bp, pricing_bp, pools_bp,
            payments_bp, ledger_bp, payouts_bp, treasury_bp, intake_bp, shares_bp, impact_bp,
            staff_bp, messages_bp, messages_public_bp, messages_status_bp, jobs_bp, plots_bp,
            eudr_bp, dispatch_bp, lots_bp, invoices_bp]


def register_converters(app: Flask) -> None:
    """`<int:...>` in every route is an id the database can hold (coop/common/ids.py): any
    other number is a 404 before a view runs, never PostgreSQL's "integer out of range"."""
    from .common.ids import DatabaseIdConverter
    app.url_map.converters["int"] = DatabaseIdConverter


def register_blueprints(app: Flask) -> None:
    for bp in blueprints():
        # A blueprint whose requests no browser form sends (bearer tokens, signed webhooks)
        # says so where it is defined: `bp.csrf_exempt = True`.
        if getattr(bp, "csrf_exempt", False):
            csrf.exempt(bp)
        app.register_blueprint(bp)


def register_domain_hooks(app: Flask) -> None:
    """What a lower domain needs from a higher one goes through an interface wired here, never
    an import upwards (tests/test_layout.py refuses import circles): the place for such a hook.
    Stripe's webhook events about payment intents go to the pools; a renamed collection point
    renames the coop's listings there; the HTML views' `coop_view` loads coops through
    cooperatives' get_coop; listings asks pools how much supply open pools hold; auth reads the
    coops' countries."""
    from .auth import hooks as auth_hooks
    from .common import web
    from .cooperatives import services as coop_services
    from .listings import services as listing_services
    from .payments import webhooks
    from .pools import services as pool_services
    webhooks.register_handler(app, "payment_intent", pool_services.apply_payment_intent_event)
    coop_services.on_collection_point_renamed(app, listing_services.rename_collection_point)
    web.load_coops_with(app, coop_services.get_coop)
    auth_hooks.wire(app, coop_countries=coop_services.coop_countries)
    pool_services.register_supply_reservation()


# Each domain's background tasks (@jobs.task, @jobs.periodic), imported so the workers and
# the outbox know every handler.
TASK_MODULES = ("coop.messages.services", "coop.pools.tasks", "coop.pools.notices",
                "coop.pools.settlement",
                "coop.intake.tasks", "coop.treasury.tasks", "coop.invoices.tasks",
                "coop.payouts.tasks",
                "coop.fx.tasks")


def register_jobs(app: Flask) -> None:
    """The job queue (coop/jobs): task handlers, the Celery app, the eager runner of tests,
    and the messages domain's view of people (from auth) and of parked jobs."""
    import importlib
    from .auth import people
    from .jobs import services as jobs
    from .jobs.queue import init_celery
    from .messages import services as messages
    for name in TASK_MODULES:
        importlib.import_module(name)
    init_celery(app)
    messages.people_from(app, people.recipient, people.set_announcements, people.names,
                         people.recipients)
    from .cooperatives import services as coop_services
    jobs.on_parked(lambda job: messages.tell_parked(job, coop_services.staff_ids))

    @app.after_request
    def _run_eager_jobs(response):
        if app.config.get("JOBS_EAGER"):
            jobs.run_eager_jobs()
        return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/stripe/")


def _rate_limit_window(exc) -> int:
    """The seconds of the window of the rate limit a 429 hit (0 when it is not one)."""
    item = getattr(getattr(exc, "limit", None), "limit", None)
    try:
        return int(item.get_expiry()) if item is not None else 0
    except (AttributeError, TypeError, ValueError):
        return 0


def register_errorhandlers(app: Flask) -> None:
    from .common.errors import DomainError

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        """A refusal no view showed itself answers with its own status (NotFound 404,
        Forbidden 403, Conflict 409, ValidationFailed 422, ...): JSON for the API, a page for
        a browser. An HTML 404 reads like every other 404: nobody learns what was missing."""
        db.session.rollback()
        if wants_json():
            return jsonify(error={"code": exc.code, "message": exc.message,
                                  "fields": exc.fields}), exc.status
        message = _("We could not find that page.") if exc.status == 404 else exc.message
        return render_template("error.html", code=exc.status, message=message), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        db.session.rollback()
        messages = {
            400: _("The request could not be read."),
            401: _("Log in first."),
            403: _("You are not allowed to do that."),
            404: _("We could not find that page."),
            405: _("That method is not allowed here."),
            413: _("What you sent is too large: a photo may be up to 10 MB, a text much less."),
            429: _("Too many attempts. Wait a minute and try again."),
        }
        message = messages.get(exc.code, exc.description or _("Something went wrong."))
        window = _rate_limit_window(exc)
        if exc.code == 429 and window > 60:  # a login limit of 15 minutes or an hour
            minutes = -(-window // 60)
            message = ngettext("Too many attempts. Try again in %(num)d minute.",
                               "Too many attempts. Try again in %(num)d minutes.", minutes)
        codes = {400: "malformed_request", 401: "unauthorized", 403: "forbidden",
                 404: "not_found", 405: "method_not_allowed", 413: "too_large",
                 429: "rate_limited"}
        if wants_json():
            response = jsonify(error={"code": codes.get(exc.code, "http_error"),
                                      "message": message, "fields": {}})
            response.status_code = exc.code or 500
        else:
            response = app.make_response(
                (render_template("error.html", code=exc.code, message=message), exc.code))
        if exc.code == 429 and getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(exc.retry_after)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            # A 405 says which methods the path does take (RFC 9110).
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        if wants_json():
            return jsonify(error={"code": "server_error",
                                  "message": "Something went wrong on our side.",
                                  "fields": {}}), 500
        return render_template("error.html", code=500,
                               message=_("Something went wrong on our side.")), 500


def register_template_helpers(app: Flask) -> None:
    from .common.assets import static_url
    from .common.money import format_money
    from .common.numbers import KG_FORMAT, format_number, request_locale
    from .common.quantities import format_kg, grams_to_decimal

    def _decimal(value, fmt):
        # Babel's pattern parsed once per process (coop/common/numbers.py), same output.
        locale = request_locale()
        if locale is None:
            return format_decimal(value, format=fmt)
        return format_number(value, fmt, locale)

    # Values a page shows many times (a harvest's date, a kilogram figure), written once per
    # value, format and locale in this process: the same text babel writes each time.
    memo: dict = {}

    def _memo(key, write):
        found = memo.get(key)
        if found is None:
            if len(memo) > 4096:
                memo.clear()
            found = memo[key] = write()
        return found

    def kg(grams):
        grams = int(grams or 0)
        return _memo(("kg", grams, request_locale()),
                     lambda: _decimal(grams_to_decimal(grams), "#,##0.###"))

    def date_filter(d, fmt="medium"):
        if not d:
            return ""
        if type(d) is not date:  # a datetime is shown in the reader's time zone: not kept
            return format_date(d, fmt)
        return _memo(("date", d, fmt, request_locale()), lambda: format_date(d, fmt))

    def hectares(m2):
        from decimal import Decimal
        return _decimal(Decimal(int(m2 or 0)) / 10000, "#,##0.##")

    app.jinja_env.filters["kg"] = kg
    app.jinja_env.filters["kg_api"] = format_kg
    # A value to prefill a form field with, in the page's locale ("1.200,5" in es_CO).
    app.jinja_env.filters["kg_input"] = lambda grams: format_number(
        grams_to_decimal(int(grams or 0)), KG_FORMAT)
    app.jinja_env.filters["money"] = lambda minor, cur: format_money(minor, cur)
    app.jinja_env.filters["date"] = date_filter
    app.jinja_env.filters["hectares"] = hectares
    app.jinja_env.filters["datetime"] = lambda d, fmt="short": format_datetime(d, fmt) if d else ""
    app.jinja_env.filters["timedelta"] = lambda td: format_timedelta(td, threshold=1.1)
    app.jinja_env.globals["static_url"] = static_url
    # {{ indicative(price, currency) }}: the amount in the buyer's display currency, or None
    # (coop/fx; templates/fx/_indicative.html shows it with its rate and date).
    from .fx import services as fx
    app.jinja_env.globals["indicative"] = fx.for_viewer
    app.jinja_env.globals["indicative_rates"] = fx.rates_for_viewer
    app.jinja_env.filters["fx_rate"] = lambda value: _decimal(value, "#,##0.####")
    _install_fast_gettext(app)
    # How many invitations to join a coop wait for the logged-in person (a note on the
    # farmer's home and the account page).
    from .cooperatives.invitations import waiting_count
    app.jinja_env.globals["invitations_waiting"] = waiting_count
    from .catalog.labels import name_of
    from .common.labels import label
    # {{ order.status | label("order_status") }}: a code in the reader's words (common/labels.py)
    app.jinja_env.filters["label"] = label
    # {{ pool.crop | loc_name }}: a crop's or grade's name in the page's language
    app.jinja_env.filters["loc_name"] = name_of

    def country(code):
        from flask_babel import get_locale
        locale = get_locale()
        return (locale.territories.get(str(code).upper()) if locale else None) or code or ""

    def percent_bps(bps):
        from decimal import Decimal
        return _decimal(Decimal(int(bps or 0)) / 100, "#,##0.##") + " %"

    app.jinja_env.filters["country"] = country
    app.jinja_env.filters["percent_bps"] = percent_bps
    # {{ count | number }}: a whole number in the page's locale ("1.200" in es_CO)
    app.jinja_env.filters["number"] = lambda n: format_decimal(int(n or 0), format="#,##0")

    @app.context_processor
    def inject():
        return {"current_lang": _language_or_default(), "html_lang": _html_lang()}


class _Globals(ChainMap):
    """A template's globals (its own over the environment's), as Jinja keeps them, with keys()
    a plain set: Jinja subtracts an imported template's keys from the importer's on every
    `{% from ... import %}` (six a pool page), and ChainMap's keys view tests each key against
    every map in Python."""

    def keys(self):
        return set().union(*self.maps)


class _Environment(FlaskEnvironment):
    def make_globals(self, d):
        return _Globals({} if d is None else d, self.globals)


def _install_fast_gettext(app: Flask) -> None:
    """Templates' _() and ngettext through the request's translations, looked up once per
    request and locale instead of on every call (Flask-Babel's own callables look up the
    context, the domain and the locale's name each time: a page calls them ~100 times)."""
    from flask_babel import get_translations

    def translations():
        ctx = g.get("_flask_babel") if g else None
        locale = getattr(ctx, "babel_locale", None)
        memo = getattr(ctx, "minga_translations", None)
        if memo is not None and locale is not None and memo[0] is locale:
            return memo[1]
        found = get_translations()
        ctx = g.get("_flask_babel") if g else None
        if ctx is not None and getattr(ctx, "babel_locale", None) is not None:
            ctx.minga_translations = (ctx.babel_locale, found)
        return found

    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n))


def register_headers(app: Flask) -> None:
    from .common.assets import compress_static
    # Registered after Flask-Compress, so it runs before it (after_request runs in reverse).
    app.after_request(compress_static)

    @app.after_request
    def headers(response):
        # One pass over the response's headers, not one scan per header set (werkzeug's
        # Headers is a list: each setdefault walks it).
        present = {key.lower() for key in response.headers.keys()}
        for key, value in _SECURITY_HEADERS:
            if key.lower() not in present:
                response.headers.add(key, value)
        hsts = app.config.get("HSTS_MAX_AGE") or 0
        if hsts > 0 and not app.debug and not app.testing:
            response.headers.setdefault("Strict-Transport-Security",
                                        f"max-age={int(hsts)}; includeSubDomains")
        if request.endpoint == "static" and request.args.get("v"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers.pop("Expires", None)  # SEND_FILE_MAX_AGE_DEFAULT's, an hour
        elif _is_download(response):
            # Payout files, the audit log, reconciliation and every other CSV hold personal or
            # bank data: no browser, proxy or shared cache may keep a copy.
            response.headers["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        elif "Cache-Control" not in response.headers and _authenticated():
            response.headers["Cache-Control"] = "no-store"  # someone's own pages and JSON
        elif "Cache-Control" not in response.headers and response.mimetype == "text/html":
            response.headers["Cache-Control"] = "private, no-cache"
        if "text/html" in response.mimetype:
            response.headers["Content-Language"] = _html_lang()
        return response


_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy",
     "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     "frame-ancestors 'none'; form-action 'self'"),
)


def _conditional(response):
    """304 for a GET or HEAD whose If-None-Match / If-Modified-Since matches the response's
    ETag / Last-Modified (after compression, which suffixes the ETag), for responses that
    carry one; the others go out as they are."""
    if (request.method in ("GET", "HEAD") and not response.is_streamed
            and ("ETag" in response.headers or "Last-Modified" in response.headers)):
        response.make_conditional(request)
    return response


def _is_download(response) -> bool:
    return (response.mimetype == "text/csv"
            or "attachment" in (response.headers.get("Content-Disposition") or ""))


def _authenticated() -> bool:
    """Whether the request was made by someone logged in (a session or a bearer token)."""
    if getattr(g, "api_user", None) is not None:
        return True
    user = g.get("_login_user")
    return bool(user is not None and getattr(user, "is_authenticated", False))


def _language_or_default() -> str:
    """The page's language ("es", "en"): what templates compare to choose a name."""
    from flask_babel import get_locale
    locale = get_locale()
    return locale.language if locale else "es"


def _html_lang() -> str:
    """The BCP 47 tag of the page's locale for <html lang> and Content-Language: "es-CO"."""
    from flask_babel import get_locale
    locale = get_locale()
    if not locale:
        return "es"
    return f"{locale.language}-{locale.territory}" if locale.territory else locale.language


def register_commands(app: Flask) -> None:
    from .commands import register
    register(app)
