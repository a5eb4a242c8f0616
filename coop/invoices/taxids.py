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


# ---------------------------------------------------------------- a farmer's identity document

# The documents a coop's farmer may be named by on a weekly purchase document, per country
# (Colombia's documento soporte: cédula de ciudadanía; Peru's liquidación de compra: DNI, or
# RUC for a farmer who has one), with the tax authority's code for each (DIAN's "tipo de
# documento" 13; SUNAT's catálogo 06: 1 DNI, 6 RUC).
PERSON_ID_TYPES = {"CO": ("CC",), "PE": ("DNI", "RUC")}
PERSON_SCHEMES = {"CC": "13", "DNI": "1", "RUC": "6"}


def normalise_person_id(kind: str, text: str) -> str | None:
    """A farmer's document number in its normal form, or None when it is not one of `kind`:
    CC 3 to 10 digits (dots and spaces dropped: "1.234.567" -> "1234567"); DNI exactly 8
    digits; RUC 11 digits with SUNAT's check digit (normalise_ruc)."""
    cleaned = re.sub(r"[\s.]", "", text or "")
    if kind == "CC":
        return cleaned if re.fullmatch(r"\d{3,10}", cleaned) else None
    if kind == "DNI":
        return cleaned if re.fullmatch(r"\d{8}", cleaned) else None
    if kind == "RUC":
        return normalise_ruc(cleaned)
    return None
