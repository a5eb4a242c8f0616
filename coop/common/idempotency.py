"""Idempotency keys, the one way: a request's fingerprint, the key's shape, a repeat answered
with the first result (or refused when the body differs), and the race of two requests with
the same key settled by the database's unique constraint."""
from __future__ import annotations

import hashlib
import json
from typing import Callable, TypeVar

from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from .errors import ValidationFailed

T = TypeVar("T")


def fingerprint(payload) -> str:
    """A stable hash of a request's meaningful fields (dict keys sorted, values as text)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def check_key(key: str | None, *, field: str | None = None) -> str | None:
    """Refuses (422 invalid_idempotency_key) a key that is not 1 to 255 printable
    characters; `field` names the input to mark (the API's header). None passes."""
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise ValidationFailed(_("Idempotency-Key must be 1 to 255 printable characters."),
                               code="invalid_idempotency_key",
                               fields={field: [_("1 to 255 printable characters.")]}
                               if field else None)
    return key


def replay_or_refuse(earlier: T, same: bool, message: str) -> T:
    """The first result again when the repeat asked the same (`same`); otherwise refuses
    the key (422 idempotency_key_reused) with `message`."""
    if not same:
        raise ValidationFailed(message, code="idempotency_key_reused")
    return earlier


def retry_on_unique_race(key: str | None, attempt: Callable[[], tuple[T, bool]]
                         ) -> tuple[T, bool]:
    """Run `attempt` (returns (result, created)) and commit. When the same key arrived twice
    at once and the other request won the insert (IntegrityError), roll back and run it again:
    now it finds the first result and answers as a repeat (or refuses the key if the bodies
    differ). Without a key, or if the retry would create again, the error stands."""
    try:
        result, created = attempt()
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if key is None:
            raise
        result, created = attempt()
        if created:
            raise
    return result, created


def write_or_find(write: Callable[[], T], find: Callable[[], T | None]
                  ) -> tuple[T | None, T | None]:
    """For a service that commits its own step: run `write` and commit, returning
    (result, None). When the unique key raced (another request with the same key won the
    insert), roll back and return (None, what `find` finds of the winner's row); if `find`
    finds nothing the IntegrityError stands (it was another constraint)."""
    try:
        result = write()
        db.session.commit()
        return result, None
    except IntegrityError:
        db.session.rollback()
        earlier = find()
        if earlier is None:
            raise
        return None, earlier
