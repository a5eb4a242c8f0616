"""The audit log: one row per money-moving action, written by `coop.audit.services.record`
(the table keeps its name and schema from migration 0003)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class AuditEvent(db.Model):
    """Who did what to money, when, with the state before and after (JSON)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_coop_time", "coop_id", "created_at"),
                      # a coop's (or the platform's) events newest first, a page at a time
                      Index("ix_audit_events_coop_id_keyset", "coop_id", "id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int | None] = mapped_column(ForeignKey("cooperatives.id"))  # None: platform
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    before_json: Mapped[str] = mapped_column(String(4000), default="{}")
    after_json: Mapped[str] = mapped_column(String(4000), default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    user: Mapped["User | None"] = relationship(lazy="joined")  # noqa: F821
