"""The audit log: who did what to money, when, with the state before and after. Every
money-moving service calls `record` in its own transaction (it adds, never flushes or
commits); the audit page reads `events` and `rows`, the CSV `csv_rows`."""
from __future__ import annotations

import json
from dataclasses import dataclass

from flask_babel import format_decimal, gettext
from sqlalchemy import select

from ..auth.models import User
from ..common.labels import has_label, label
from ..common.money import format_money
from ..common.paging import PER_PAGE, KeysetPage, keyset
from ..common.quantities import grams_to_decimal
from ..extensions import db
from .labels import AUDIT_FIELDS
from .models import AuditEvent

CSV_CHUNK = 1000


def record(coop_id: int, user, action: str, obj_type: str, obj_id,
           before: dict | None = None, after: dict | None = None) -> None:
    """Record a money-moving action for the audit log."""
    db.session.add(AuditEvent(coop_id=coop_id, user_id=getattr(user, "id", None), action=action,
                              object_type=obj_type, object_id=str(obj_id),
                              before_json=json.dumps(before or {}, default=str)[:4000],
                              after_json=json.dumps(after or {}, default=str)[:4000]))


def record_many(coop_id: int, user, events: list[tuple]) -> None:
    """Many events of one action at once, as `record` writes each: (action, obj_type, obj_id,
    before, after) tuples, in a statement or two (coop.common.inserts.insert_many)."""
    if not events:
        return
    from ..common.inserts import insert_many
    from ..common.models import utcnow
    now = utcnow()
    rows = [{"coop_id": coop_id, "user_id": getattr(user, "id", None), "action": action,
             "object_type": obj_type, "object_id": str(obj_id),
             "before_json": json.dumps(before or {}, default=str)[:4000],
             "after_json": json.dumps(after or {}, default=str)[:4000], "created_at": now}
            for action, obj_type, obj_id, before, after in events]
    insert_many(AuditEvent.__table__, rows)


def record_once(coop_id: int, user, action: str, obj_type: str, obj_id,
                before: dict | None = None, after: dict | None = None) -> bool:
    """`record`, unless this action on this object is in the log already (an action that can
    happen once per object, such as reversing a ledger entry: a repeated POST that the
    service answered with the first result writes no second event). True when recorded."""
    db.session.flush()
    seen = db.session.scalar(select(AuditEvent.id).where(
        AuditEvent.coop_id == coop_id, AuditEvent.action == action,
        AuditEvent.object_type == obj_type, AuditEvent.object_id == str(obj_id)).limit(1))
    if seen is not None:
        return False
    record(coop_id, user, action, obj_type, obj_id, before, after)
    return True


def events(coop_id: int | None, limit: int = 200, before_id: int | None = None,
           action: str | None = None) -> list[AuditEvent]:
    """The newest events first; `before_id` pages back (keyset: one query whatever the page).
    `coop_id` None: the platform's own events (its staff made or unmade); `action`: of one
    action only."""
    stmt = select(AuditEvent).where(AuditEvent.coop_id == coop_id if coop_id is not None
                                    else AuditEvent.coop_id.is_(None))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))


def events_page(coop_id: int | None, cursor: str | None, limit: int = PER_PAGE
                ) -> KeysetPage:
    """A page of `events` (newest first, keyset on the id)."""
    stmt = select(AuditEvent).where(AuditEvent.coop_id == coop_id if coop_id is not None
                                    else AuditEvent.coop_id.is_(None))
    return keyset(stmt, [(AuditEvent.id, "desc")], cursor, limit)


def csv_rows(coop_id: int):
    """Every event of the coop, oldest first, raw (the JSON as stored), streamed."""
    yield ["id", "when_utc", "user_id", "user", "action", "object_type", "object_id",
           "before", "after"]
    stmt = (select(AuditEvent, User.name).outerjoin(User, User.id == AuditEvent.user_id)
            .where(AuditEvent.coop_id == coop_id).order_by(AuditEvent.id)
            .execution_options(yield_per=CSV_CHUNK))
    for event, name in db.session.execute(stmt):
        yield [event.id, event.created_at.isoformat(), event.user_id or "", name or "system",
               event.action, event.object_type, event.object_id, event.before_json,
               event.after_json]


# ---------------------------------------------------------------- the audit log, readable

@dataclass
class AuditRow:
    event: AuditEvent
    who: str
    what: str
    details: list  # [(label, text)]


_STATUS_KINDS = ("payout_line_status", "stripe_txn_status", "bank_line_status")


def _audit_value(field: str, value, currency: str, names: dict) -> str | None:
    if value is None or value == "":
        return None
    if field.endswith("_minor") or field == "par":
        return format_money(int(value), currency) if isinstance(value, int) else None
    if field.endswith("_g") and isinstance(value, int):
        return format_decimal(grams_to_decimal(value), format="#,##0.###") + " kg"
    if field.endswith("_bps") and isinstance(value, int):
        return format_decimal(value / 100, format="#,##0.##") + " %"
    if field in ("farmer_id", "member_id"):
        return names.get(value, "")
    if field == "role":
        return label(value, "role")
    if field in ("rail", "via"):
        return label(value, "rail")
    if field == "grade":
        return label(value, "grade")
    if field == "status":
        if has_label(value, "coop_status") and not has_label(value, "payout_line_status"):
            return label(value, "coop_status")
        for kind in _STATUS_KINDS:
            if has_label(value, kind):
                return label(value, kind)
        return label(value, "payout_line_status")
    if field == "closed":
        return gettext("yes") if value else gettext("no")
    if field in ("entry", "reversal"):
        return f"#{value}"
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, (int, float)):
        return format_decimal(value)
    return str(value)


def rows(coop, events: list[AuditEvent]) -> list[AuditRow]:
    """The audit log as a person reads it: who by name, the action in words, the amounts in
    the coop's currency, names instead of ids; only the fields of AUDIT_FIELDS (the CSV
    keeps every field raw)."""
    parsed = []
    user_ids = set()
    for e in events:
        try:
            before, after = json.loads(e.before_json or "{}"), json.loads(e.after_json or "{}")
        except ValueError:
            before, after = {}, {}
        before = before if isinstance(before, dict) else {}
        after = after if isinstance(after, dict) else {}
        parsed.append((e, before, after))
        for data in (before, after):
            for key in ("farmer_id", "member_id"):
                if isinstance(data.get(key), int):
                    user_ids.add(data[key])
    names = dict(db.session.execute(select(User.id, User.name).where(
        User.id.in_(user_ids))).all()) if user_ids else {}
    out = []
    for e, before, after in parsed:
        currency = (after.get("currency") or before.get("currency")
                    or (coop.currency if coop is not None else ""))
        details = []
        for field in AUDIT_FIELDS:
            new = _audit_value(field, after.get(field), currency, names)
            old = _audit_value(field, before.get(field), currency, names)
            if new is None and old is None:
                continue
            if old is not None and new is not None and old != new:
                text = f"{old} → {new}"
            else:
                text = new if new is not None else old
            details.append((str(AUDIT_FIELDS[field]), text))
        what = label(e.action, "audit_action")
        obj = label(e.object_type, "audit_object")
        if e.object_type != "coop":
            what = f"{what} · {obj} #{e.object_id}"
        out.append(AuditRow(event=e, who=e.user.name if e.user else gettext("system"),
                             what=what, details=details))
    return out
