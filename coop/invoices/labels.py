"""Labels of the invoices domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

DOCUMENT_KINDS = {"invoice": _l("invoice"), "credit_note": _l("credit note"),
                  "support_doc": _l("purchase document")}
