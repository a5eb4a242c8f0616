"""GET /api/v1/coops: the (verified) cooperatives; the caller's invitations to join one, to
accept or decline (api-v1.md). Nobody joins a coop through the API without accepting."""
from __future__ import annotations

from flask import g, jsonify

from ..api.blueprint import bp
from ..api.common import page_args, paged, token_required
from ..api.openapi import register
from ..common.transactions import reads_only
from ..extensions import db
from . import invitations
from . import services as coop_services


@bp.get("/coops")
@reads_only
def coops():
    limit, after = page_args()
    return jsonify(paged(coop_services.coops_after(limit + 1, after), limit, lambda c: {
        "id": c.id, "slug": c.slug, "name": c.name, "country": c.country,
        "currency": c.currency, "region": c.region}))


def invitation_json(invitation) -> dict:
    return {"id": invitation.id, "coop_id": invitation.coop_id,
            "coop_name": invitation.coop.name, "role": invitation.role,
            "status": invitation.status, "expires_at": invitation.expires_at.isoformat()}


@bp.get("/invitations")
@token_required
def my_invitations():
    limit, after = page_args()
    return jsonify(paged(invitations.for_user(g.api_user, limit=limit + 1, after_id=after),
                         limit, invitation_json))


@bp.post("/invitations/<int:invitation_id>/accept")
@token_required
def accept_invitation(invitation_id):
    found = invitations.mine(g.api_user, invitation_id)
    invitations.accept(found, g.api_user)
    db.session.commit()
    return jsonify(invitation_json(found))


@bp.post("/invitations/<int:invitation_id>/decline")
@token_required
def decline_invitation(invitation_id):
    found = invitations.mine(g.api_user, invitation_id)
    invitations.decline(found, g.api_user)
    db.session.commit()
    return jsonify(invitation_json(found))


register({
    "Coop": {"type": "object",
             "required": ["id", "slug", "name", "country", "currency", "region"],
             "properties": {
        "id": {"type": "integer"}, "slug": {"type": "string"}, "name": {"type": "string"},
        "country": {"type": "string"}, "currency": {"type": "string"},
        "region": {"type": "string"}}},
    "Invitation": {"type": "object",
                   "required": ["id", "coop_id", "coop_name", "role", "status", "expires_at"],
                   "properties": {
        "id": {"type": "integer"}, "coop_id": {"type": "integer"},
        "coop_name": {"type": "string"},
        "role": {"type": "string", "enum": ["farmer", "manager", "treasurer"]},
        "status": {"type": "string", "enum": ["pending", "accepted", "declined", "withdrawn"]},
        "expires_at": {"type": "string", "format": "date-time"}}},
}, [
    ("get", "/coops", "Cooperatives (verified ones)", False, None, {200: ("list", "Coop")}),
    ("get", "/invitations", "Invitations waiting for the caller's answer", True, None,
     {200: ("list", "Invitation"), 401: "Error"}),
    ("post", "/invitations/{id}/accept", "Accept an invitation: the role is the caller's",
     True, None, {200: "Invitation", 401: "Error", 404: "Error", 409: "Error",
                  422: "Error"}),
    ("post", "/invitations/{id}/decline", "Decline an invitation", True, None,
     {200: "Invitation", 401: "Error", 404: "Error"}),
])
