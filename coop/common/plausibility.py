"""Asking again where a typo is likely: a number far from what the coop usually enters.

A service that finds a number implausible raises `Implausible` before writing anything; the
form comes back with the warning on the field and a "yes, this is right" box. The box only
counts for the very numbers it was shown with (`token`), so changing the number after the
warning checks it again. Works without JavaScript: it is a plain second POST."""
from __future__ import annotations

import hashlib

from .errors import DomainError


class Implausible(DomainError):
    status = 422
    code = "implausible"

    def __init__(self, message: str, *, token: str, fields: dict | None = None):
        super().__init__(message, fields=fields)
        self.token = token


def token_for(*values) -> str:
    """A short digest of the numbers a warning was about, for the form's hidden field."""
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def far_from(value: int, usual: int | None, factor: int) -> bool:
    """`value` is more than `factor` times `usual`, or less than `usual` / `factor`."""
    if not usual or usual <= 0 or value <= 0:
        return False
    return value > usual * factor or value * factor < usual


def confirmed(given: str | None, token: str) -> bool:
    return bool(given) and given == token
