"""Buyers as organisations (issue 14, part 4): a buyer account has several users, each in a
role. An admin manages the users (invites a colleague by e-mail, changes roles, removes one,
never the last admin) and the billing; a purchaser places orders; an accounts user receives
the invoices and sees the orders and invoices, but cannot order. Admins order too.

Every user of a buyer sees the organisation's orders: orders belong to the buyer
(Order.buyer_id), never to the person who placed them. An invitation works like a coop's
(cooperatives.invitations): a link, only its SHA-256 stored, good for 14 days; the invited
person accepts it logged in with the invited address, or makes that address's account from
the link. The answer to an invite is the same whether or not the address has an account."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from ..common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..common.models import utcnow
from ..extensions import db
from . import services
from .models import Buyer, BuyerInvitation, User

BUYER_ROLES = ("admin", "purchaser", "accounts")
ORDERING_ROLES = ("admin", "purchaser")
INVITATION_DAYS = 14


def role_of(user) -> str | None:
    """The user's role in their buyer organisation (a buyer user from before roles is its
    admin); None for anyone who is no buyer's user."""
    if not getattr(user, "is_authenticated", True) or not getattr(user, "buyer_id", None):
        return None
    return getattr(user, "buyer_role", None) or "admin"


def can_order(user) -> bool:
    return role_of(user) in ORDERING_ROLES


def require_purchaser(user) -> None:
    """Refuses (403) anyone who may not place, change or withdraw an order: not a buyer's
    user (`not_a_buyer`), or an accounts user (`not_a_purchaser`)."""
    role = role_of(user)
    if role is None:
        raise Forbidden(_("Only buyers can order."), code="not_a_buyer")
    if role not in ORDERING_ROLES:
        raise Forbidden(_("Your role in your organisation (accounts) does not allow "
                          "ordering: ask a purchaser or an admin."), code="not_a_purchaser")


def require_admin(user) -> Buyer:
    """The admin's buyer organisation; 403 for any other user."""
    if role_of(user) != "admin":
        raise Forbidden(_("Only an admin of the organisation manages its users."),
                        code="not_an_admin")
    return db.session.get(Buyer, user.buyer_id)


def _check_role(role) -> str:
    if role not in BUYER_ROLES:
        raise ValidationFailed(_("Choose admin, purchaser or accounts."), code="invalid_role",
                               fields={"role": [_("Unknown role.")]})
    return role


def members(buyer_id: int) -> list[User]:
    """The organisation's users, by id (one query)."""
    return list(db.session.scalars(select(User).where(User.buyer_id == buyer_id)
                                   .order_by(User.id)))


accounts_emails = services.accounts_emails


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _live(stmt):
    return stmt.where(BuyerInvitation.status == "pending",
                      BuyerInvitation.expires_at > utcnow())


def invite(admin: User, *, email: str, role: str) -> tuple[BuyerInvitation, str]:
    """An invitation for `email` to join the admin's organisation as `role`, and its link's
    token. The same address invited again gets the one invitation, with the new role and a new
    link (the old link stops working). Refuses a non-admin (403), an unknown role, a bad
    address, a user of the organisation already (409 already_member)."""
    buyer = require_admin(admin)
    role = _check_role(role)
    email = services.normalise_email(email)
    if db.session.scalar(select(User.id).where(User.email == email,
                                               User.buyer_id == buyer.id)):
        raise Conflict(_("That person is already a user of your organisation."),
                       code="already_member", fields={"email": [_("Already a user.")]})
    invitation = db.session.scalar(_live(select(BuyerInvitation).where(
        BuyerInvitation.buyer_id == buyer.id, BuyerInvitation.email == email)).limit(1))
    if invitation is None:
        invitation = BuyerInvitation(buyer_id=buyer.id, email=email)
        db.session.add(invitation)
    token = secrets.token_urlsafe(24)
    invitation.role, invitation.invited_by_id = role, admin.id
    invitation.token_hash = _digest(token)
    invitation.expires_at = utcnow() + timedelta(days=INVITATION_DAYS)
    db.session.flush()
    return invitation, token


def pending(buyer_id: int) -> list[BuyerInvitation]:
    return list(db.session.scalars(_live(select(BuyerInvitation).where(
        BuyerInvitation.buyer_id == buyer_id)).order_by(BuyerInvitation.id)))


def withdraw(admin: User, invitation_id: int) -> BuyerInvitation:
    """The admin takes back a pending invitation of their organisation (another's: 404)."""
    buyer = require_admin(admin)
    invitation = db.session.get(BuyerInvitation, invitation_id)
    if invitation is None or invitation.buyer_id != buyer.id or invitation.status != "pending":
        raise NotFound(_("No such invitation."))
    invitation.status, invitation.answered_at = "withdrawn", utcnow()
    db.session.flush()
    return invitation


def by_token(token: str) -> BuyerInvitation:
    """The pending invitation of a link; an unknown, answered or expired one is a 404."""
    if not isinstance(token, str) or not 10 <= len(token) <= 100:
        raise NotFound(_("This invitation does not exist or is no longer valid."))
    invitation = db.session.scalar(_live(select(BuyerInvitation).where(
        BuyerInvitation.token_hash == _digest(token))))
    if invitation is None:
        raise NotFound(_("This invitation does not exist or is no longer valid."))
    return invitation


def addressee(invitation: BuyerInvitation) -> User | None:
    return db.session.scalar(select(User).where(User.email == invitation.email))


def accept(token: str, user: User) -> BuyerInvitation:
    """The invited person joins the organisation in the invitation's role. Refuses someone
    logged in with another address (404: the link is not theirs) and a user of another buyer
    organisation (409 other_organisation: one organisation per user)."""
    invitation = by_token(token)
    invitation = db.session.scalar(select(BuyerInvitation).where(
        BuyerInvitation.id == invitation.id).with_for_update(of=BuyerInvitation)
        .execution_options(populate_existing=True))
    if invitation.status != "pending" or (user.email or "") != invitation.email:
        raise NotFound(_("This invitation does not exist or is no longer valid."))
    if user.buyer_id and user.buyer_id != invitation.buyer_id:
        raise Conflict(_("You are a user of another buyer organisation: leave it first (its "
                         "admin removes you), then accept."), code="other_organisation")
    if user.buyer_id != invitation.buyer_id:
        user.buyer_id, user.buyer_role = invitation.buyer_id, invitation.role
    invitation.status, invitation.answered_at = "accepted", utcnow()
    invitation.user_id = user.id
    db.session.flush()
    return invitation


def sign_up_to_accept(token: str, *, name: str, password: str) -> User:
    """An account for the invited address (made by whoever holds the link, which went to that
    address), then joined to the organisation. An address with an account logs in instead
    (409 log_in_to_answer)."""
    invitation = by_token(token)
    if addressee(invitation) is not None:
        raise Conflict(_("This address already has a Minga account: log in to answer."),
                       code="log_in_to_answer")
    user = services.create_user(email=invitation.email, name=name, password=password)
    db.session.flush()
    accept(token, user)
    return user


def _member(buyer: Buyer, user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < int(user_id) <= 2**31 - 1 else None
    if user is None or user.buyer_id != buyer.id:
        raise NotFound(_("No such user in your organisation."))
    return user


def _locked(buyer: Buyer) -> None:
    """Holds the organisation's row until the commit: two admins changing each other at once
    are decided one after the other, so the last admin is never removed. PostgreSQL: FOR NO
    KEY UPDATE (an order being placed for the buyer, which only takes FOR KEY SHARE through
    its foreign key, neither waits for it nor holds it up). SQLite: a read cannot be upgraded
    to a write there, so the transaction's write lock is taken first, by a write that changes
    nothing; the checks then read in the one write transaction."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(Buyer.id).where(Buyer.id == buyer.id)
                           .with_for_update(key_share=True))
    else:
        table = Buyer.__table__
        db.session.execute(update(table).where(table.c.id == buyer.id)
                           .values(organisation=table.c.organisation))


def _decide(admin: User, buyer: Buyer, user_id) -> User:
    """Locks the organisation (_locked), then reads the acting admin and the user again: what
    this request read before (the logged-in user, the confirmation's preview) may have been
    changed by a request decided just before. Returns the user; 404 for a user of another
    organisation."""
    _locked(buyer)
    ids = {admin.id}
    if 0 < int(user_id) <= 2**31 - 1:
        ids.add(int(user_id))
    db.session.scalars(select(User).where(User.id.in_(ids))
                       .execution_options(populate_existing=True)).all()
    return _member(buyer, user_id)


def _still_admin(admin: User, buyer: Buyer) -> None:
    """The acting admin is still one, as read under the lock (another admin may have demoted
    or removed them a moment ago): otherwise 403, like any non-admin."""
    if admin.buyer_id != buyer.id or role_of(admin) != "admin":
        raise Forbidden(_("Only an admin of the organisation manages its users."),
                        code="not_an_admin")


def _admins(buyer: Buyer) -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(
        User.buyer_id == buyer.id, func.coalesce(User.buyer_role, "admin") == "admin"))


def _keeps_an_admin(buyer: Buyer, user: User) -> None:
    if role_of(user) == "admin" and _admins(buyer) <= 1:
        raise Conflict(_("The organisation needs at least one admin: make someone else admin "
                         "first."), code="last_admin")


def change_role(admin: User, user_id: int, role: str) -> User:
    """A user of the admin's organisation gets `role`. Refuses a non-admin (403), a user of
    another organisation (404), an unknown role, the last admin's demotion (409 last_admin).
    Decided under the organisation's lock, on what is committed: of two admins demoting each
    other at once, the second is refused (409 last_admin); an admin demoted a moment ago
    changes nobody (403)."""
    buyer = require_admin(admin)
    role = _check_role(role)
    user = _decide(admin, buyer, user_id)
    if role_of(user) == role:
        _still_admin(admin, buyer)
        return user
    if role != "admin":
        _keeps_an_admin(buyer, user)
    _still_admin(admin, buyer)
    user.buyer_role = role
    db.session.flush()
    return user


def remove(admin: User, user_id: int) -> User:
    """The user leaves the admin's organisation (their Minga account stays; they no longer see
    its orders). Refuses a non-admin (403), another organisation's user (404), the last admin
    (409 last_admin), decided under the organisation's lock as change_role is."""
    buyer = require_admin(admin)
    user = _decide(admin, buyer, user_id)
    _keeps_an_admin(buyer, user)
    _still_admin(admin, buyer)
    user.buyer_id, user.buyer_role = None, None
    db.session.flush()
    services.revoke_all_tokens(user)  # a program of theirs must not keep the buyer's orders
    return user


def preview_role_change(admin: User, user_id: int, role: str) -> tuple:
    """What change_role would do, as (user id, name, role before, role after); refuses what it
    would refuse, writing nothing."""
    buyer = require_admin(admin)
    role = _check_role(role)
    user = _member(buyer, user_id)
    if role != "admin" and role_of(user) != role:
        _keeps_an_admin(buyer, user)
    return (user.id, user.name, role_of(user), role)


def preview_remove(admin: User, user_id: int) -> tuple:
    """What remove would do, as (user id, name, e-mail, role); refuses what it would refuse."""
    buyer = require_admin(admin)
    user = _member(buyer, user_id)
    _keeps_an_admin(buyer, user)
    return (user.id, user.name, user.email or "", role_of(user))
