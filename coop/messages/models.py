from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..common import statuses
from ..common.models import UTCDateTime, utcnow
from ..common.statuses import MessageStatus
from ..extensions import db


class Message(db.Model):
    """What one person was (or will be) told about one event on one channel. At most one per
    event, recipient and channel, however often the event is replayed."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("event", "user_id", "channel", name="uq_messages_event"),
                      statuses.status_check(MessageStatus),
                      Index("ix_messages_provider_id", "provider", "provider_id"),
                      Index("ix_messages_coop_created", "coop_id", "created_at"),
                      Index("ix_messages_user_created", "user_id", "created_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    coop_id: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))          # email, sms, whatsapp
    template: Mapped[str] = mapped_column(String(60))
    event: Mapped[str] = mapped_column(String(120))           # "payout-line:88"
    locale: Mapped[str] = mapped_column(String(8))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    unsubscribe: Mapped[bool] = mapped_column(Boolean, default=False)  # e-mail carries one
    urgent: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(10), default=MessageStatus.QUEUED)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int | None] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(6))   # GSM-7 or UCS-2 (SMS, WhatsApp)
    send_after: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OptOut(db.Model):
    """A person's "stop sending me these" for one topic (reminders, news), from an e-mail's
    unsubscribe link or their account page."""

    __tablename__ = "message_optouts"
    __table_args__ = (UniqueConstraint("user_id", "topic", name="uq_optouts_user_topic"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


statuses.guard(Message.status, MessageStatus)
