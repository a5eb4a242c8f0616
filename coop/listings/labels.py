"""Labels of the listings domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

LISTING_STATUS = {"available": _l("On offer"), "committed": _l("In a pool"),
                  "sold": _l("Sold"), "withdrawn": _l("Withdrawn")}
