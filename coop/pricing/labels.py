"""Labels of the pricing domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

COMMISSION_KINDS = {"bps": _l("Percentage of the farmer price"),
                    "per_kg": _l("Fixed amount per kg")}
