"""Labels of a lot's journey (see coop/common/labels.py): the kinds of its steps and the
stage a lot is at."""
from flask_babel import lazy_gettext as _l

EVENT_KINDS = {"ready": _l("Ready for dispatch"), "dispatched": _l("Dispatched"),
               "delivered": _l("Delivered"), "received": _l("Receipt confirmed by the buyer"),
               "problem": _l("Problem reported by the buyer")}
STAGES = {"forming": _l("At the cooperative, not ready yet"),
          "ready": _l("Ready for dispatch"), "dispatched": _l("On its way"),
          "delivered": _l("Delivered")}
