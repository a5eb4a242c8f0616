"""The platform's staff: people who review new cooperatives. Made and unmade only by the
`flask staff grant|revoke EMAIL` command, never by signing up."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..extensions import db


class PlatformStaff(db.Model):
    __tablename__ = "platform_staff"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
