"""Labels of the invoices domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

DOCUMENT_KINDS = {"invoice": _l("invoice"), "credit_note": _l("credit note"),
                  "support_doc": _l("purchase document")}
# A farmer's identity document on the weekly purchase documents (taxids.PERSON_ID_TYPES).
PERSON_ID_TYPES = {"CC": _l("Cédula de ciudadanía (CC)"),
                   "DNI": _l("Documento nacional de identidad (DNI)"),
                   "RUC": _l("Registro único de contribuyentes (RUC)")}
