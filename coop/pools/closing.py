"""Closing a pool: decide (confirmed or failed) and allocate to farmers pro rata in the request,
then settle (capture or cancel every hold) on the queue (coop/pools/settlement.py); close the
due pools, cancel a pool; and the previews of closing and cancelling.

Commit points: deciding is one transaction with the settlement's jobs in it; each chunk job
then runs as short committed steps, so that a crash and a rerun finish the work without
capturing or allocating twice."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import case, select, update

from ..common.apportion import largest_remainder
from ..common.errors import Conflict, DomainError
from ..common.models import utcnow
from ..common.statuses import (LIVE_ORDER_STATUSES, SUPPLY_LISTING_STATUSES,
                               UNSETTLED_ORDER_STATUSES)
from ..common.web import commit_step
from ..extensions import db
from ..invoices import services as invoices
from ..listings import services as listing_services
from ..listings.models import Listing
from ..messages import services as messages
from ..payments import gateway
from ..pricing import services as pricing
from .models import Allocation, Order, Pool
from . import settlement
from .core import delivery_due, get_pool
from .orders import _outcome_unknown
from .resolver import _in_flight, resolve_holds


def _decide(pool_id: int, now: datetime, on_demand: bool) -> bool:
    """Closing's one transaction, with the pool row locked: confirm and allocate, or fail;
    and the jobs that settle its holds (coop/pools/settlement.py). Does nothing (False) if
    the pool is already decided."""
    pool = db.session.scalar(select(Pool).where(Pool.id == pool_id).with_for_update(of=Pool))
    if pool.status != "open":
        db.session.rollback()
        return False
    if not on_demand and pool.closes_at > now:
        db.session.rollback()
        raise Conflict(_("This pool is not due to close yet."), code="not_due")
    if _in_flight(pool):
        db.session.rollback()
        raise Conflict(_("Orders are being placed right now; try closing again in a minute."),
                       code="orders_in_flight")
    # Cards still waiting for the buyer to confirm them hold nothing: they leave the pool
    # before it is decided (their PaymentIntents are cancelled after the commit).
    from .cards import drop_authorizing
    dropped = drop_authorizing(pool)
    pool.decided_at = now
    if pool.committed_g >= pool.min_g and pool.committed_g > 0:
        try:  # every capture gets a numbered invoice: refused before the range runs out
            invoices.check_room(pool.coop_id, "invoice", len(settlement.held_ids(pool.id)))
        except DomainError:
            db.session.rollback()
            raise
        price = pricing.breakdown(pool.price, pool.committed_g)
        pool.final_price_per_kg_minor = price.buyer
        # One statement for every order: the tier price x quantity, rounded half up as
        # pricing.amount_for does (integer division on both databases), never above the hold.
        due = (Order.quantity_g * price.buyer + 500) // 1000
        db.session.execute(
            update(Order).where(Order.pool_id == pool.id, Order.status == "authorized")
            .values(amount_due_minor=case((due < Order.amount_authorized_minor, due),
                                          else_=Order.amount_authorized_minor))
            .execution_options(synchronize_session=False))
        pool.allocated_g = _allocate(pool, price.farmer)
        pool.status = "confirmed"
    else:
        pool.status = "failed"
    settlement.begin(pool, now)
    commit_step()
    for intent_id in dropped:
        gateway._cancel_quietly(intent_id)
    return True


def _split_over_listings(grams: int, listings) -> dict[int, int]:
    """Grams per listing id in proportion to what each has uncommitted (largest remainder,
    so no listing gets more than it has). Refuses (ValueError) more than they hold."""
    weights = [(row.id, row.quantity_g - row.committed_g) for row in listings]
    if grams > sum(w for _, w in weights):
        raise ValueError("cannot allocate more than the listings hold")
    return largest_remainder(grams, weights)


def _supply_listings(pool: Pool, *, lock: bool) -> list:
    """The listings a pool's grams are split over, oldest first (row-locked when allocating)."""
    stmt = (select(Listing.id, Listing.farmer_user_id, Listing.quantity_g, Listing.committed_g,
                   Listing.collection_point)
            .where(Listing.coop_id == pool.coop_id, Listing.crop_id == pool.crop_id,
                   Listing.grade_id == pool.grade_id,
                   Listing.status.in_(SUPPLY_LISTING_STATUSES),
                   Listing.quantity_g > Listing.committed_g)
            .order_by(Listing.id))
    return list(db.session.execute(stmt.with_for_update() if lock else stmt))


def _allocate(pool: Pool, farmer_price: int) -> int:
    listings = _supply_listings(pool, lock=True)
    parts = _split_over_listings(pool.committed_g, listings)
    by_id = {row.id: row for row in listings}
    allocations, listing_updates = [], []
    for listing_id, grams in parts.items():
        row = by_id[listing_id]
        allocations.append({
            "pool_id": pool.id, "listing_id": listing_id, "farmer_user_id": row.farmer_user_id,
            "quantity_g": grams, "farmer_price_per_kg_minor": farmer_price,
            "farmer_amount_minor": pricing.amount_for(farmer_price, grams),
            "created_at": utcnow()})
        listing_updates.append((listing_id, row.committed_g + grams, row.quantity_g))
    if allocations:
        db.session.execute(Allocation.__table__.insert(), allocations)
        listing_services.commit_allocations(listing_updates)
        _tell_farmers_sold(pool, farmer_price, allocations, by_id)
    return sum(parts.values())


def _tell_farmers_sold(pool: Pool, farmer_price: int, allocations: list[dict],
                       by_id: dict) -> None:
    """One message per farmer of the pool: what they sold over all their listings, where and
    by when to deliver it, at what price per kg (messages.notify_many: a few statements for
    all of them)."""
    sold: dict[int, int] = {}
    points: dict[int, list[str]] = {}
    for row in allocations:
        farmer = row["farmer_user_id"]
        sold[farmer] = sold.get(farmer, 0) + row["quantity_g"]
        point = by_id[row["listing_id"]].collection_point
        if point and point not in points.setdefault(farmer, []):
            points[farmer].append(point)
    by = delivery_due(pool)
    crop = messages.Label("crop", pool.crop.slug)
    price = messages.Money(farmer_price, pool.currency)
    messages.notify_many([  # thousands of farmers: one pass, not a notify each
        messages.Notice(farmer, "farmer.harvest_sold", f"pool:{pool.id}:sold:{farmer}", {
            "kg": messages.Kg(grams), "crop": crop,
            "point": ", ".join(points.get(farmer, ())) or pool.coop.name,
            "by": by, "price": price, "pool": f"#{pool.id}", "coop": pool.coop.name,
            "link": "/my/deliveries"})
        for farmer, grams in sold.items()], coop_id=pool.coop_id)


def close_pool(pool_id: int, *, now: datetime | None = None, on_demand: bool = True) -> Pool:
    """Close a pool: at or after its closing time, or on demand by its manager. Confirms it
    (committed >= min_kg) with its allocation, or fails it, in one transaction that also
    writes the jobs capturing or cancelling every hold (the queue's workers settle it:
    `settlement.progress` tells how far). Closing again, or after a crash, changes nothing
    decided and only finishes a settlement no job is left to finish."""
    now = now or utcnow()
    get_pool(pool_id)
    commit_step()
    try:
        if get_pool(pool_id).status == "open":
            # Orders a crash or an outage left unsettled are settled first (resolve_holds).
            resolve_holds(pool_id=pool_id, now=now)
        decided = _decide(pool_id, now, on_demand)
    except gateway.PaymentError as exc:
        if not _outcome_unknown(exc) and exc.code not in ("rate_limited",
                                                          "gateway_not_configured"):
            raise
        db.session.rollback()
        raise DomainError(_("The card network cannot be reached right now. What was done is "
                            "kept; close the pool again in a moment."),
                          code="payment_unavailable", status=503)
    if not decided:
        settlement.resume(pool_id, now)
    db.session.expire_all()
    return get_pool(pool_id)


def cancel_pool(pool_id: int, now: datetime | None = None) -> Pool:
    """A manager calls off an open pool: every hold is released (by the settlement's jobs),
    nobody pays."""
    now = now or utcnow()
    pool = db.session.scalar(select(Pool).where(Pool.id == pool_id).with_for_update(of=Pool))
    if pool.status != "open":
        db.session.rollback()
        if pool.status == "cancelled" and pool.settled_at is None:
            settlement.resume(pool_id, now)
            return get_pool(pool_id)
        raise Conflict(_("Only an open pool can be cancelled."), code="pool_closed")
    pool.status = "cancelled"
    pool.decided_at = now
    settlement.begin(pool, now)
    commit_step()
    return get_pool(pool_id)


def close_due(now: datetime | None = None) -> list[tuple[int, str]]:
    """Close every pool past its closing time, and finish any close a crash interrupted.
    Returns (pool id, status or error code) for each pool it touched."""
    now = now or utcnow()
    due = list(db.session.scalars(select(Pool.id).where(
        ((Pool.status == "open") & (Pool.closes_at <= now))
        | ((Pool.status != "open") & Pool.settled_at.is_(None))).order_by(Pool.id)))
    commit_step()
    done = []
    for pool_id in due:
        try:
            pool = close_pool(pool_id, now=now, on_demand=False)
            done.append((pool_id, pool.status))
        except (DomainError, gateway.PaymentError) as exc:
            db.session.rollback()
            done.append((pool_id, getattr(exc, "code", "error")))
    return done


@dataclass(frozen=True)
class BuyerEffect:
    order_id: int
    buyer: str
    grams: int
    held_minor: int
    capture_minor: int           # taken from the card
    release_minor: int           # held and not taken


@dataclass(frozen=True)
class FarmerEffect:
    farmer: str
    grams: int
    amount_minor: int            # at the pool's farmer price, before intake


@dataclass(frozen=True)
class ClosePreview:
    pool_id: int
    currency: str
    outcome: str                 # confirmed, failed or cancelled
    committed_g: int
    min_g: int
    price_per_kg_minor: int | None
    buyers: tuple = ()
    farmers: tuple = ()
    in_flight: int = 0           # orders being placed right now: closing must wait

    @property
    def capture_minor(self) -> int:
        return sum(b.capture_minor for b in self.buyers)

    @property
    def release_minor(self) -> int:
        return sum(b.release_minor for b in self.buyers)

    @property
    def farmer_minor(self) -> int:
        return sum(f.amount_minor for f in self.farmers)


def _buyer_names(ids) -> dict[int, str]:
    from ..auth.models import Buyer
    ids = set(ids)
    return dict(db.session.execute(select(Buyer.id, Buyer.organisation)
                                   .where(Buyer.id.in_(ids))).all()) if ids else {}


def preview_close(pool_id: int, now: datetime | None = None) -> ClosePreview:
    """What close_pool would do now (on demand): confirm it, capture each buyer's amount at
    the tier price and allocate the kilograms to farmers pro rata, or fail it and release
    every hold; for a pool decided but not settled, what finishing the close would do."""
    now = now or utcnow()
    pool = get_pool(pool_id)
    if pool.status != "open" and pool.settled_at is not None:
        raise Conflict(_("This pool is closed already."), code="pool_closed")
    orders = list(db.session.execute(
        select(Order.id, Order.buyer_id, Order.quantity_g, Order.status, Order.created_at,
               Order.amount_authorized_minor, Order.amount_due_minor)
        .where(Order.pool_id == pool.id, Order.status.in_(LIVE_ORDER_STATUSES))
        .order_by(Order.id)))
    names = _buyer_names(o.buyer_id for o in orders)
    held = [o for o in orders if o.status == "authorized"]
    # Closing settles unknown and abandoned orders first; the preview cannot know how.
    in_flight = sum(1 for o in orders if o.status in UNSETTLED_ORDER_STATUSES)
    committed = pool.committed_g
    if pool.status == "open":
        outcome = "confirmed" if committed >= pool.min_g and committed > 0 else "failed"
        price = pricing.breakdown(pool.price, committed) if outcome == "confirmed" else None
        buyer_price = price.buyer if price else None
    else:
        outcome, buyer_price, price = pool.status, pool.final_price_per_kg_minor, None
    buyers = []
    for o in held:
        held_minor = o.amount_authorized_minor or 0
        if outcome != "confirmed":
            capture = 0
        elif pool.status == "open":
            capture = min(pricing.amount_for(buyer_price, o.quantity_g), held_minor)
        else:
            capture = o.amount_due_minor or 0
        buyers.append(BuyerEffect(order_id=o.id, buyer=names.get(o.buyer_id, ""),
                                  grams=o.quantity_g, held_minor=held_minor,
                                  capture_minor=capture, release_minor=held_minor - capture))
    farmers = []
    if outcome == "confirmed":
        farmers = (_preview_allocation(pool, committed, price.farmer) if pool.status == "open"
                   else _farmer_effects(pool))
    return ClosePreview(pool_id=pool.id, currency=pool.currency, outcome=outcome,
                        committed_g=committed, min_g=pool.min_g, price_per_kg_minor=buyer_price,
                        buyers=tuple(buyers), farmers=tuple(farmers), in_flight=in_flight)


def _farmer_names(ids) -> dict[int, str]:
    from ..auth.models import User
    ids = set(ids)
    return dict(db.session.execute(select(User.id, User.name)
                                   .where(User.id.in_(ids))).all()) if ids else {}


def _merge_farmers(rows) -> list[FarmerEffect]:
    """(farmer id, grams, amount) rows -> one effect per farmer, in first-seen order."""
    totals: dict[int, list[int]] = {}
    for uid, grams, amount in rows:
        got = totals.setdefault(uid, [0, 0])
        got[0] += grams
        got[1] += amount
    names = _farmer_names(totals)
    return [FarmerEffect(farmer=names.get(uid, ""), grams=g, amount_minor=a)
            for uid, (g, a) in totals.items()]


def _preview_allocation(pool: Pool, committed_g: int, farmer_price: int) -> list[FarmerEffect]:
    listings = _supply_listings(pool, lock=False)
    parts = _split_over_listings(committed_g, listings)
    owner = {r.id: r.farmer_user_id for r in listings}
    return _merge_farmers((owner[lid], grams, pricing.amount_for(farmer_price, grams))
                          for lid, grams in parts.items() if grams)


def _farmer_effects(pool: Pool) -> list[FarmerEffect]:
    return _merge_farmers(db.session.execute(
        select(Allocation.farmer_user_id, Allocation.quantity_g, Allocation.farmer_amount_minor)
        .where(Allocation.pool_id == pool.id).order_by(Allocation.id)))


def preview_cancel(pool_id: int) -> ClosePreview:
    """What cancel_pool would do: release every hold; nobody pays, no farmer sells."""
    pool = get_pool(pool_id)
    if pool.status != "open" and not (pool.status == "cancelled" and pool.settled_at is None):
        raise Conflict(_("Only an open pool can be cancelled."), code="pool_closed")
    held = list(db.session.execute(
        select(Order.id, Order.buyer_id, Order.quantity_g, Order.amount_authorized_minor)
        .where(Order.pool_id == pool.id, Order.status == "authorized").order_by(Order.id)))
    names = _buyer_names(o.buyer_id for o in held)
    return ClosePreview(
        pool_id=pool.id, currency=pool.currency, outcome="cancelled",
        committed_g=pool.committed_g, min_g=pool.min_g, price_per_kg_minor=None,
        buyers=tuple(BuyerEffect(order_id=o.id, buyer=names.get(o.buyer_id, ""),
                                 grams=o.quantity_g, held_minor=o.amount_authorized_minor or 0,
                                 capture_minor=0, release_minor=o.amount_authorized_minor or 0)
                     for o in held))
