"""The Celery entry point: `celery -A worker worker` and `celery -A worker beat` (beside wsgi.py).
The app is built from MINGA_ENV (production unless told), with the same settings as the web
servers: DATABASE_URL and REDIS_URL above all."""
import os

from coop import create_app

app = create_app(os.environ.get("MINGA_ENV", "production"))
celery = app.extensions["celery"]
