from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db


class Crop(db.Model):
    """A legal crop Minga trades. Prohibited crops are never rows here (see services)."""

    __tablename__ = "crops"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name_en: Mapped[str] = mapped_column(String(80))
    name_es: Mapped[str] = mapped_column(String(80))
    sort_order: Mapped[int] = mapped_column(default=0)
    grades: Mapped[list["Grade"]] = relationship(
        back_populates="crop", lazy="select", order_by="Grade.sort_order"
    )


class Grade(db.Model):
    __tablename__ = "grades"
    __table_args__ = (UniqueConstraint("crop_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    crop_id: Mapped[int] = mapped_column(ForeignKey("crops.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name_en: Mapped[str] = mapped_column(String(120))
    name_es: Mapped[str] = mapped_column(String(120))
    sort_order: Mapped[int] = mapped_column(default=0)
    crop: Mapped[Crop] = relationship(back_populates="grades")
