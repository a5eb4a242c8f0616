"""Labels of the intake domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

REFUND_STATUS = {"pending": _l("refund under way"), "succeeded": _l("refunded"),
                 "failed": _l("refund refused by the card network")}
