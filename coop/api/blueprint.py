"""The one /api/v1 blueprint. Each domain's api.py adds its endpoints to it; create_app imports
every api.py before registering it (coop/__init__.py)."""
from flask import Blueprint, abort

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer tokens, not cookies (and the session route checks its own X-CSRFToken header).
bp.csrf_exempt = True

MAX_ID = 2_147_483_647  # every id column is an INTEGER (PostgreSQL: 1 .. 2,147,483,647)


@bp.url_value_preprocessor
def _ids_the_database_can_hold(endpoint, values):
    """An id in the path that no row can have (0, or beyond PostgreSQL's INTEGER) is a 404,
    as the OpenAPI document's bounds say, before any query (PostgreSQL would answer "integer
    out of range", SQLite an OverflowError)."""
    for value in (values or {}).values():
        if isinstance(value, int) and not 1 <= value <= MAX_ID:
            abort(404)
