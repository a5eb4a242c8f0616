"""Labels of the cooperatives domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

ROLES = {"farmer": _l("Farmer"), "manager": _l("Manager"), "treasurer": _l("Treasurer")}
RAILS = {"bank": _l("Bank account"), "breb": _l("Bre-B"), "nequi": _l("Nequi"),
         "daviplata": _l("Daviplata"), "yape": _l("Yape"), "plin": _l("Plin"),
         "spei": _l("SPEI"), "cash": _l("Cash"), "all": _l("Every rail")}
GENDERS = {"female": _l("Female"), "male": _l("Male"), "other": _l("Other"),
           "unknown": _l("Not recorded")}
ILLICIT_CROPS = {"coca": _l("Coca"), "opium_poppy": _l("Opium poppy"),
                 "cannabis": _l("Cannabis")}
COOP_STATUS = {"pending": _l("Waiting for verification"), "verified": _l("Verified"),
               "refused": _l("Refused")}
