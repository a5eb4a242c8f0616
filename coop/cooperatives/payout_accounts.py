"""Checks on a farmer's payout account for each rail (domain.md, "Payout rails")."""
from __future__ import annotations

import re

from flask_babel import gettext as _

from ..common.errors import ValidationFailed


def clabe_is_valid(clabe: str) -> bool:
    """Mexican CLABE: 18 digits, the last a check digit over weights 3, 7, 1."""
    if not re.fullmatch(r"[0-9]{18}", clabe):
        return False
    weights = (3, 7, 1) * 6
    total = sum((int(d) * w) % 10 for d, w in zip(clabe[:17], weights))
    return (10 - total % 10) % 10 == int(clabe[17])


def luhn_is_valid(number: str) -> bool:
    digits = [int(d) for d in number][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                for i, d in enumerate(digits))
    return total % 10 == 0


def _digits(account: str) -> str:
    """What is left once the separators people type are gone: "+57 (300) 123-4567" -> "573001234567"."""
    return re.sub(r"[\s\-.()+]", "", account or "")


def validate_payout_account(rail: str, account: str) -> str:
    """The account cleaned for the rail; ValidationFailed with the reason when it cannot be right."""
    account = (account or "").strip()
    digits = _digits(account)
    bad = None
    if rail == "cash":
        return ""
    if rail in ("nequi", "daviplata"):
        if digits.startswith("57") and len(digits) == 12:
            digits = digits[2:]
        if not re.fullmatch(r"3[0-9]{9}", digits):
            bad = _("A Nequi or Daviplata account is a Colombian mobile number: 10 digits "
                    "starting with 3.")
        account = digits
    elif rail in ("yape", "plin"):
        if digits.startswith("51") and len(digits) == 11:
            digits = digits[2:]
        if not re.fullmatch(r"9[0-9]{8}", digits):
            bad = _("A Yape or Plin account is a Peruvian mobile number: 9 digits starting with 9.")
        account = digits
    elif rail == "spei":
        if digits.startswith("52") and len(digits) == 12:
            digits = digits[2:]  # a Mexican mobile typed with its country code
        if not re.fullmatch(r"[0-9]+", digits):
            bad = _("SPEI needs an 18-digit CLABE, a 16-digit debit card or a 10-digit phone.")
        elif len(digits) == 18:
            if not clabe_is_valid(digits):
                bad = _("That CLABE's check digit is wrong; check the 18 digits.")
        elif len(digits) == 16:
            if not luhn_is_valid(digits):
                bad = _("That debit card number is not valid.")
        elif len(digits) != 10:
            bad = _("SPEI needs an 18-digit CLABE, a 16-digit debit card or a 10-digit phone.")
        account = digits
    elif rail == "breb":
        # Bre-B keys: national ID, mobile number, e-mail, or an alphanumeric key starting with @.
        if re.fullmatch(r"573[0-9]{9}", digits):
            digits = digits[2:]  # a mobile typed with the country code
        if re.fullmatch(r"3[0-9]{9}", digits) or re.fullmatch(r"[0-9]{6,10}", digits):
            account = digits
        elif re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", account):
            account = account.lower()
        elif re.fullmatch(r"@[A-Za-z0-9]{3,20}", account):
            account = account.upper()
        else:
            bad = _("A Bre-B key is a national ID, a mobile number, an e-mail or a code "
                    "starting with @.")
    elif rail == "bank":
        if not re.fullmatch(r"[0-9]{6,20}", digits):
            bad = _("A bank account number has 6 to 20 digits.")
        account = digits
    else:
        bad = _("Unknown payout method.")
    if bad:
        raise ValidationFailed(bad, code="invalid_payout_account",
                               fields={"payout_account": [bad]})
    return account
