"""Labels of the treasury domain's codes (see coop/common/labels.py)."""
from flask_babel import lazy_gettext as _l

STRIPE_TXN_TYPES = {
    "charge": _l("Card payment"), "payment": _l("Card payment"),
    "refund": _l("Refund to a buyer"), "payment_refund": _l("Refund to a buyer"),
    "payout": _l("Stripe payout to the bank"), "payout_failure": _l("Failed Stripe payout"),
    "stripe_fee": _l("Stripe fee"), "application_fee": _l("Stripe fee"),
    "adjustment": _l("Stripe adjustment"), "transfer": _l("Transfer"),
    "refund_failure": _l("Refund refused"),
}
STRIPE_TXN_STATUS = {"unmatched": _l("not matched yet"), "matched": _l("matched"),
                     "mismatch": _l("amount differs"),
                     "missing_ledger": _l("missing in the ledger"),
                     "released": _l("released"), "explained": _l("explained")}
BANK_LINE_STATUS = {"unmatched": _l("not matched yet"), "matched": _l("matched"),
                    "mismatch": _l("amount differs"), "explained": _l("explained")}
BANK_MATCH_KINDS = {"stripe_payout": _l("Stripe payout"), "entry": _l("ledger entry")}
