"""Settings per environment. Every value can come from the environment; see README."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
DEFAULT_SECRET_KEY = "dev-only-change-me"


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{BASE_DIR / 'instance' / 'minga.sqlite'}"
    )
    # No ping round trip at each checkout: a pooled PostgreSQL connection's socket is looked
    # at instead, and one the server ended is replaced (coop/extensions.py).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")
    # Seconds a call to Stripe may take before its outcome counts as unknown (fractions allowed).
    STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "30"))
    # Seconds after which `flask pools resolve-holds` trusts "no PaymentIntent found" and
    # settles an order still pending (its worker died); always more than the timeout.
    HOLD_RESOLVE_AFTER_SECONDS = float(os.environ.get("HOLD_RESOLVE_AFTER_SECONDS", "120"))
    # Offline demo and tests: buyers pick a sandbox test payment method instead of Stripe.js.
    STRIPE_TEST_PAYMENT_METHODS = _env_bool(
        "STRIPE_TEST_PAYMENT_METHODS", not os.environ.get("STRIPE_PUBLISHABLE_KEY")
    )
    # The buyer's currency (issue 14): where the daily exchange rates come from (a file path
    # or an http(s) URL: the ECB's eurofxref-daily.xml, or JSON / CSV of any pairs; README),
    # how old a rate may be before no conversion is shown, and how long the source may take.
    MINGA_FX_SOURCE = os.environ.get("MINGA_FX_SOURCE", "")
    MINGA_FX_MAX_AGE_DAYS = int(os.environ.get("MINGA_FX_MAX_AGE_DAYS", "3"))
    MINGA_FX_TIMEOUT_SECONDS = float(os.environ.get("MINGA_FX_TIMEOUT_SECONDS", "10"))
    # Card entry in the buyer's page (issue 14): Stripe.js from this URL (empty: Stripe's own,
    # https://js.stripe.com/v3/, or the sandbox's stand-in at STRIPE_API_BASE/js.stripe.com/v3/
    # when STRIPE_API_BASE is the sandbox), and the seconds a reserved quantity waits for the
    # buyer to confirm the card (3-D Secure) before it returns to the pool.
    STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL", "")
    CARD_AUTH_TIMEOUT_SECONDS = float(os.environ.get("CARD_AUTH_TIMEOUT_SECONDS", "900"))
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5 per minute")
    # Failed logins per account (e-mail or phone typed), whatever the address they come from:
    # a 4-digit PIN must not be guessed from many addresses.
    LOGIN_ACCOUNT_RATE_LIMIT = os.environ.get("LOGIN_ACCOUNT_RATE_LIMIT", "10 per hour")
    # Failed PIN (or first-login code) logins, per farmer account and per address alike: a
    # PIN has 10,000 to a million values, so far fewer tries than for a password.
    PIN_RATE_LIMIT = os.environ.get("PIN_RATE_LIMIT", "5 per 15 minutes")
    # Getting in without help (issue 11): a reset link by e-mail lasts an hour; a 6-digit code
    # by SMS ten minutes and five tries. Asking for a link or a code is limited per address and,
    # separately, per account typed (RESET_RATE_LIMIT), so nobody floods a phone with SMS.
    PASSWORD_RESET_TTL_MINUTES = int(os.environ.get("PASSWORD_RESET_TTL_MINUTES", "60"))
    RESET_CODE_TTL_MINUTES = int(os.environ.get("RESET_CODE_TTL_MINUTES", "10"))
    RESET_RATE_LIMIT = os.environ.get("RESET_RATE_LIMIT", "5 per hour")
    # Strict-Transport-Security's max-age in seconds, sent in production (never in debug or
    # tests); 0 sends none.
    HSTS_MAX_AGE = int(os.environ.get("HSTS_MAX_AGE", "0"))
    MAX_CONTENT_LENGTH = 11 * 1024 * 1024  # photos may be 10 MB; the form around them a little more
    PHOTO_MAX_BYTES = 10 * 1024 * 1024
    PHOTO_MAX_SIDE = int(os.environ.get("PHOTO_MAX_SIDE", "1280"))
    BABEL_DEFAULT_LOCALE = "es"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("BABEL_DEFAULT_TIMEZONE", "America/Bogota")
    LANGUAGES = ("es", "en")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    API_TOKEN_TTL_DAYS = int(os.environ.get("API_TOKEN_TTL_DAYS", "30"))
    SEND_FILE_MAX_AGE_DEFAULT = 3600
    # CSRF tokens never expire by age; they stay bound to the session (its secret) instead.
    # A farmer's phone serves /my/listings/new from the offline cache and keeps unsent
    # harvests in its outbox for days without signal; with Flask-WTF's default one-hour
    # limit the cached form, and the outbox sending it later, would be refused as "CSRF
    # token expired" the moment the signal returns. Logging out ends the session and so
    # every token of it.
    WTF_CSRF_TIME_LIMIT = None
    # Compressed responses (Flask-Compress): brotli where the browser takes it, else gzip.
    COMPRESS_ALGORITHM = ["br", "gzip"]
    COMPRESS_ALGORITHM_STREAMING = ["br", "gzip"]
    COMPRESS_MIMETYPES = ["text/html", "text/css", "text/plain", "text/csv", "text/javascript",
                          "application/javascript", "application/json", "image/svg+xml",
                          "application/manifest+json"]
    # Dynamic pages: a cheap brotli level (4: ~1 ms for a 20 KB page, within a few per cent
    # of level 9's size). Fingerprinted static files are compressed once at the highest
    # level, STATIC_BR_LEVEL, and kept in memory (coop/common/assets.py).
    COMPRESS_BR_LEVEL = int(os.environ.get("COMPRESS_BR_LEVEL", "4"))
    STATIC_BR_LEVEL = int(os.environ.get("STATIC_BR_LEVEL", "11"))
    # A body under 1,000 bytes travels in the TCP segment of its headers (1,460 bytes of
    # payload) compressed or not: compressing it (a coop list's 307 bytes) only costs time.
    COMPRESS_MIN_SIZE = 1000
    # Conditional requests are answered by coop/__init__.py for responses with a validator.
    COMPRESS_EVALUATE_CONDITIONAL_REQUEST = False
    # Background jobs (coop/jobs): Celery's broker. Production: Redis (REDIS_URL); without it,
    # an embedded broker on a SQLite file (make run starts the worker and beat itself).
    REDIS_URL = os.environ.get("REDIS_URL", "")
    # Outside a request (Celery tasks), how often a per-process cache of reference data
    # re-reads its version (coop/common/refcache.py); requests read it once each.
    REFERENCE_CACHE_CHECK_SECONDS = float(os.environ.get("REFERENCE_CACHE_CHECK_SECONDS", "1"))
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or \
        f"sqla+sqlite:///{BASE_DIR / 'instance' / 'celery-broker.sqlite'}"
    # Run committed jobs in the request's own process instead of handing them to Celery.
    JOBS_EAGER = _env_bool("JOBS_EAGER", False)
    JOB_MAX_ATTEMPTS = int(os.environ.get("JOB_MAX_ATTEMPTS", "8"))
    JOB_RETRY_BASE_SECONDS = int(os.environ.get("JOB_RETRY_BASE_SECONDS", "30"))
    JOB_RETRY_MAX_SECONDS = int(os.environ.get("JOB_RETRY_MAX_SECONDS", "3600"))
    # A running job whose worker has not finished it in this long is handed to another.
    JOB_LEASE_SECONDS = int(os.environ.get("JOB_LEASE_SECONDS", "900"))
    JOBS_SWEEP_AFTER_SECONDS = int(os.environ.get("JOBS_SWEEP_AFTER_SECONDS", "120"))
    # Settling a closed pool (coop/pools/settlement.py): holds per chunk job, chunk jobs
    # calling one Stripe account at once (across every worker), how long a chunk's claim on
    # its holds lasts before another run may take them, and the back-off after Stripe's 429.
    SETTLE_CHUNK_SIZE = int(os.environ.get("SETTLE_CHUNK_SIZE", "50"))
    # Invoices (coop/invoices): the treasurer is warned when fewer numbers than this are left
    # in a document kind's authorised range.
    INVOICE_RANGE_WARNING = int(os.environ.get("INVOICE_RANGE_WARNING", "100"))
    SETTLE_CONCURRENCY_PER_ACCOUNT = int(os.environ.get("SETTLE_CONCURRENCY_PER_ACCOUNT", "4"))
    SETTLE_CLAIM_SECONDS = float(os.environ.get("SETTLE_CLAIM_SECONDS", "300"))
    SETTLE_BACKOFF_BASE_SECONDS = float(os.environ.get("SETTLE_BACKOFF_BASE_SECONDS", "2"))
    SETTLE_BACKOFF_MAX_SECONDS = float(os.environ.get("SETTLE_BACKOFF_MAX_SECONDS", "120"))
    # Links in messages, and the URL an SMS provider's delivery reports are signed for.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    # E-mail (coop/messages/channels.py): an SMTP server, STARTTLS and a login unless told.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "127.0.0.1")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "587"))
    MAIL_USE_STARTTLS = _env_bool("MAIL_USE_STARTTLS", True)
    # A CA file to trust for the server's certificate (empty: the system's); the loopback
    # stand-in's self-signed certificate in development and tests.
    MAIL_CA_FILE = os.environ.get("MAIL_CA_FILE", "")
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME", "")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD", "")
    MAIL_FROM = os.environ.get("MAIL_FROM", "Minga <no-reply@minga.example>")
    MAIL_TIMEOUT_SECONDS = int(os.environ.get("MAIL_TIMEOUT_SECONDS", "30"))
    # SMS and WhatsApp: the provider adapter (coop/messages/providers/) and its account.
    SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "twilio")
    SMS_TIMEOUT_SECONDS = int(os.environ.get("SMS_TIMEOUT_SECONDS", "30"))
    TWILIO_API_BASE = os.environ.get("TWILIO_API_BASE", "https://api.twilio.com")
    TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
    TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
    TWILIO_FROM = os.environ.get("TWILIO_FROM", "")
    TWILIO_WHATSAPP_FROM = os.environ.get("TWILIO_WHATSAPP_FROM", "")
    TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
    # Development only (`make run`): /dev/messages shows what the loopback stand-ins received.
    DEV_MAILBOX_DIR = os.environ.get("DEV_MAILBOX_DIR", str(BASE_DIR / "instance" / "mailbox"))
    DEV_SMS_STANDIN_URL = os.environ.get("DEV_SMS_STANDIN_URL", "")
    # Hours (local to the recipient) when non-urgent messages are sent: "8-20".
    MESSAGES_DAYTIME = tuple(int(h) for h in os.environ.get("MESSAGES_DAYTIME", "8-20").split("-"))
    # Days after a pool's confirmation before its manager hears that intake is missing.
    INTAKE_MISSING_DAYS = int(os.environ.get("INTAKE_MISSING_DAYS", "7"))
    TESTING = False


class DevelopmentConfig(Config):
    DEBUG = False


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    WTF_CSRF_ENABLED = False
    RATELIMIT_STORAGE_URI = "memory://"
    STRIPE_TEST_PAYMENT_METHODS = True
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"  # fast in tests only
    # Jobs a request commits run in-process right after it (tests/jobs tests the workers).
    JOBS_EAGER = True
    MESSAGES_DAYTIME = (0, 24)
    PUBLIC_BASE_URL = "http://minga.test"
    LOGIN_RATE_LIMIT = "5 per minute"
    # The concurrency tests run 50+ threads, each with its own connection.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False, "pool_size": 60, "max_overflow": 10}


class ProductionConfig(Config):
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    HSTS_MAX_AGE = int(os.environ.get("HSTS_MAX_AGE", "31536000"))  # a year

    @classmethod
    def check(cls, config=None) -> None:
        """Refuse to start with the development secret key (or a short one), or with rate-limit
        counts that are not shared by every worker (anything but Redis).

        `config` is the app's effective configuration (class values plus overrides)."""
        secret = (config or {}).get("SECRET_KEY", cls.SECRET_KEY) or ""
        if secret == DEFAULT_SECRET_KEY or len(secret) < 16:
            raise RuntimeError(
                "SECRET_KEY must be set to a long random value in production "
                "(python -c 'import secrets; print(secrets.token_hex(32))')."
            )
        # Counts kept in one worker's memory let each worker allow its own attempts (and
        # forget them on restart): the login limits hold only in a store every worker shares.
        storage = str((config or {}).get("RATELIMIT_STORAGE_URI",
                                         cls.RATELIMIT_STORAGE_URI) or "")
        redis = ("redis://", "rediss://", "redis+unix://", "redis+sentinel://", "redis+cluster://")
        # The job queue's broker: shared by every web server, worker and the one beat.
        broker = str((config or {}).get("CELERY_BROKER_URL", cls.CELERY_BROKER_URL) or "")
        if not broker.startswith(redis + ("sentinel://", "amqp://", "amqps://")):
            raise RuntimeError(
                "REDIS_URL (or CELERY_BROKER_URL) must name the job queue's Redis in production "
                "(redis://host:6379/1); the embedded SQLite broker is for `make run` only."
            )
        if not storage.startswith(redis):
            raise RuntimeError(
                "RATELIMIT_STORAGE_URI must be a Redis URL in production "
                "(redis://host:6379/0), shared by every worker; memory:// is for development "
                "and tests only."
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
