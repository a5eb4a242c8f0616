"""Who may do what in which cooperative. Another cooperative's object is a 404, never a hint."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user

from .errors import Forbidden, NotFound


def roles_in(user, coop_id: int) -> set[str]:
    if not user or not getattr(user, "is_authenticated", False):
        return set()
    return {m.role for m in user.memberships if m.coop_id == coop_id}


def farmer_coop_ids(user) -> list[int]:
    """The cooperatives where the user is a farmer member, in id order (none for a visitor)."""
    if not user or not getattr(user, "is_authenticated", False):
        return []
    return sorted({m.coop_id for m in user.memberships if m.role == "farmer"})


def is_farmer(user) -> bool:
    """Whether the user farms in some cooperative (has listings, deliveries, payments)."""
    return bool(farmer_coop_ids(user))


def require_member(coop_id: int, *roles: str, user=None) -> None:
    """Raise NotFound unless the user belongs to the coop; Forbidden if they lack every role."""
    user = user or current_user
    have = roles_in(user, coop_id)
    if not have:
        raise NotFound(_("Not found."))
    if roles and not have.intersection(roles):
        raise Forbidden(_("Your role in this cooperative does not allow this."))
