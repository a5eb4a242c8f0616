"""GET /api/v1/me: the person behind the token (name, e-mail, phone in E.164, language, how
messages reach them, memberships); PATCH /api/v1/me: their name and preferences."""
from __future__ import annotations

from flask import g, jsonify
from flask_babel import gettext as _

from ..auth import organisations, services as auth_services
from ..common.errors import ValidationFailed
from ..extensions import db
from .blueprint import bp
from .common import json_body, token_required
from .openapi import register

EDITABLE = ("name", "language", "channel", "timezone", "announcements", "display_currency")


def me_json(user) -> dict:
    return {"id": user.id, "name": user.name, "email": user.email, "phone": user.phone,
            "language": auth_services.language_of(user), "channel": user.channel,
            "channel_used": auth_services.channel_of(user), "timezone": user.timezone,
            "timezone_used": auth_services.timezone_of(user),
            "announcements": bool(user.announcements), "buyer_id": user.buyer_id,
            "buyer_role": organisations.role_of(user),
            "display_currency": user.display_currency,
            "memberships": [{"coop_id": m.coop_id, "coop_name": m.coop.name, "role": m.role}
                            for m in user.memberships]}


@bp.get("/me")
@token_required
def get_me():
    return jsonify(me_json(g.api_user))


@bp.patch("/me")
@token_required
def patch_me():
    """Any of name, language, channel (null: the default), timezone (null: the coop
    country's), announcements; another field is 422, and so is any bad value (nothing
    changes then)."""
    data = json_body()
    unknown = set(data) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(_("These fields cannot be changed: %(f)s", f=", ".join(
            sorted(unknown))), fields={k: [_("Not editable.")] for k in sorted(unknown)})
    for name in ("name", "language"):
        if name in data and not isinstance(data[name], str):
            raise ValidationFailed(_("%(f)s must be a string.", f=name),
                                   fields={name: [_("Must be a string.")]})
    for name in ("channel", "timezone", "display_currency"):
        if name in data and data[name] is not None and not isinstance(data[name], str):
            raise ValidationFailed(_("%(f)s must be a string or null.", f=name),
                                   fields={name: [_("Must be a string or null.")]})
    user = g.api_user
    auth_services.update_preferences(user, **data)
    db.session.commit()
    return jsonify(me_json(user))


_NULLABLE_STRING = {"type": ["string", "null"]}
register({
    "MeMembership": {"type": "object", "required": ["coop_id", "coop_name", "role"],
                     "properties": {"coop_id": {"type": "integer"},
                                    "coop_name": {"type": "string"},
                                    "role": {"type": "string",
                                             "enum": ["farmer", "manager", "treasurer"]}}},
    "Me": {"type": "object",
           "required": ["id", "name", "email", "phone", "language", "channel", "channel_used",
                        "timezone", "timezone_used", "announcements", "buyer_id",
                        "buyer_role", "display_currency", "memberships"],
           "properties": {
               "id": {"type": "integer"}, "name": {"type": "string"},
               "email": _NULLABLE_STRING,
               "phone": {"type": ["string", "null"], "pattern": r"^\+[1-9][0-9]{6,14}$",
                         "description": "E.164"},
               "language": {"type": "string", "enum": ["es", "en"]},
               "channel": {"type": ["string", "null"], "enum": ["email", "sms", "whatsapp",
                                                                 None],
                           "description": "the person's choice; null: the default"},
               "channel_used": {"type": "string", "enum": ["email", "sms", "whatsapp"],
                                "description": "where messages go now"},
               "timezone": {"type": ["string", "null"],
                            "description": "IANA name chosen; null: the coop country's"},
               "timezone_used": {"type": "string"},
               "announcements": {"type": "boolean"},
               "buyer_id": {"type": ["integer", "null"]},
               "buyer_role": {"type": ["string", "null"],
                              "enum": ["admin", "purchaser", "accounts", None],
                              "description": "the role in the buyer organisation"},
               "display_currency": {"type": ["string", "null"], "enum": ["EUR", "USD", None],
                                    "description": "indicative amounts beside the coop's "
                                                   "prices; null: none"},
               "memberships": {"type": "array",
                               "items": {"$ref": "#/components/schemas/MeMembership"}}}},
    "MePatch": {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 120},
        "language": {"type": "string", "enum": ["es", "en"]},
        "channel": {"type": ["string", "null"], "enum": ["email", "sms", "whatsapp", None]},
        "timezone": {"type": ["string", "null"], "examples": ["America/Lima"]},
        "announcements": {"type": "boolean"},
        "display_currency": {"type": ["string", "null"], "enum": ["EUR", "USD", None]}}},
}, [
    ("get", "/me", "The person behind the token", True, None, {200: "Me"}),
    ("patch", "/me", "Change the caller's name and preferences", True, "MePatch",
     {200: "Me", 422: "Error"}),
])
