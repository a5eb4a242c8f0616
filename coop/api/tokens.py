"""POST /api/v1/auth/tokens: a bearer token for an e-mail and password (api-v1.md)."""
from __future__ import annotations

from flask import current_app, jsonify
from flask_babel import gettext as _

from ..auth import services as auth_services
from ..extensions import db, limiter
from .blueprint import bp
from .common import error, json_body


def _failed_login(response) -> bool:
    return response.status_code == 401


@bp.post("/auth/tokens")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], deduct_when=_failed_login)
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
