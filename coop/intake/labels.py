"""Labels of the intake domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

REFUND_STATUS = {"pending": _l("refund under way"), "succeeded": _l("refunded"),
                 "failed": _l("refund refused by the card network")}

# Why a buyer got money back (intake.services.refund_reason), as the buyer reads it.
REFUND_REASONS = {"not_delivered": _l("a farmer delivered nothing"),
                  "shortfall": _l("less was delivered than sold"),
                  "downgrade": _l("delivered at a lower grade"),
                  "shortfall_downgrade": _l("less was delivered, at a lower grade")}
