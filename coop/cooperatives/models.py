from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, ForeignKey, LargeBinary, String,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import CoopStatus, InvitationStatus, status_check
from ..extensions import db

ROLES = ("farmer", "manager", "treasurer")
PAYOUT_RAILS = ("bank", "breb", "nequi", "daviplata", "yape", "plin", "spei", "cash")
ILLICIT_CROPS = ("coca", "opium_poppy", "cannabis")


class Cooperative(db.Model):
    """A cooperative. Pending until the platform's staff verify its registration (legal name,
    tax id, country, a document); a pending coop sets itself up but opens no pool and moves
    no money. Names (`name_key`: case and accents aside) and tax ids are unique per country."""

    __tablename__ = "cooperatives"
    __table_args__ = (
        UniqueConstraint("country", "name_key", name="uq_cooperatives_country_name_key"),
        UniqueConstraint("country", "tax_id", name="uq_cooperatives_country_tax_id"),
        status_check(CoopStatus),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    region: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=CoopStatus.PENDING,
                                        server_default=CoopStatus.PENDING)
    name_key: Mapped[str | None] = mapped_column(String(160))
    legal_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    tax_id: Mapped[str | None] = mapped_column(String(32))
    founded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    refusal_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    memberships: Mapped[list["Membership"]] = relationship(back_populates="coop",
                                                          order_by="Membership.id")


class Membership(db.Model):
    """A role a person holds in a cooperative; one person may hold several, in several coops."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "coop_id", "role"),
        CheckConstraint("role IN ('farmer', 'manager', 'treasurer')", name="role"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user: Mapped["User"] = relationship(back_populates="memberships")  # noqa: F821
    coop: Mapped[Cooperative] = relationship(back_populates="memberships", lazy="joined")


class FarmerProfile(db.Model):
    """A farmer's membership record in one cooperative: identity, payout details, plots."""

    __tablename__ = "farmer_profiles"
    __table_args__ = (
        UniqueConstraint("coop_id", "user_id"),
        UniqueConstraint("coop_id", "member_number"),
        CheckConstraint(
            "payout_rail IN ('bank', 'breb', 'nequi', 'daviplata', 'yape', 'plin', 'spei', 'cash')",
            name="payout_rail",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    member_number: Mapped[str] = mapped_column(String(32))
    national_id: Mapped[str] = mapped_column(String(32))
    # The identity document the weekly purchase document names the farmer by (its type, as
    # coop/invoices/taxids.PERSON_ID_TYPES: CC; DNI, RUC; and its number, normalised):
    # optional, none for members recorded before it was asked.
    tax_id_type: Mapped[str | None] = mapped_column(String(8))
    tax_id: Mapped[str | None] = mapped_column(String(20))
    gender: Mapped[str | None] = mapped_column(String(16))
    household_size: Mapped[int | None] = mapped_column()
    payout_rail: Mapped[str] = mapped_column(String(16), default="cash")
    payout_account: Mapped[str] = mapped_column(String(64), default="")
    bank_name: Mapped[str] = mapped_column(String(80), default="")
    joined_on: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    left_on: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user: Mapped["User"] = relationship(lazy="joined")  # noqa: F821
    plots: Mapped[list["Plot"]] = relationship(
        back_populates="farmer", lazy="selectin", order_by="Plot.id"
    )


class CollectionPoint(db.Model):
    """A place where a cooperative receives its members' harvests. A listing names one (its
    `collection_point` is the point's name, as the API gives it), so that supply and intake
    can be counted per point and no two spellings split one place."""

    __tablename__ = "collection_points"
    __table_args__ = (UniqueConstraint("coop_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    name: Mapped[str] = mapped_column(String(160))
    place: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FinanceSettings(db.Model):
    """A cooperative's money policy: advance at intake, member shares, surplus distribution
    (defaults: Ley 79 de 1988, arts. 54-55). Percentages in basis points (2000 = 20%)."""

    __tablename__ = "finance_settings"
    __table_args__ = (
        CheckConstraint("advance_bps BETWEEN 0 AND 10000", name="advance_range"),
        CheckConstraint("share_withholding_bps BETWEEN 0 AND 10000", name="withholding_range"),
        CheckConstraint("share_par_minor >= 0 AND share_min_shares >= 0", name="shares_nonneg"),
        CheckConstraint("reserve_bps >= 2000 AND education_bps >= 2000 AND solidarity_bps >= 1000"
                        " AND reserve_bps + education_bps + solidarity_bps <= 10000",
                        name="ley79_minimums"),
        CheckConstraint("patronage_cash_bps BETWEEN 0 AND 10000", name="cash_range"),
    )
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), primary_key=True)
    advance_bps: Mapped[int] = mapped_column(default=0)
    share_par_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    share_min_shares: Mapped[int] = mapped_column(default=0)
    share_withholding_bps: Mapped[int] = mapped_column(default=0)
    reserve_bps: Mapped[int] = mapped_column(default=2000)
    education_bps: Mapped[int] = mapped_column(default=2000)
    solidarity_bps: Mapped[int] = mapped_column(default=1000)
    patronage_cash_bps: Mapped[int] = mapped_column(default=5000)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class CoopDocument(db.Model):
    """The registration document a founder uploads for verification (a PDF as sent, or an
    image re-encoded without its metadata), kept in the database like listing photos."""

    __tablename__ = "coop_documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Invitation(db.Model):
    """An invitation to hold a role in a cooperative, sent to an e-mail or a phone. Nobody is
    a member until they accept; the coop sees only what its manager typed. Only a SHA-256 of
    the link's token is stored. A farmer's invitation carries the profile its manager filled
    in (`details_json`), made when the farmer accepts."""

    __tablename__ = "coop_invitations"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        CheckConstraint("role IN ('farmer', 'manager', 'treasurer')", name="role"),
        CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="address"),
        status_check(InvitationStatus),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(120), default="")
    details_json: Mapped[str] = mapped_column(String(2000), default="{}")
    token_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=InvitationStatus.PENDING)
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    coop: Mapped[Cooperative] = relationship(lazy="joined")


# Plots are the plots domain's (coop/plots): their geometry, EUDR declarations and versions.
from ..plots.models import Plot  # noqa: E402,F401
