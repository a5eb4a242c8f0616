"""Crop and grade names by code, in the reader's language (the catalogue, catalog/data.py)."""
from __future__ import annotations

from flask_babel import get_locale

from .data import CROPS as _CATALOGUE


class Named:
    """A name in Spanish and English, read in the page's language when shown."""

    def __init__(self, en: str, es: str):
        self.en, self.es = en, es

    def __str__(self) -> str:
        locale = get_locale()
        return self.en if locale is not None and locale.language == "en" else self.es

    def __html__(self) -> str:
        from markupsafe import escape
        return str(escape(str(self)))


def name_of(row) -> str:
    """The localised name of a Crop or a Grade row (name_es / name_en)."""
    return str(Named(row.name_en, row.name_es)) if row is not None else ""


CROPS = {slug: Named(en, es) for slug, en, es, _grades in _CATALOGUE}
# Grade codes repeat across crops only with the same names ("extra", "first"...).
GRADES: dict[str, Named] = {}
for _slug, _en, _es, _grades in _CATALOGUE:
    for _code, _gen, _ges in _grades:
        GRADES.setdefault(_code, Named(_gen, _ges))
