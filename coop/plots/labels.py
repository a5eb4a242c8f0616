"""Labels of the plots domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

GEOMETRY_KINDS = {"point": _l("Point"), "polygon": _l("Boundary (polygon)"),
                  "multipolygon": _l("Boundary in several parts")}
GEOMETRY_SOURCES = {"typed": _l("Typed coordinates"), "geojson": _l("GeoJSON file"),
                    "kml": _l("KML file"), "gps_point": _l("Phone GPS, a point"),
                    "gps_walk": _l("Phone GPS, boundary walked")}
LAND_USES = {"not_forest": _l("Not forest (crops, pasture, fallow...)"),
             "forest": _l("Forest")}
EVIDENCE_KINDS = {"satellite": _l("Satellite check"), "certifier": _l("Certifier's report"),
                  "photo": _l("Photo"), "document": _l("Document"), "other": _l("Other")}
TENURE_TYPES = {"title": _l("Land title"), "certificate": _l("Possession certificate"),
                "possession": _l("Possession (no document of title)"), "lease": _l("Lease"),
                "collective": _l("Collective or community land"), "other": _l("Other")}
VERSION_CHANGES = {"geometry": _l("Geometry"), "cutoff": _l("Cut-off declaration"),
                   "legality": _l("Legality")}
