"""What a new password must be (OWASP ASVS 2.1): at least 12 characters, at most 200, and not
one of the common passwords of `common-passwords.txt` (shipped beside this file; compared
lower-cased). Existing passwords are never re-checked: their owners keep logging in."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flask_babel import gettext as _

from ..common.errors import ValidationFailed

MIN_PASSWORD = 12
MAX_PASSWORD = 200
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased (lines starting with # are its header)."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as lines:
        return frozenset(line.rstrip("\n").lower() for line in lines
                         if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    return (password or "").strip().lower() in common_passwords()


def check_new_password(password: str, *, field: str = "password") -> None:
    """Refuses (422, on `field`) a password shorter than 12 characters, longer than 200, or
    in the list of common passwords, whatever its case."""
    if not password or len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            _("Use a password of at least %(n)d characters.", n=MIN_PASSWORD),
            code="password_too_short",
            fields={field: [_("At least %(n)d characters.", n=MIN_PASSWORD)]})
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(_("That password is too long."), code="password_too_long",
                               fields={field: [_("Too long.")]})
    if is_common(password):
        raise ValidationFailed(
            _("That password is one of the most common ones, tried first by anyone guessing. "
              "Choose another."),
            code="password_common", fields={field: [_("Too common: choose another.")]})
