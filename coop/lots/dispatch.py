"""After the lot: its journey to the buyers (issue 13 part 4). The writing domain of
lot_events (coop/lots/dispatch_models.py).

The coop's manager marks the lot ready, dispatched (the carrier, the transport document's
number: a bill of lading, a remesa, and the day) and delivered, in that order; each step once,
never undone. Each of the lot's buyers (its captured orders) confirms receipt once it is on
its way, or reports a problem with a note at any time. Dispatch tells the lot's buyers and
farmers; a problem tells the coop's managers (coop/messages: once per event and person,
however often a request is replayed)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from ..auth.models import Buyer
from ..catalog.models import Crop
from ..common.dates import DateInputError, parse_date
from ..common.errors import Conflict, ValidationFailed
from ..common.forms import has_control
from ..common.labels import label
from ..cooperatives import services as coops
from ..cooperatives.models import Cooperative
from ..extensions import db
from ..messages import services as messages
from ..messages.services import Kg, Label, Notice
from ..pools.models import Order, Pool
from ..pools.terms import local_today
from . import services as lots
from .dispatch_models import STEPS, LotEvent
from .models import Lot, LotSource

MAX_CARRIER = 120
MAX_DOCUMENT = 80
MAX_NOTE = 1000


# ---------------------------------------------------------------- reading a journey

@dataclass(frozen=True)
class Journey:
    """Where a lot is: its steps in order, the manager's steps by kind, each buyer's receipt,
    the problems reported, and the lot's buyers (id, organisation)."""
    lot: Lot
    pool: Pool
    events: tuple[LotEvent, ...]
    buyers: tuple[tuple[int, str], ...]
    steps: dict = field(default_factory=dict)
    receipts: dict = field(default_factory=dict)
    problems: tuple[LotEvent, ...] = ()

    @property
    def stage(self) -> str:
        """forming (no step yet), ready, dispatched or delivered: its last manager step."""
        done = [kind for kind in STEPS if kind in self.steps]
        return done[-1] if done else "forming"

    @property
    def next_step(self) -> str | None:
        """The manager's next step (None once delivered)."""
        return next((kind for kind in STEPS if kind not in self.steps), None)

    @property
    def on_its_way(self) -> bool:
        return "dispatched" in self.steps

    def buyer_name(self, buyer_id: int | None) -> str:
        return dict(self.buyers).get(buyer_id, "")


def lot_buyers(lot: Lot) -> list[tuple[int, str]]:
    """The lot's buyers (those with a captured order in its pool): (buyer id, organisation)."""
    return [(bid, org) for bid, org in db.session.execute(
        select(Buyer.id, Buyer.organisation).where(Buyer.id.in_(
            select(Order.buyer_id).where(Order.pool_id == lot.pool_id,
                                         Order.status == "captured")))
        .order_by(Buyer.organisation, Buyer.id))]


def journey(lot: Lot) -> Journey:
    """The lot's journey in three queries, however many steps and buyers it has."""
    pool = db.session.get(Pool, lot.pool_id)
    rows = tuple(db.session.scalars(select(LotEvent).where(LotEvent.lot_id == lot.id)
                                    .order_by(LotEvent.id)))
    steps = {e.kind: e for e in rows if e.kind in STEPS}
    receipts = {e.buyer_id: e for e in rows if e.kind == "received"}
    problems = tuple(e for e in rows if e.kind == "problem")
    return Journey(lot=lot, pool=pool, events=rows, buyers=tuple(lot_buyers(lot)), steps=steps,
                   receipts=receipts, problems=problems)


# ---------------------------------------------------------------- reading what was typed

def _text(value, name: str, *, limit: int, required: str | None = None) -> str:
    """Typed text, spaces tidied; refused on the field when it is not text, holds control
    characters, is longer than `limit`, or is empty while `required` (the message)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(_("Write it as text."), fields={name: [_("Must be text.")]})
    text = " ".join(value.split()) if "\n" not in value else value.strip()
    if has_control(text):
        raise ValidationFailed(_("Remove the control characters (such as NUL) from this field."),
                               fields={name: [_("Control characters are not allowed.")]})
    if len(text) > limit:
        raise ValidationFailed(_("That is too long: at most %(n)d characters.", n=limit),
                               fields={name: [_("At most %(n)d characters.", n=limit)]})
    if required and not text:
        raise ValidationFailed(required, fields={name: [_("Required.")]})
    return text


def _day(value, name: str, *, required: bool, not_before: date | None, today: date) -> date:
    """A typed day of a step: YYYY-MM-DD, not after today (a step is recorded once it
    happened), not before `not_before` (the lot's forming, the dispatch)."""
    if value in (None, ""):
        if required:
            raise ValidationFailed(_("Give the date of the dispatch."),
                                   fields={name: [_("Required.")]})
        return today
    try:
        day = parse_date(value.strip() if isinstance(value, str) else value)
    except DateInputError as exc:
        raise ValidationFailed(_("Give the date as YYYY-MM-DD."), fields={name: [exc.message]})
    if day > today:
        raise ValidationFailed(_("That date is in the future: record a step once it happened."),
                               fields={name: [_("In the future.")]})
    if not_before is not None and day < not_before:
        raise ValidationFailed(
            _("That date is before %(day)s, when the lot got that far.",
              day=not_before.isoformat()),
            fields={name: [_("Before %(day)s.", day=not_before.isoformat())]})
    return day


# ---------------------------------------------------------------- the manager's steps

@dataclass(frozen=True)
class StepPreview:
    """What a step will record (plain values: the confirmation page binds them)."""
    lot_id: int
    code: str
    kind: str
    carrier: str
    document_number: str
    on_date: str
    note: str
    buyers: int
    farmers: int


def _order_refusal(j: Journey, kind: str) -> None:
    """A manager step out of order or done already: refused, saying where the lot is."""
    if kind in j.steps:
        raise Conflict(_("The lot is already marked “%(step)s”; each step is recorded once.",
                         step=label(kind, "lot_event")), code="step_done")
    if kind != j.next_step:
        raise Conflict(_("The lot is not “%(before)s” yet: mark it “%(before)s” first.",
                         before=label(j.next_step, "lot_event")), code="step_out_of_order")


def _farmer_count(lot: Lot) -> int:
    return int(db.session.scalar(select(func.count(func.distinct(LotSource.farmer_user_id)))
                                 .where(LotSource.lot_id == lot.id)) or 0)


def preview_step(user, lot_id: int, kind: str, *, carrier=None, document_number=None,
                 on_date=None, note=None, today: date | None = None) -> StepPreview:
    """Check a manager's step without recording it: the coop's manager only (others 404 /
    403), the next step in order (else Conflict), and its fields: dispatched needs the
    carrier, the document number and the day (not in the future, not before the lot was
    formed); delivered takes a day (default today, not before the dispatch)."""
    lot = lots.managed_lot(user, lot_id, "manager")
    if kind not in STEPS:
        raise ValidationFailed(_("Unknown step."), fields={"kind": [_("Unknown step.")]})
    j = journey(lot)
    _order_refusal(j, kind)
    today = today or local_today()
    note = _text(note, "note", limit=MAX_NOTE)
    day = None
    if kind == "dispatched":
        carrier = _text(carrier, "carrier", limit=MAX_CARRIER,
                        required=_("Say who carries the lot (the carrier or exporter)."))
        document_number = _text(document_number, "document_number", limit=MAX_DOCUMENT,
                                required=_("Give the transport document's number (bill of "
                                           "lading, remesa, waybill)."))
        formed = local_today(lot.created_at)
        day = _day(on_date, "on_date", required=True, not_before=formed, today=today)
    else:
        carrier = document_number = ""
        if kind == "delivered":
            sent = j.steps["dispatched"].on_date
            day = _day(on_date, "on_date", required=False, not_before=sent, today=today)
    return StepPreview(lot_id=lot.id, code=lot.code, kind=kind, carrier=carrier,
                       document_number=document_number,
                       on_date=day.isoformat() if day else "", note=note,
                       buyers=len(j.buyers), farmers=_farmer_count(lot))


def _lock(lot: Lot) -> None:
    """The lot's row locked until the transaction ends (an UPDATE that changes nothing), so
    two managers marking the same step at once record it once."""
    db.session.execute(update(Lot).where(Lot.id == lot.id).values(number=Lot.number)
                       .execution_options(synchronize_session=False))


def record_step(user, lot_id: int, kind: str, *, carrier=None, document_number=None,
                on_date=None, note=None, today: date | None = None) -> LotEvent:
    """Record the manager's next step (what `preview_step` checks, checked again under the
    lot's lock). Dispatched tells the lot's buyers and farmers. Returns the new step."""
    lot = lots.managed_lot(user, lot_id, "manager")
    _lock(lot)
    preview = preview_step(user, lot_id, kind, carrier=carrier,
                           document_number=document_number, on_date=on_date, note=note,
                           today=today)
    row = LotEvent(lot_id=lot.id, kind=kind, step=kind, carrier=preview.carrier,
                   document_number=preview.document_number,
                   on_date=date.fromisoformat(preview.on_date) if preview.on_date else None,
                   note=preview.note, by_id=user.id)
    db.session.add(row)
    db.session.flush()
    if kind == "dispatched":
        _tell_dispatched(lot, row)
    return row


# ---------------------------------------------------------------- the buyers' steps

@dataclass(frozen=True)
class ReceiptPreview:
    lot_id: int
    code: str
    buyer_id: int
    note: str


def preview_receipt(user, lot_id: int, *, note=None) -> ReceiptPreview:
    """Check a buyer's confirmation of receipt: the lot's buyers only (others 404), once the
    lot is on its way (else Conflict), once per buyer."""
    lot, _orders = lots.bought_lot(user, lot_id)
    j = journey(lot)
    if not j.on_its_way:
        raise Conflict(_("The lot has not been dispatched yet: you can confirm receipt once "
                         "it is on its way."), code="not_dispatched")
    if user.buyer_id in j.receipts:
        raise Conflict(_("You already confirmed receipt of this lot."), code="step_done")
    return ReceiptPreview(lot_id=lot.id, code=lot.code, buyer_id=user.buyer_id,
                          note=_text(note, "note", limit=MAX_NOTE))


def confirm_receipt(user, lot_id: int, *, note=None) -> LotEvent:
    """Record the buyer's receipt (checked as `preview_receipt`, again under the lot's lock)."""
    lot, _orders = lots.bought_lot(user, lot_id)
    _lock(lot)
    preview = preview_receipt(user, lot_id, note=note)
    row = LotEvent(lot_id=lot.id, kind="received", step=f"received:{preview.buyer_id}",
                   buyer_id=preview.buyer_id, note=preview.note, by_id=user.id,
                   on_date=local_today())
    db.session.add(row)
    db.session.flush()
    return row


def report_problem(user, lot_id: int, *, note, key: str) -> LotEvent:
    """A buyer's problem with the lot (late, damaged, short...), with a note (required), at any
    stage; the coop's managers are told. `key` is the form's: the same report sent twice is
    recorded once (the first is returned)."""
    lot, _orders = lots.bought_lot(user, lot_id)
    note = _text(note, "note", limit=MAX_NOTE,
                 required=_("Say what the problem is: the coop reads this note."))
    if not isinstance(key, str) or not key or len(key) > 48 or not key.isprintable():
        raise ValidationFailed(_("This form has expired: reload the page and send it again."),
                               fields={"key": [_("Reload the page.")]})
    _lock(lot)
    step = f"problem:{user.buyer_id}:{key}"[:64]
    existing = db.session.scalar(select(LotEvent).where(LotEvent.lot_id == lot.id,
                                                        LotEvent.step == step))
    if existing is not None:
        return existing
    row = LotEvent(lot_id=lot.id, kind="problem", step=step, buyer_id=user.buyer_id,
                   note=note, by_id=user.id, on_date=local_today())
    db.session.add(row)
    db.session.flush()
    _tell_problem(lot, row)
    return row


# ---------------------------------------------------------------- the farmer's view

@dataclass(frozen=True)
class FarmerJourney:
    journey: Journey
    accepted_g: int          # the farmer's own kilograms in the lot
    deliveries: int


def farmer_journey(user, lot_id: int) -> FarmerJourney:
    """The journey of a lot the farmer delivered into, with their own kilograms (others:
    404)."""
    lot, sources = lots.farmer_sources(user, lot_id)
    return FarmerJourney(journey=journey(lot), accepted_g=sum(s.accepted_g for s in sources),
                         deliveries=len(sources))


# ---------------------------------------------------------------- telling people

def _crop_slug(lot: Lot) -> str:
    return db.session.scalar(select(Crop.slug).where(Crop.id == lot.crop_id))


def _tell_dispatched(lot: Lot, step: LotEvent) -> None:
    """Each of the lot's buyers (every person who placed a captured order) and farmers (their
    own kilograms) is told the lot left: once, whatever is replayed."""
    coop = db.session.get(Cooperative, lot.coop_id)
    crop = Label("crop", _crop_slug(lot))
    buyer_users = db.session.scalars(select(Order.user_id).where(
        Order.pool_id == lot.pool_id, Order.status == "captured").distinct()
        .order_by(Order.user_id))
    farmers = db.session.execute(
        select(LotSource.farmer_user_id, func.sum(LotSource.accepted_g))
        .where(LotSource.lot_id == lot.id).group_by(LotSource.farmer_user_id)
        .order_by(LotSource.farmer_user_id))
    common = {"lot": lot.code, "coop": coop.name, "date": step.on_date, "crop": crop}
    notices = [Notice(uid, "buyer.lot_dispatched", f"lot:{lot.id}:dispatched:buyer",
                      {**common, "carrier": step.carrier, "document": step.document_number,
                       "link": f"/lots/{lot.id}/delivery"}) for uid in buyer_users]
    notices += [Notice(uid, "farmer.lot_dispatched", f"lot:{lot.id}:dispatched:farmer",
                       {**common, "kg": Kg(int(grams)), "link": f"/my/lots/{lot.id}/journey"})
                for uid, grams in farmers]
    messages.notify_many(notices, coop_id=lot.coop_id)


def _tell_problem(lot: Lot, step: LotEvent) -> None:
    """The coop's managers are told a buyer reported a problem (the note's start: an SMS is
    short)."""
    buyer = db.session.scalar(select(Buyer.organisation).where(Buyer.id == step.buyer_id)) or ""
    note = step.note if len(step.note) <= 80 else step.note[:79] + "…"
    notices = [Notice(uid, "manager.lot_problem", f"lot-event:{step.id}:problem",
                      {"lot": lot.code, "buyer": buyer, "note": note,
                       "link": f"/manage/lots/{lot.id}/dispatch"})
               for uid in coops.staff_ids(lot.coop_id, "manager")]
    messages.notify_many(notices, coop_id=lot.coop_id)
