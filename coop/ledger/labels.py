"""Labels of the ledger's codes: the chart of accounts (codes stable, names in the reader's
language), entry kinds and statuses."""
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
