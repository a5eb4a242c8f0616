"""Labels of the pools domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

POOL_STATUS = {"open": _l("Open"), "confirmed": _l("Confirmed"),
               "failed": _l("Did not reach its minimum"), "cancelled": _l("Cancelled")}
ORDER_STATUS = {"pending": _l("Being checked"), "authorized": _l("Held on card"),
                "captured": _l("Paid"), "released": _l("Withdrawn, hold released"),
                "cancelled": _l("Pool failed, hold released"), "failed": _l("Card declined"),
                "unknown": _l("Not known yet whether your card was held"),
                "authorizing": _l("Waiting for you to confirm the card")}
# A pool's delivery terms (coop/pools/terms.py), as the buyers read them.
DELIVERY_TERMS = {"EXW": _l("Pickup at the collection point (EXW)"),
                  "FCA": _l("Handed to a carrier or exporter at a named place (FCA)")}
