"""Labels of the payouts domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

LINE_STATUS = {"pending": _l("waiting for the bank"), "paid": _l("paid"),
               "failed": _l("failed, due again")}
BATCH_STATUS = {"open": _l("open"), "closed": _l("closed")}
