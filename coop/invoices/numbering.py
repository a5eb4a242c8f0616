"""Document numbers: contiguous per coop and kind, no gaps, no duplicates under concurrency.

`take(coop_id, kind, n)` moves the kind's counter by `n` in one conditional
UPDATE ... RETURNING, in the caller's transaction, which then inserts the `n` documents:
- PostgreSQL: the UPDATE locks the counter's row until commit; a concurrent issuer waits
  and then sees the moved counter. SQLite: the write lock does the same.
- A rolled-back transaction (a crash after numbering, before commit) gives the numbers back
  with everything else: nothing burns a number.
- A block of N numbers is one statement, so N captures cost one counter UPDATE, not N.
- The UPDATE never passes `range_to`: a block that does not fit is refused whole
  (Conflict `numbering_range_exhausted`) before any document is made."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..common.errors import Conflict
from ..extensions import db
from .models import DocumentCounter

# A coop without invoice settings numbers with these prefixes, from 1, with no upper bound.
DEFAULT_PREFIX = {"invoice": "FV", "credit_note": "NC", "support_doc": "DS"}


def ensure_counter(coop_id: int, kind: str) -> None:
    """The counter row of a coop's kind, made if missing (INSERT ... ON CONFLICT DO NOTHING:
    two first issuers at once make one)."""
    dialect = db.session.connection().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(insert(DocumentCounter).values(
        coop_id=coop_id, kind=kind, prefix=DEFAULT_PREFIX[kind], next_number=1, range_from=1,
        range_to=None, resolution="").on_conflict_do_nothing(
        index_elements=["coop_id", "kind"]))


def take(coop_id: int, kind: str, n: int):
    """Reserve the next `n` numbers of the kind, in the current transaction. Returns the
    counter's row as it was (prefix, first number, range and resolution). Refuses
    (Conflict numbering_range_exhausted) when fewer than `n` are left in the range."""
    if n <= 0:
        raise ValueError("take at least one number")
    c = DocumentCounter.__table__.c
    statement = (update(DocumentCounter.__table__)
                 .where(c.coop_id == coop_id, c.kind == kind,
                        (c.range_to.is_(None)) | (c.next_number + (n - 1) <= c.range_to))
                 .values(next_number=c.next_number + n)
                 .returning(c.prefix, (c.next_number - n).label("first"), c.range_from,
                            c.range_to, c.resolution, c.resolution_on))
    row = db.session.execute(statement).one_or_none()
    if row is None and not db.session.scalar(select(c.id).where(c.coop_id == coop_id,
                                                                 c.kind == kind)):
        ensure_counter(coop_id, kind)  # the coop's first document of the kind
        row = db.session.execute(statement).one_or_none()
    if row is None:
        raise Conflict(_("The authorised numbering range for these documents is used up: "
                         "record the new resolution and range in the invoice settings."),
                       code="numbering_range_exhausted")
    return row


def remaining(coop_id: int, kind: str) -> int | None:
    """Numbers left in the kind's range (None: no upper bound, or no counter yet)."""
    row = db.session.execute(select(DocumentCounter.next_number, DocumentCounter.range_to)
                             .where(DocumentCounter.coop_id == coop_id,
                                    DocumentCounter.kind == kind)).one_or_none()
    if row is None or row.range_to is None:
        return None
    return max(0, row.range_to - row.next_number + 1)


def configure(coop_id: int, kind: str, *, prefix: str, range_from: int, range_to: int | None,
              resolution: str, resolution_on) -> None:
    """A new authorised range (a new resolution): numbering goes on from `range_from`, or
    from where it stands if that is further (a number is never given twice). Refuses a range
    whose end is behind the numbers already given."""
    ensure_counter(coop_id, kind)
    counter = db.session.scalar(select(DocumentCounter).where(
        DocumentCounter.coop_id == coop_id, DocumentCounter.kind == kind).with_for_update())
    given = counter.next_number - 1
    start = max(counter.next_number, range_from)
    if range_to is not None and range_to < start - 1:
        raise Conflict(_("Numbers up to %(n)s were already given: the range must end after "
                         "them.", n=given), code="range_behind",
                       fields={f"{kind}_to": [_("Must end after %(n)s.", n=given)]})
    counter.prefix, counter.range_from, counter.range_to = prefix, range_from, range_to
    counter.resolution, counter.resolution_on = resolution, resolution_on
    counter.next_number = start
