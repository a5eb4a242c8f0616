"""Labels of the jobs domain's codes (see coop/common/labels.py): the tasks staff may see
paused, in their words."""
from flask_babel import lazy_gettext as _l

TASKS = {"pools.close": _l("Close and settle a pool"),
         "messages.send": _l("Send messages"),
         "treasury.pull_stripe": _l("Fetch Stripe's transactions"),
         "intake.finish_refunds": _l("Finish refunds after intake")}
