"""POST /api/v1/auth/tokens: a bearer token for an e-mail and password (api-v1.md); the
caller's tokens listed (GET) and revoked (DELETE /auth/tokens/current, /auth/tokens/{id})."""
from __future__ import annotations

from flask import g, jsonify, request
from flask_babel import gettext as _

from ..auth import services as auth_services
from ..auth.limits import login_limits
from ..extensions import db
from .blueprint import bp
from .common import error, json_body, token_required


@bp.post("/auth/tokens")
@login_limits
def create_token():
    data = json_body()
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        return error(422, "validation_failed", _("email and password are required strings."),
                     {k: [_("Required.")] for k in ("email", "password")
                      if not isinstance(data.get(k), str)})
    # No address holds control characters (and PostgreSQL refuses NUL in a query).
    user = auth_services.authenticate(email, password) if email.isprintable() else None
    if user is None:
        return error(401, "invalid_credentials", _("Wrong e-mail or password."))
    if user.must_set_pin:
        # A first-login code opens one thing: the page where the farmer chooses a PIN.
        return error(403, "pin_required", _("Log in on the website first and choose your "
                                            "PIN."))
    token = auth_services.issue_token(user)
    db.session.commit()
    return jsonify(token=token, user=user_json(user)), 201


def user_json(user) -> dict:
    return {"id": user.id, "email": user.email, "name": user.name,
            "memberships": [{"coop_id": m.coop_id, "role": m.role} for m in user.memberships],
            "buyer_id": user.buyer_id}


def token_json(row, current_id: int | None) -> dict:
    return {"id": row.id, "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat(), "current": row.id == current_id}


def _current_token_id() -> int | None:
    _scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    row = auth_services.token_row(token.strip())
    return row.id if row is not None else None


@bp.get("/auth/tokens")
@token_required
def list_tokens():
    """The caller's live tokens (never the tokens themselves: only their hash is kept)."""
    current = _current_token_id()
    return jsonify(items=[token_json(row, current)
                          for row in auth_services.tokens_of(g.api_user)])


@bp.delete("/auth/tokens/current")
@token_required
def revoke_current_token():
    """Logs the program out: the token of this request stops working."""
    auth_services.revoke_token(g.api_user, _current_token_id())
    db.session.commit()
    return "", 204


@bp.delete("/auth/tokens/<int:token_id>")
@token_required
def revoke_token(token_id):
    """One of the caller's tokens ends; another person's (or an unknown id) is 404."""
    auth_services.revoke_token(g.api_user, token_id)
    db.session.commit()
    return "", 204
