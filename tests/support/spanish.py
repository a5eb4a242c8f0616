"""Reading a page as a Spanish speaker does: its visible text, and the English words or internal
codes that must not be in it."""
from __future__ import annotations

import re
from html.parser import HTMLParser

FORBIDDEN = [
    # statuses
    "confirmed", "authorized", "authorised", "captured", "cancelled", "succeeded", "unmatched",
    "matched", "mismatch", "missing_ledger", "pending", "paid", "failed", "released", "posted",
    "voided", "available", "committed", "withdrawn", "redeemed", "active", "open", "closed",
    "Confirmed", "Cancelled", "Pending", "Paid", "Failed", "Open", "Closed",
    # crops, grades
    "coffee", "Coffee", "Cocoa", "cocoa", "sca85", "sca80", "fnc94", "export", "opium_poppy",
    "coca_leaf",
    # rails
    "bank", "cash", "nequi", "daviplata", "breb", "yape", "plin", "spei", "Bank", "Cash",
    # ledger accounts, kinds, memos
    "payable", "farmer_payable", "share_capital", "stripe_clearing", "card_holds",
    "buyer_deposits", "commission_income", "card_fees", "operating_costs", "premium_fund",
    "card_hold", "capture", "card_fee", "stripe_payout", "operating_cost", "year_end_close",
    "year_end_distribution", "refund_failed", "premium_spend", "intake", "payout", "advance",
    "withholding", "redemption", "reversal", "refund", "bps", "Owed to farmer",
    "card capture", "card hold", "order",
    # audit
    "ledger.reverse", "payouts.batch_created", "intake.record", "shares.pay", "system",
    # roles, words
    "manager", "treasurer", "farmer", "Farmer", "Buyer", "Pool", "Status", "Amount", "Owed",
    "Settlement", "Delivery", "Statement", "Held", "Captured", "Refunded", "None", "True",
    "False", "Nothing", "Record", "Import", "Show", "Save",
]
WORDS = re.compile(r"(?<![\w.])(" + "|".join(re.escape(w) for w in FORBIDDEN) + r")(?![\w])")


class VisibleText(HTMLParser):
    """The text a person reads: text nodes outside script/style/template, and the
    attributes shown or read aloud (alt, title, aria-label, placeholder, button values).
    <code> is left out: what is to be typed literally (a file's header, a reference)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template", "code"):
            self._hidden += 1
        a = dict(attrs)
        for name in ("alt", "title", "aria-label", "placeholder"):
            if a.get(name):
                self.parts.append(a[name])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.parts.append(a["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template", "code") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def offending(html: str, allowed: set[str]) -> list[str]:
    """Forbidden words with some context, leaving out people's own data (names...)."""
    text = visible(html)
    for value in allowed:
        text = text.replace(value, " ")
    return [text[max(0, m.start() - 40):m.end() + 40].replace("\n", " ")
            for m in WORDS.finditer(text)]
