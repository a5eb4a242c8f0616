"""The platform's staff: who they are (made and unmade by `flask staff`, audited) and their
review of new cooperatives, which the cooperatives domain records."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from ..audit import services as audit
from ..auth import services as auth_services
from ..auth.models import User
from ..common.errors import NotFound, ValidationFailed
from ..cooperatives import services as coop_services
from ..cooperatives import verification
from ..extensions import db
from .models import PlatformStaff


def is_staff(user) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    return db.session.get(PlatformStaff, user.id) is not None


def require_staff(user) -> None:
    """Staff pages are a 404 to everyone else (no hint that they exist)."""
    if not is_staff(user):
        raise NotFound(_("Not found."))


def _account(email: str) -> User:
    user = db.session.scalar(select(User).where(
        User.email == auth_services.normalise_email(email)))
    if user is None:
        raise ValidationFailed(_("Nobody with that e-mail has a Minga account."),
                               fields={"email": [_("No account.")]})
    return user


def grant(email: str, by: User | None = None) -> tuple[User, bool]:
    """Make the account of `email` platform staff (audited); (user, whether it changed)."""
    user = _account(email)
    if db.session.get(PlatformStaff, user.id) is not None:
        return user, False
    db.session.add(PlatformStaff(user_id=user.id))
    db.session.flush()
    audit.record(None, by, "staff.granted", "user", user.id, after={"member_id": user.id})
    return user, True


def revoke(email: str, by: User | None = None) -> tuple[User, bool]:
    user = _account(email)
    row = db.session.get(PlatformStaff, user.id)
    if row is None:
        return user, False
    db.session.delete(row)
    db.session.flush()
    audit.record(None, by, "staff.revoked", "user", user.id, before={"member_id": user.id})
    return user, True


def staff() -> list[User]:
    return list(db.session.scalars(select(User).join(PlatformStaff,
                                                     PlatformStaff.user_id == User.id)
                                   .order_by(User.email)))


def review(user, coop_id: int, decision: str, reason: str = ""):
    """A member of staff approves or refuses a pending cooperative."""
    require_staff(user)
    coop = coop_services.get_coop(coop_id)
    if decision == "approve":
        return verification.approve(coop, user)
    if decision == "refuse":
        return verification.refuse(coop, user, reason)
    raise NotFound(_("Not found."))
