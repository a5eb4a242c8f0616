"""Labels of the ledger's codes: the chart of accounts (codes stable, names in the reader's
language), entry kinds and statuses, and the audit log's actions, objects and fields."""
from flask_babel import lazy_gettext as _l

ACCOUNTS = {
    "bank": _l("Bank"),
    "cash": _l("Cash at collection points"),
    "stripe_clearing": _l("Stripe clearing (captured, not yet paid out)"),
    "card_holds": _l("Card holds (authorised, pending)"),
    "farmer_advances": _l("Advances to farmers"),
    "buyer_deposits": _l("Buyer deposits (paid, goods not yet received)"),
    "card_holds_offset": _l("Card holds owed to buyers if captured"),
    "commission_income": _l("Commission income"),
    "card_fees": _l("Card processing fees"),
    "operating_costs": _l("Operating costs"),
    "premium_fund": _l("Social premium fund"),
    "reserve_fund": _l("Reserve for the protection of contributions"),
    "education_fund": _l("Education fund"),
    "solidarity_fund": _l("Solidarity fund"),
    "accumulated_losses": _l("Losses carried forward"),
    "current_surplus": _l("Surplus of the year being closed"),
    "unsold_returns": _l("Refunds owed to buyers"),
    # per person: "<prefix>:<user id>"
    "farmer_payable": _l("Owed to farmer"),
    "share_capital": _l("Member share capital"),
}
ACCOUNT_KINDS = {"asset": _l("asset"), "liability": _l("liability"), "equity": _l("equity"),
                 "income": _l("income"), "expense": _l("expense")}
ENTRY_KINDS = {
    "card_hold": _l("Card hold"), "capture": _l("Card capture"),
    "reversal": _l("Reversal"), "payout": _l("Payout to a farmer"),
    "card_fee": _l("Card fees"), "stripe_payout": _l("Stripe payout to the bank"),
    "operating_cost": _l("Operating cost"), "year_end_close": _l("Year-end close"),
    "year_end_distribution": _l("Surplus distribution"),
    "shares_cash": _l("Share payment in cash"), "shares_bank": _l("Share payment into the bank"),
    "shares_withholding": _l("Share capital withheld from a delivery"),
    "shares_redemption": _l("Shares redeemed"),
    "intake": _l("Delivery received"), "advance": _l("Cash advance at intake"),
    "refund": _l("Refund to a buyer"), "refund_failed": _l("Refund refused, owed by hand"),
    "premium_spend": _l("Premium fund spending"), "manual": _l("Manual entry"),
}
ENTRY_STATUS = {"pending": _l("pending"), "posted": _l("posted"), "voided": _l("voided")}
# Entry kinds whose memo a person wrote (shown as it is); other memos are Minga's own notes.
PERSONAL_MEMO_KINDS = {"operating_cost", "premium_spend", "manual", "reversal"}

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
