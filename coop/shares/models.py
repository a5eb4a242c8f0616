from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..common.statuses import ShareAccountStatus, status_check
from ..extensions import db
from ..common import statuses

MOVEMENT_KINDS = ("cash", "bank", "withholding", "redemption")


class ShareAccount(db.Model):
    """A member's line in the share register: shares subscribed, capital paid (in minor
    units: withholding pays part of a share at a time) and capital redeemed when leaving.
    The ledger's share_capital:<member> account holds paid minus redeemed."""

    __tablename__ = "share_accounts"
    __table_args__ = (
        UniqueConstraint("coop_id", "user_id"),
        CheckConstraint("subscribed_shares >= 0", name="subscribed_nonneg"),
        CheckConstraint("paid_minor >= 0 AND redeemed_minor >= 0 AND redeemed_minor <= paid_minor",
                        name="paid_redeemed"),
        status_check(ShareAccountStatus),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    subscribed_shares: Mapped[int] = mapped_column(default=0)
    paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    redeemed_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10), default="active")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped["User"] = relationship(lazy="joined")  # noqa: F821

    @property
    def capital_minor(self) -> int:
        return self.paid_minor - self.redeemed_minor


class ShareMovement(db.Model):
    """One payment into or redemption out of a member's share capital, with its ledger entry."""

    __tablename__ = "share_movements"
    __table_args__ = (
        UniqueConstraint("coop_id", "idempotency_key"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("kind IN ('cash', 'bank', 'withholding', 'redemption')", name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("share_accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    ledger_entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Every status change through the ORM is a move its machine allows (coop/common/statuses.py).
statuses.guard(ShareAccount.status, statuses.ShareAccountStatus)

