"""The one /api/v1 blueprint. Each domain's api.py adds its endpoints to it; create_app imports
every api.py before registering it (coop/__init__.py)."""
from flask import Blueprint


bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer tokens, not cookies (and the session route checks its own X-CSRFToken header).
bp.csrf_exempt = True
