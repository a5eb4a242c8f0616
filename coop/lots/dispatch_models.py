"""A lot's journey after intake (coop/lots/dispatch.py): the manager marks it ready,
dispatched (carrier, document number, date) and delivered; each buyer confirms receipt or
reports a problem. Each step is one row, appended and never edited: the journey is the list of
its rows."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from ..common.models import UTCDateTime, utcnow
from ..extensions import db

# The manager's steps, in the order they happen; then what a buyer says.
STEPS = ("ready", "dispatched", "delivered")
KINDS = STEPS + ("received", "problem")


class LotEvent(db.Model):
    """One step of a lot's journey. `step` makes a step happen once: the manager's steps are
    their kind ("ready"...), a buyer's receipt "received:<buyer id>", a problem report
    "problem:<the form's key>" (a double tap is one report); unique per lot."""

    __tablename__ = "lot_events"
    __table_args__ = (
        CheckConstraint("kind IN ('ready', 'dispatched', 'delivered', 'received', 'problem')",
                        name="kind"),
        UniqueConstraint("lot_id", "step"),
        Index("ix_lot_events_lot", "lot_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    kind: Mapped[str] = mapped_column(String(12))
    step: Mapped[str] = mapped_column(String(64))
    buyer_id: Mapped[int | None] = mapped_column(ForeignKey("buyers.id"))
    carrier: Mapped[str] = mapped_column(String(120), default="")
    document_number: Mapped[str] = mapped_column(String(80), default="")
    on_date: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(1000), default="")
    by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


@event.listens_for(LotEvent, "before_update")
@event.listens_for(LotEvent, "before_delete")
def _never_edited(_mapper, _connection, target):
    raise RuntimeError(f"lot event {target.id} is never edited or deleted: append another")
