"""Tax identifiers on invoices: Colombia's NIT (check digit by DIAN's modulo 11) and Peru's
RUC (11 digits, check digit by SUNAT's modulo 11), with the check digits the coops'
verification uses."""
from __future__ import annotations

import re

from ..cooperatives.verification import nit_check_digit, ruc_check_digit


def normalise_nit(text: str) -> str | None:
    """'900.123.456-8' -> '900123456-8' when its check digit is right, else None."""
    cleaned = re.sub(r"[\s.]", "", text or "")
    match = re.fullmatch(r"(\d{5,15})-?(\d)", cleaned)
    if not match:
        return None
    body, digit = match.groups()
    return f"{body}-{digit}" if nit_check_digit(body) == int(digit) else None


def normalise_ruc(text: str) -> str | None:
    """Eleven digits starting 10, 15, 17 or 20 with SUNAT's check digit, else None."""
    cleaned = re.sub(r"\s", "", text or "")
    if not re.fullmatch(r"(10|15|17|20)\d{9}", cleaned):
        return None
    return cleaned if ruc_check_digit(cleaned[:10]) == int(cleaned[10]) else None


def normalise(country: str, text: str) -> str | None:
    """The coop's tax id in its country's form, or None when it is not a valid one."""
    if country == "CO":
        return normalise_nit(text)
    if country == "PE":
        return normalise_ruc(text)
    cleaned = (text or "").strip()
    return cleaned if 3 <= len(cleaned) <= 20 else None


def scheme(country: str) -> tuple[str, str]:
    """(UBL scheme id, name) of the tax id of a country: NIT 31 in Colombia, RUC 6 in Peru."""
    return {"CO": ("31", "NIT"), "PE": ("6", "RUC")}.get(country, ("VAT", "VAT"))
