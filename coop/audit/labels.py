"""Labels of the audit log: its actions, objects and the fields its page shows."""
from flask_babel import lazy_gettext as _l

AUDIT_ACTIONS = {
    "ledger.reverse": _l("Reversed a ledger entry"),
    "payouts.batch_created": _l("Made a payout batch"),
    "payouts.batch_exported": _l("Downloaded a payout file"),
    "payouts.line_paid": _l("Payout confirmed paid"),
    "payouts.line_failed": _l("Payout failed"),
    "treasury.stripe_csv_import": _l("Imported Stripe's CSV"),
    "treasury.stripe_pull": _l("Fetched from Stripe"),
    "treasury.fees_posted": _l("Posted card fees"),
    "treasury.match_confirmed": _l("Confirmed a Stripe match"),
    "treasury.bank_import": _l("Imported a bank statement"),
    "treasury.stripe_payout_posted": _l("Posted a Stripe payout to the bank"),
    "treasury.bank_match_confirmed": _l("Confirmed a bank match"),
    "treasury.bank_line_explained": _l("Explained a bank statement line"),
    "treasury.bank_fee_posted": _l("Posted a bank fee"),
    "treasury.difference_explained": _l("Explained a Stripe difference"),
    "treasury.fee_posted": _l("Posted a missing card fee"),
    "treasury.operating_cost": _l("Recorded an operating cost"),
    "treasury.year_end_close": _l("Approved the year-end close"),
    "finance.settings": _l("Changed the shares and advances settings"),
    "shares.subscribe": _l("Changed a share subscription"),
    "shares.pay": _l("Recorded a share payment"),
    "shares.redeem": _l("Redeemed a member's shares"),
    "intake.record": _l("Recorded a delivery"),
}
AUDIT_OBJECTS = {
    "ledger_entry": _l("entry"), "payout_batch": _l("payout batch"),
    "payout_line": _l("payout line"), "coop": _l("cooperative"),
    "stripe_txn": _l("Stripe transaction"), "bank_line": _l("bank line"),
    "year_end": _l("year"), "share_account": _l("share account"), "intake": _l("delivery"),
}
# The audit log page shows these fields of an event (the CSV keeps every field, raw).
AUDIT_FIELDS = {
    "amount_minor": _l("Amount"), "total_minor": _l("Total"), "paid_minor": _l("Paid"),
    "redeemed_minor": _l("Redeemed"), "capital_minor": _l("Share capital"),
    "farmer_amount_minor": _l("Owed to the farmer"), "sale_minor": _l("Sale"),
    "refund_minor": _l("Refunded to buyers"), "advance_minor": _l("Advance"),
    "withheld_minor": _l("Share capital withheld"), "par": _l("Par value"),
    "surplus_minor": _l("Surplus"),
    "received_g": _l("Kilograms received"), "accepted_g": _l("Kilograms accepted"),
    "rail": _l("Rail"), "status": _l("Status"), "reference": _l("Reference"),
    "farmer_id": _l("Farmer"), "lines": _l("Lines"), "left_out": _l("Left out"),
    "count": _l("Transactions"), "reason": _l("Reason"), "note": _l("Note"),
    "description": _l("Description"), "spent_on": _l("Date"), "via": _l("Paid"),
    "subscribed_shares": _l("Shares subscribed"), "min_shares": _l("Minimum shares"),
    "withholding_bps": _l("Withholding"), "advance_bps": _l("Advance"),
    "grade": _l("Grade"), "entry": _l("Entry"), "reversal": _l("Reversal"),
    "added": _l("Added"), "closed": _l("Closed"),
}
