from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class User(UserMixin, db.Model):
    """A person: farmer, manager, treasurer (through memberships) and/or a buyer's staff."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    # A farmer a manager registers may have no e-mail: they log in with their phone then.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    # The first password a manager handed over is good for one login: the farmer then chooses
    # a numeric PIN (stored in password_hash, hashed like a password) before anything else.
    must_set_pin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    locale: Mapped[str | None] = mapped_column(String(5))
    # In every session (Flask-Login's id is "<id>:<version>"): a logout or a new password
    # moves it, and every session made before stops working (auth.services.end_sessions).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"), index=True)
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
