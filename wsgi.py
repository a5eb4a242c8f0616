"""Entry point for gunicorn: `gunicorn -w 4 wsgi:app`."""
import os

from werkzeug.middleware.proxy_fix import ProxyFix

from coop import create_app
from coop.common.process import tune_gc

app = create_app(os.environ.get("MINGA_ENV", "production"))
tune_gc()  # coop/common/process.py: the app loaded, the collector set for serving
if os.environ.get("PROXY_FIX_HOPS"):
    hops = int(os.environ["PROXY_FIX_HOPS"])
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
