"""The legal-crop catalog and the refusal of prohibited crops."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ..common.errors import ValidationFailed
from ..extensions import db
from .data import PROHIBITED
from .models import Crop, Grade


def normalise(name: str) -> str:
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode()
    return "_".join(text.lower().replace("-", " ").replace("_", " ").split())


def prohibited_kind(name: str) -> str | None:
    """The illicit crop a name stands for ('coca', 'opium_poppy', 'cannabis'), else None."""
    key = normalise(name)
    if key in PROHIBITED:
        return PROHIBITED[key]
    # "Coca del Cauca", "semilla de amapola": any word naming an illicit crop refuses it.
    for word in key.split("_"):
        if word in PROHIBITED:
            return PROHIBITED[word]
    return None


def refuse_prohibited(name: str, field: str = "crop") -> None:
    """Raise 422 `prohibited_crop` for coca, opium poppy or cannabis under any of their names."""
    if prohibited_kind(name):
        raise ValidationFailed(
            _("Coca, opium poppy and unlicensed cannabis cannot be listed on Minga. "
              "List the legal crop that replaced it."),
            code="prohibited_crop",
            fields={field: [_("This crop is prohibited.")]},
        )


@dataclass(frozen=True)
class GradeRow:
    """A grade as plain data (the per-process catalog cache holds no ORM rows)."""
    id: int
    crop_id: int
    code: str
    name_en: str
    name_es: str
    sort_order: int


@dataclass(frozen=True)
class CropRow:
    id: int
    slug: str
    name_en: str
    name_es: str
    sort_order: int
    grades: tuple[GradeRow, ...]


# The name of the catalog's cache (coop/common/refcache.py). Crops and grades are written by
# data migrations only; a service that ever writes them calls catalog_changed() in its
# transaction.
CATALOG_CACHE = "catalog"


def catalog_changed() -> None:
    from ..common import refcache
    refcache.bump(CATALOG_CACHE)


def _load_catalog() -> tuple[CropRow, ...]:
    grades: dict[int, list[GradeRow]] = {}
    for g in db.session.execute(select(Grade.id, Grade.crop_id, Grade.code, Grade.name_en,
                                       Grade.name_es, Grade.sort_order)
                                .order_by(Grade.sort_order, Grade.id)):
        grades.setdefault(g.crop_id, []).append(GradeRow(*g))
    return tuple(CropRow(c.id, c.slug, c.name_en, c.name_es, c.sort_order,
                         tuple(grades.get(c.id, ())))
                 for c in db.session.execute(select(Crop.id, Crop.slug, Crop.name_en,
                                                    Crop.name_es, Crop.sort_order)
                                             .order_by(Crop.sort_order, Crop.id)))


def all_crops() -> tuple[CropRow, ...]:
    """Every crop with its grades, in catalog order: plain rows from this process's cache
    (one primary-key read of the catalog's version per request at most)."""
    from ..common import refcache
    return refcache.cached(CATALOG_CACHE, None, _load_catalog)


def crop_by_slug(slug: str) -> Crop | None:
    """The crop with that slug, or None (also for junk: overlong, control characters)."""
    if not isinstance(slug, str) or len(slug) > 40 or not slug.isprintable():
        return None  # no slug looks like that, and PostgreSQL refuses NUL in a query
    return db.session.scalar(select(Crop).where(Crop.slug == normalise(slug).replace("_", "-")))


def resolve(crop_slug: str, grade_code: str) -> tuple[Crop, Grade]:
    """The crop and grade for a listing or price, refusing prohibited and unknown ones clearly."""
    refuse_prohibited(crop_slug)
    crop = crop_by_slug(crop_slug) if crop_slug else None
    if crop is None:
        raise ValidationFailed(
            _("Unknown crop. Choose one of the crops in the catalog."),
            code="unknown_crop", fields={"crop": [_("Unknown crop.")]},
        )
    grade = next((g for g in crop.grades if g.code == (grade_code or "").strip()), None)
    if grade is None:
        raise ValidationFailed(
            _("Unknown grade for %(crop)s.", crop=crop_name(crop)),
            code="unknown_grade", fields={"grade": [_("Choose a grade of this crop.")]},
        )
    return crop, grade


def _lang() -> str:
    loc = get_locale()
    return loc.language if loc else "es"


def crop_name(crop: Crop) -> str:
    return crop.name_es if _lang() == "es" else crop.name_en


def grade_name(grade: Grade) -> str:
    return grade.name_es if _lang() == "es" else grade.name_en
