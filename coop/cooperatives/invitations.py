"""Invitations: how a person comes to hold a role in a cooperative with their consent.

A manager adds a farmer, a manager or a treasurer by e-mail (or a farmer by phone): that makes
an invitation, never a membership. The answer is the same whether or not the address has a
Minga account (no oracle): a link to send (issue 11 sends it by e-mail or SMS). Until the
person accepts, logged in with that e-mail or phone, they are not a member and the coop sees
nothing of them but what its manager typed. One exception keeps the field's way of working: a
farmer added by a phone number no account has is created at once as a new account (the
manager hands over a first-login code; the farmer confirms by choosing a PIN at first login).
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import or_, select

from ..audit import services as audit
from ..auth import services as auth_services
from ..auth.models import User
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.models import utcnow
from ..common.statuses import InvitationStatus
from ..extensions import db
from . import services
from .models import Cooperative, Invitation

INVITATION_DAYS = 14
STAFF_ROLES = ("manager", "treasurer")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token(invitation: Invitation) -> str:
    token = secrets.token_urlsafe(24)
    invitation.token_hash = _digest(token)
    invitation.expires_at = utcnow() + timedelta(days=INVITATION_DAYS)
    return token


def _name(name) -> str:
    name = " ".join(name.split()) if isinstance(name, str) else ""
    if len(name) > 120:
        raise ValidationFailed(_("That name is too long."), fields={"name": [_("Too long.")]})
    return name


def _live(stmt):
    return stmt.where(Invitation.status == InvitationStatus.PENDING,
                      Invitation.expires_at > utcnow())


def invite(coop: Cooperative, by: User, role: str, *, email: str | None = None,
           phone: str | None = None, name: str = "", details: dict | None = None
           ) -> tuple[Invitation, str]:
    """An invitation to `role` for an e-mail (or a phone), and its link's token. The same
    address invited again to the same role gets the one invitation with a new link."""
    if role not in services.ROLES:
        raise ValidationFailed(_("Unknown role."), fields={"role": [_("Unknown role.")]})
    email = auth_services.normalise_email(email) if email else None
    phone = None if email else auth_services.normalise_phone(phone, coop.country)
    if email is None and phone is None:
        raise ValidationFailed(_("Give an e-mail or a phone number."),
                               fields={"email": [_("Required.")]})
    name = _name(name)
    invitation = db.session.scalar(_live(select(Invitation).where(
        Invitation.coop_id == coop.id, Invitation.role == role,
        Invitation.email == email if email else Invitation.phone == phone)).limit(1))
    by_id = by.id if by else None
    fresh = invitation is None
    if fresh:
        invitation = Invitation(coop_id=coop.id, role=role, email=email, phone=phone)
    invitation.name = name
    invitation.details_json = json.dumps(details or {})
    invitation.invited_by_id = by_id
    token = _new_token(invitation)
    if fresh:
        db.session.add(invitation)
    db.session.flush()
    audit.record(coop.id, by, "roles.invited", "invitation", invitation.id,
                 after={"role": role})
    return invitation, token


def invite_staff(coop: Cooperative, by: User, *, email: str, role: str
                 ) -> tuple[Invitation, str]:
    """A manager's or treasurer's role offered to an e-mail. Farmers are added with
    invite_farmer (they need a member number and payout details)."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(_("Add farmers with the farmer form: they need a member "
                                 "number and payout details."), fields={"role": []})
    return invite(coop, by, role, email=email)


@dataclass
class FarmerAdded:
    """What adding a farmer made: an invitation (and its link's token), or, for a phone no
    account has, the new member's profile and first-login code (None: a password was set)."""
    invitation: Invitation | None = None
    token: str | None = None
    profile: object | None = None
    code: str | None = None


def invite_farmer(coop: Cooperative, by: User, *, name: str, email: str | None,
                  phone: str | None, password: str | None, member_number: str,
                  national_id: str, payout_rail: str = "cash", payout_account: str = "",
                  bank_name: str = "", gender: str | None = None,
                  household_size: int | None = None, tax_id_type: str | None = None,
                  tax_id: str | None = None) -> FarmerAdded:
    """A farmer, as the members' page and the API add one: by e-mail always an invitation
    (whether or not the address has an account: the same answer); by phone an invitation if
    an account has that phone, else a new account at once (`password`, or a first-login code
    returned to hand over; the farmer chooses a PIN at first login)."""
    details = services.farmer_details(
        coop, member_number=member_number, national_id=national_id, payout_rail=payout_rail,
        payout_account=payout_account, bank_name=bank_name, gender=gender,
        household_size=household_size, tax_id_type=tax_id_type, tax_id=tax_id)
    name = _name(name)
    if not name:
        raise ValidationFailed(_("Name is required."), fields={"name": [_("Required.")]})
    if password:  # a first password the manager typed follows the rules of every password
        auth_services.check_new_password(password)
    normalised = auth_services.normalise_phone(phone, coop.country)  # checked even beside an e-mail
    if email is not None and str(email).strip():
        invitation, token = invite(coop, by, "farmer", email=email, name=name,
                                   details=details)
        return FarmerAdded(invitation=invitation, token=token)
    if normalised is None:
        raise ValidationFailed(_("Give the farmer's phone number or e-mail."),
                               fields={"phone": [_("Required when there is no e-mail.")]})
    if db.session.scalar(select(User.id).where(User.phone == normalised)) is not None:
        invitation, token = invite(coop, by, "farmer", phone=normalised, name=name,
                                   details=details)
        return FarmerAdded(invitation=invitation, token=token)
    code = None if password else auth_services.first_login_code()
    profile = services.add_farmer(coop, name=name, email=None, password=password or code,
                                  phone=normalised, by=by, **details)
    return FarmerAdded(profile=profile, code=code)


# ---------------------------------------------------------------- the coop's side

def pending(coop: Cooperative) -> list[Invitation]:
    return list(db.session.scalars(_live(select(Invitation).where(
        Invitation.coop_id == coop.id)).order_by(Invitation.id)))


def _coop_invitation(coop: Cooperative, invitation_id: int) -> Invitation:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.coop_id != coop.id \
            or invitation.status != InvitationStatus.PENDING:
        raise NotFound(_("No such invitation."))
    return invitation


def withdraw(coop: Cooperative, invitation_id: int, by: User) -> None:
    invitation = _coop_invitation(coop, invitation_id)
    invitation.status, invitation.answered_at = InvitationStatus.WITHDRAWN, utcnow()
    db.session.flush()
    audit.record(coop.id, by, "roles.invitation_withdrawn", "invitation", invitation.id,
                 after={"role": invitation.role})


def renew(coop: Cooperative, invitation_id: int, by: User) -> tuple[Invitation, str]:
    """A new link for a pending invitation (the old one stops working)."""
    invitation = _coop_invitation(coop, invitation_id)
    token = _new_token(invitation)
    db.session.flush()
    return invitation, token


# ---------------------------------------------------------------- the invited person's side

def addressee(invitation: Invitation) -> User | None:
    """The account the invitation is addressed to, if there is one."""
    if invitation.email:
        return db.session.scalar(select(User).where(User.email == invitation.email))
    return db.session.scalar(select(User).where(User.phone == invitation.phone))


def for_user(user: User, *, limit: int | None = None, after_id: int | None = None
             ) -> list[Invitation]:
    """The invitations waiting for the user's answer (sent to their e-mail or phone), by
    id; given a limit, up to that many after `after_id`."""
    if not getattr(user, "is_authenticated", False):
        return []
    addressed = [Invitation.email == user.email] if user.email else []
    if user.phone:
        addressed.append(Invitation.phone == user.phone)
    if not addressed:
        return []
    stmt = _live(select(Invitation).where(or_(*addressed))).order_by(Invitation.id)
    if after_id:
        stmt = stmt.where(Invitation.id > after_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt))


def waiting_count() -> int:
    """The logged-in person's invitations waiting for an answer (0 for a visitor)."""
    from flask_login import current_user
    if not getattr(current_user, "is_authenticated", False):
        return 0
    return len(for_user(current_user))


def by_token(token: str) -> Invitation:
    """The pending invitation of a link; an unknown, answered or expired one is a 404."""
    if not isinstance(token, str) or not 10 <= len(token) <= 100:
        raise NotFound(_("This invitation does not exist or is no longer valid."))
    invitation = db.session.scalar(_live(select(Invitation).where(
        Invitation.token_hash == _digest(token))))
    if invitation is None:
        raise NotFound(_("This invitation does not exist or is no longer valid."))
    return invitation


def mine(user: User, invitation_id: int, *, lock: bool = False) -> Invitation:
    """One of the user's pending invitations; anyone else's is a 404. `lock`: the row held
    until the commit, so that two answers at once make one (the second finds it answered)."""
    if lock:
        invitation = db.session.scalar(select(Invitation).where(
            Invitation.id == invitation_id).with_for_update(of=Invitation)
            .execution_options(populate_existing=True))
    else:
        invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.status != InvitationStatus.PENDING \
            or invitation.expires_at <= utcnow() or addressee(invitation) is None \
            or addressee(invitation).id != user.id:
        raise NotFound(_("No such invitation."))
    return invitation


def accept(invitation: Invitation, user: User) -> Invitation:
    """The invited person says yes: the role is theirs (a farmer's profile made from what the
    manager filled in, its member number and national ID checked again)."""
    invitation = mine(user, invitation.id, lock=True)
    coop = services.get_coop(invitation.coop_id)
    inviter = db.session.get(User, invitation.invited_by_id) if invitation.invited_by_id \
        else None
    if invitation.role == "farmer":
        stored = json.loads(invitation.details_json or "{}")
        details = services.farmer_details(coop, exclude_invitation=invitation.id, **stored)
        services.make_farmer_profile(coop, user, details, by=inviter)
    else:
        services.grant_role(coop, user, invitation.role, by=inviter)
    invitation.status, invitation.answered_at = InvitationStatus.ACCEPTED, utcnow()
    invitation.user_id = user.id
    db.session.flush()
    audit.record(coop.id, user, "roles.invitation_accepted", "invitation", invitation.id,
                 after={"role": invitation.role, "member_id": user.id})
    return invitation


def decline(invitation: Invitation, user: User) -> Invitation:
    invitation = mine(user, invitation.id, lock=True)
    invitation.status, invitation.answered_at = InvitationStatus.DECLINED, utcnow()
    db.session.flush()
    audit.record(invitation.coop_id, user, "roles.invitation_declined", "invitation",
                 invitation.id, after={"role": invitation.role})
    return invitation


def sign_up_to_answer(invitation: Invitation, *, name: str, password: str) -> User:
    """An account for an e-mail invitation's address, made by whoever holds the link (issue 11
    delivers it to that address); an address that already has an account logs in instead."""
    if not invitation.email or addressee(invitation) is not None:
        raise Conflict(_("This address already has a Minga account: log in to answer."),
                       code="log_in_to_answer")
    return auth_services.create_user(email=invitation.email, name=name, password=password)
