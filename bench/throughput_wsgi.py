"""What `bench/throughput.py` has gunicorn serve: Minga (on the database of MINGA_BENCH_DB)
with the bare endpoint of bench/bare_app.py mounted at /bare, in the same workers."""
import os

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from bench.bare_app import app as bare
from coop import create_app
from coop.common.process import tune_gc
from config import DevelopmentConfig


class BenchConfig(DevelopmentConfig):
    """Production's behaviour (no debug, no eager jobs, CSRF on) without its checks for
    Stripe, Redis and mail; sessions over plain HTTP."""
    SECRET_KEY = os.environ.get("MINGA_BENCH_SECRET", "bench-secret")
    SESSION_COOKIE_SECURE = False
    RATELIMIT_ENABLED = False


minga = create_app(BenchConfig, SQLALCHEMY_DATABASE_URI=os.environ["MINGA_BENCH_DB"])
tune_gc()  # as wsgi.py
app = DispatcherMiddleware(minga, {"/bare": bare})
