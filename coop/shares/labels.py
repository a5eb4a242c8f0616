"""Labels of the shares domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

SHARE_STATUS = {"active": _l("active"), "redeemed": _l("redeemed")}
MOVEMENT_KINDS = {"cash": _l("paid in cash"), "bank": _l("paid into the bank"),
                  "withholding": _l("withheld from a delivery"), "redemption": _l("redeemed")}
