"""plots' current licit crop: free text becomes a crop of the catalogue (its slug)

Revision ID: 0008_lang
Revises: 0007
Create Date: 2026-12-01

A plot's licit crop was typed by hand ("Café", "coffee", "Cacao "), so the impact report
counted one crop under several names, in one language. From now on it is a catalogue slug
(coop/catalog/data.py), shown in the reader's language. Values that name a catalogue crop in
Spanish or English (or its slug), whatever the case, accents or spaces, become its slug;
anything else is kept as typed (the report shows it as it is).
"""
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = '0008_lang'
down_revision = '0007'
branch_labels = None
depends_on = None

# Common ways of writing a crop, beside its catalogue names.
ALIASES = {
    "cafe": "coffee", "coffee": "coffee", "cafe pergamino": "coffee", "cafe verde": "coffee-green",
    "green coffee": "coffee-green", "cacao": "cacao", "cocoa": "cacao", "aguacate": "avocado",
    "palta": "avocado", "avocado": "avocado", "vainilla": "vanilla", "vanilla": "vanilla",
    "maracuya": "passion-fruit", "passion fruit": "passion-fruit", "platano": "plantain",
    "plantain": "plantain", "miel": "honey", "honey": "honey", "macadamia": "macadamia",
    "achiote": "achiote",
}


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return " ".join(text.replace("-", " ").replace("_", " ").split())


# The catalogue's crops as this revision knew them (slug, English, Spanish): a frozen copy of
# coop/catalog/data.py, so that a later catalogue never changes what this migration does.
CROP_NAMES = [
    ("coffee", "Coffee (parchment)", "Café pergamino"),
    ("coffee-green", "Coffee (green)", "Café verde"),
    ("cacao", "Cacao (fermented dry beans)", "Cacao (grano seco fermentado)"),
    ("avocado", "Avocado (Hass)", "Aguacate Hass"),
    ("vanilla", "Vanilla (cured pods)", "Vainilla (vainas curadas)"),
    ("passion-fruit", "Passion fruit", "Maracuyá"),
    ("macadamia", "Macadamia (nut in shell)", "Macadamia (nuez con cáscara)"),
    ("achiote", "Achiote (annatto seed)", "Achiote (semilla)"),
    ("plantain", "Plantain", "Plátano"),
    ("honey", "Honey", "Miel"),
]


def known_names() -> dict[str, str]:
    known = dict(ALIASES)
    for slug, en, es in CROP_NAMES:
        for name in (slug, en, es, en.split(" (")[0], es.split(" (")[0]):
            known.setdefault(_key(name), slug)
    return known


def upgrade():
    known = known_names()
    bind = op.get_bind()
    plots = sa.table("plots", sa.column("id", sa.Integer), sa.column("licit_crop", sa.String))
    rows = bind.execute(sa.select(plots.c.id, plots.c.licit_crop)
                        .where(plots.c.licit_crop.isnot(None))).all()
    for plot_id, value in rows:
        slug = known.get(_key(value))
        if not _key(value):
            bind.execute(plots.update().where(plots.c.id == plot_id).values(licit_crop=None))
        elif slug and slug != value:
            bind.execute(plots.update().where(plots.c.id == plot_id).values(licit_crop=slug))


def downgrade():
    pass  # the slugs are valid free text
