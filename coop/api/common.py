"""What every API endpoint shares: bearer auth, JSON bodies, pagination, errors."""
from __future__ import annotations

import base64
import functools
import json

from flask import g, jsonify, request
from flask_babel import gettext as _

from ..auth import services as auth_services
from ..common.errors import DomainError, ValidationFailed
from ..common.idempotency import check_key
from ..common.ids import is_id


def error(status: int, code: str, message: str, fields: dict | None = None):
    return jsonify(error={"code": code, "message": message, "fields": fields or {}}), status


def token_required(view):
    """401 without a valid bearer token; the user is then in g.api_user."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        header = request.headers.get("Authorization", "")
        scheme, _sep, token = header.partition(" ")
        user = auth_services.user_for_token(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            return error(401, "unauthorized", _("A valid bearer token is required."))
        g.api_user = user
        return view(*args, **kwargs)
    return wrapper


def token_or_session_required(view):
    """Like token_required, and also takes the browser's logged-in session when the request
    carries that session's CSRF token in an X-CSRFToken header (the farmers' offline outbox
    sends from the page). The session cookie alone is never enough: without the token any
    other site could make the browser post. A bad or missing token is 401 `csrf_invalid`."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if request.headers.get("Authorization"):
            return token_required(view)(*args, **kwargs)
        from flask_login import current_user
        if not getattr(current_user, "is_authenticated", False):
            return error(401, "unauthorized", _("A valid bearer token is required."))
        from flask_wtf.csrf import CSRFError, validate_csrf
        from wtforms import ValidationError
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except (ValidationError, CSRFError):
            return error(401, "csrf_invalid",
                         _("The page's security token is not valid any more. Reload the page "
                           "and send again."))
        g.api_user = current_user._get_current_object()
        return view(*args, **kwargs)
    return wrapper


def json_body() -> dict:
    """The request's JSON object; 400 `malformed_json` or 422 `invalid_body` otherwise."""
    raw = request.get_data(cache=True)
    try:
        # json.loads, not get_json(silent=True): that lets RecursionError (deep nesting) through.
        data = json.loads(raw.decode("utf-8")) if raw.strip() else _NOTHING
    except (ValueError, RecursionError):
        data = _NOTHING
    if data is _NOTHING:
        raise DomainError(_("The body must be valid JSON."), code="malformed_json", status=400)
    if not isinstance(data, dict):
        raise ValidationFailed(_("The body must be a JSON object."), code="invalid_body")
    return data


_NOTHING = object()


def idempotency_key() -> str | None:
    return check_key(request.headers.get("Idempotency-Key"), field="Idempotency-Key")


def page_args(default: int = 50, maximum: int = 200) -> tuple[int, int | None]:
    """(limit, cursor id) from ?limit= and ?cursor=; refuses junk with 422: a limit that is
    not 1..maximum in ASCII digits, a cursor that is not one `encode_cursor` could have made
    (an id the database can hold: PostgreSQL would refuse a larger one with an error)."""
    raw = request.args.get("limit", str(default))
    if not _ascii_digits(raw, 4):
        raise ValidationFailed(_("limit must be a whole number."),
                               fields={"limit": [_("Must be an integer.")]})
    limit = int(raw)
    if not 1 <= limit <= maximum:
        raise ValidationFailed(_("limit must be between 1 and %(n)d.", n=maximum),
                               fields={"limit": [_("Out of range.")]})
    cursor = request.args.get("cursor")
    after = None
    if cursor:
        after = decode_cursor(cursor)
        if after is None:
            raise ValidationFailed(_("Bad cursor."), fields={"cursor": [_("Bad cursor.")]})
    return limit, after


def _ascii_digits(text: str, most: int) -> bool:
    # str.isdigit() and int() also take other scripts' digits ("٣"), signs and underscores.
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def decode_cursor(cursor: str) -> int | None:
    """The id in a cursor from `encode_cursor`, or None for anything else."""
    if len(cursor) > 16 or not cursor.isascii():
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"==").decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    if not _ascii_digits(text, 10) or encode_cursor(int(text)) != cursor:
        return None
    after = int(text)
    return after if is_id(after) else None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode().rstrip("=")


def paged(items: list, limit: int, serialise, key=lambda item: item.id) -> dict:
    """`{"items", "next_cursor"}` from limit+1 rows (the extra row tells there is more);
    `key` gives the id the next page starts after."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": [serialise(i) for i in items],
            "next_cursor": encode_cursor(key(items[-1])) if more and items else None}
