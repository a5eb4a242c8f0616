"""The Celery entry point (beside wsgi.py): `celery -A worker worker` and `celery -A worker
beat`. The app is built from MINGA_ENV (production unless told), with the same settings as
the web servers: DATABASE_URL and REDIS_URL above all. (Celery looks for `app` first, so the
Flask app has another name here.)"""
import os

from coop import create_app
from coop.common.process import tune_gc

flask_app = create_app(os.environ.get("MINGA_ENV", "production"))
tune_gc()  # coop/common/process.py: the app loaded, the collector set for serving
celery = app = flask_app.extensions["celery"]
