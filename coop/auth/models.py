from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint,
                        false)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class User(UserMixin, db.Model):
    """A person: farmer, manager, treasurer (through memberships) and/or a buyer's staff."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    # A farmer a manager registers may have no e-mail: they log in with their phone then.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    # E.164 ("+573001234567"), validated per country (auth.phones).
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    # The first password a manager handed over is good for one login: the farmer then chooses
    # a numeric PIN (stored in password_hash, hashed like a password) before anything else.
    must_set_pin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    locale: Mapped[str | None] = mapped_column(String(5))
    # How messages reach the person: "email", "sms" or "whatsapp"; None: e-mail if they have
    # one, else SMS (auth.services.channel_of).
    channel: Mapped[str | None] = mapped_column(String(10))
    # IANA time zone ("America/Lima"); None: their coop's country's (auth.services.timezone_of).
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Announcements and news only with the person's consent (Ley 1581, Ley 29733): opt-in.
    announcements: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # In every session (Flask-Login's id is "<id>:<version>"): a logout or a new password
    # moves it, and every session made before stops working (auth.services.end_sessions).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"), index=True)
    # The person's role in their buyer organisation (auth.services.BUYER_ROLES): "admin"
    # (users and billing, and orders), "purchaser" (orders), "accounts" (invoices, and sees
    # the orders, but cannot order). None for anyone who is no buyer's user.
    buyer_role: Mapped[str | None] = mapped_column(String(16))
    # The currency a buyer sees indicative amounts in beside the coop's price ("EUR", "USD");
    # None: the coop's own currency, no conversion.
    display_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    buyer: Mapped["Buyer | None"] = relationship(back_populates="users")
    memberships: Mapped[list["Membership"]] = relationship(  # noqa: F821
        back_populates="user", lazy="selectin", order_by="Membership.id"
    )

    def get_id(self) -> str:
        """Flask-Login's alternative id: the session holds the version it was made with, and
        the user loader refuses it once the user's version has moved (logout, new password)."""
        return f"{self.id}:{self.session_version or 0}"


class Buyer(db.Model):
    """A buying organisation: roaster, chocolate maker, importer, grocer."""

    __tablename__ = "buyers"
    id: Mapped[int] = mapped_column(primary_key=True)
    organisation: Mapped[str] = mapped_column(String(160))
    country: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    users: Mapped[list[User]] = relationship(back_populates="buyer")


class ApiToken(db.Model):
    """Bearer tokens for the API; only a SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    user: Mapped[User] = relationship()


class OneTimeCode(db.Model):
    """A secret sent to the person to prove they hold the e-mail or phone on file: a password
    reset link's token, or a 6-digit code (reset, login, change of phone or payout account).
    Only a keyed hash is stored; it works once, until `expires_at`, for `MAX_TRIES` tries."""

    __tablename__ = "one_time_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # reset_link, reset_code, login_code, phone_change, payout_change
    purpose: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), index=True)
    # What the code confirms, when it confirms a change (the new phone; the payout details).
    payload: Mapped[str | None] = mapped_column(String(1000))
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BuyerInvitation(db.Model):
    """A buyer organisation's admin asks a colleague, by e-mail, to join it in a role. Nobody
    joins until they accept, logged in with that address (or by making its account from the
    link). Only a SHA-256 of the link's token is stored."""

    __tablename__ = "buyer_invitations"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        CheckConstraint("role IN ('admin', 'purchaser', 'accounts')", name="role"),
        CheckConstraint("status IN ('pending', 'accepted', 'withdrawn')", name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("buyers.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    buyer: Mapped[Buyer] = relationship(lazy="joined")
