"""Pools: opening and reading them, the supply they reserve, the lock on a pool, and the
ledger's steps of an order (hold, release, capture) that placing and closing share."""
from __future__ import annotations

import functools

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.orm import lazyload

from ..catalog import services as catalog
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.locks import supply_lock
from ..common.models import utcnow
from ..common.paging import PER_PAGE, KeysetPage, Page, keyset, paginate
from ..common.quantities import QuantityError, parse_kg
from ..cooperatives import verification
from ..extensions import db
from ..ledger import services as ledger
from ..listings import services as listing_services
from ..pricing import services as pricing
from .models import Allocation, Order, Pool
from . import notices, terms


MAX_OPEN_DAYS = 7          # card holds last 7 days for customer-initiated payments
DELIVERY_DAYS = 7          # a confirmed pool's farmers deliver within a week of its closing


def delivery_due(pool: Pool):
    """The day by which a confirmed pool's farmers deliver."""
    moment = pool.decided_at or pool.closes_at
    return (moment + timedelta(days=DELIVERY_DAYS)).date()


# ---------------------------------------------------------------- supply reserved by pools

def reserved_g(coop_id: int, crop_id: int, grade_id: int, exclude_pool: int | None = None) -> int:
    """Grams open pools may still take from listings: each open pool's max_kg."""
    stmt = select(func.coalesce(func.sum(Pool.max_g), 0)).where(
        Pool.coop_id == coop_id, Pool.crop_id == crop_id, Pool.grade_id == grade_id,
        Pool.status == "open")
    if exclude_pool:
        stmt = stmt.where(Pool.id != exclude_pool)
    return int(db.session.scalar(stmt) or 0)


def register_supply_reservation() -> None:
    """Tell listings how much supply open pools hold (called once by create_app)."""
    listing_services.register_supply_reservation(reserved_g)


def lock_pool(pool_id: int) -> None:
    """Take the write lock on a pool's row until the transaction ends (an UPDATE that
    changes nothing takes it on both databases), so two intakes of one pool never split the
    same deposits."""
    db.session.execute(update(Pool).where(Pool.id == pool_id)
                       .values(allocated_g=Pool.allocated_g)
                       .execution_options(synchronize_session=False))


def record_refunded(order_id: int, amount_minor: int) -> None:
    """Add a refund that Stripe made to what the order has had refunded, in one
    UPDATE (atomic on both databases)."""
    db.session.execute(update(Order).where(Order.id == order_id)
                       .values(amount_refunded_minor=Order.amount_refunded_minor
                               + amount_minor, updated_at=utcnow())
                       .execution_options(synchronize_session=False))


def free_supply_g(coop_id: int, crop_id: int, grade_id: int) -> int:
    """Listed, uncommitted grams that no open pool has reserved yet."""
    return listing_services.uncommitted_supply(coop_id, crop_id, grade_id) \
        - reserved_g(coop_id, crop_id, grade_id)


# ---------------------------------------------------------------- opening

def _kg_text(grams: int) -> str:
    """Kilograms in a message, written the reader's way ("1.200,5" in es_CO, not "1200.500")."""
    from ..common.numbers import KG_FORMAT, format_number
    from ..common.quantities import grams_to_decimal
    return format_number(grams_to_decimal(grams), KG_FORMAT)


def _grams(value, field: str) -> int:
    try:
        return parse_kg(value)
    except QuantityError as exc:
        raise ValidationFailed(str(exc), fields={field: [str(exc)]})


def parse_closes_at(value, now: datetime) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value or "").strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValidationFailed(_("Give the closing time as a date and time."),
                                   fields={"closes_at": [_("Not a date and time.")]})
    if moment.tzinfo is None:
        raise ValidationFailed(_("The closing time needs a time zone offset."),
                               fields={"closes_at": [_("Add an offset such as +00:00.")]})
    if moment <= now:
        raise ValidationFailed(_("The closing time is in the past."),
                               fields={"closes_at": [_("In the past.")]})
    if moment > now + timedelta(days=MAX_OPEN_DAYS):
        raise ValidationFailed(_("A pool closes within 7 days: card holds last 7 days."),
                               fields={"closes_at": [_("More than 7 days ahead.")]})
    return moment


def open_pool(coop, user, *, crop: str, grade: str, min_kg, max_kg, closes_at,
              now: datetime | None = None, delivery_terms=None, delivery_place=None,
              delivery_expected_on=None) -> Pool:
    """Open a pool at the current price, with its delivery terms (coop/pools/terms.py:
    default EXW at the coop's collection point). Refuses max_kg above the free listed supply,
    a closing time past or more than 7 days ahead, min above max, no price set, or terms
    that terms.parse_terms refuses (FCA without a place, an expected date in the past)."""
    verification.require_verified(coop)  # a pending coop sets itself up, opens no pool
    now = now or utcnow()
    crop_row, grade_row = catalog.resolve(crop, grade)
    min_g, max_g = _grams(min_kg, "min_kg"), _grams(max_kg, "max_kg")
    if min_g > max_g:
        raise ValidationFailed(_("The minimum cannot be above the maximum."),
                               fields={"min_kg": [_("Above the maximum.")]})
    moment = parse_closes_at(closes_at, now)
    delivery = terms.parse_terms(coop.id, delivery_terms, delivery_place, delivery_expected_on,
                                 today=terms.local_today(now))
    version = pricing.current(coop.id, crop_row.id, grade_row.id)
    if version is None:
        raise ValidationFailed(_("Set a price for this crop and grade before opening a pool."),
                               code="no_price", fields={"grade": [_("No price set.")]})
    supply_lock(coop.id, crop_row.id, grade_row.id)
    free = free_supply_g(coop.id, crop_row.id, grade_row.id)
    if max_g > free:
        raise ValidationFailed(
            _("Only %(kg)s kg of this crop and grade is listed and not yet in a pool.",
              kg=_kg_text(max(free, 0))),
            code="insufficient_supply", fields={"max_kg": [_("More than the free supply.")]})
    pool = Pool(coop_id=coop.id, crop_id=crop_row.id, grade_id=grade_row.id,
                price_version_id=version.id, currency=version.currency, min_g=min_g, max_g=max_g,
                committed_g=0, closes_at=moment, status="open", created_by_id=user.id)
    terms.apply(pool, delivery)
    db.session.add(pool)
    db.session.flush()
    notices.pool_opened(pool)
    return pool


# ---------------------------------------------------------------- reading

def get_pool(pool_id: int) -> Pool:
    from sqlalchemy.orm.util import identity_key
    pool = db.session.identity_map.get(identity_key(Pool, pool_id))  # as session.get would
    if pool is None and 0 < pool_id <= 2**63 - 1:
        pool = db.session.scalars(_pool_statement(), {"pool_id": pool_id}).unique().first()
    if pool is None:
        raise NotFound(_("No such pool."))
    return pool


@functools.cache
def _pool_statement():
    """A pool with what it joins, built once per process: session.get builds the statement
    and its cache key anew on every call (four joined relationships: the pool page's largest
    cost)."""
    from sqlalchemy import bindparam
    return select(Pool).where(Pool.id == bindparam("pool_id"))


@dataclass(frozen=True)
class PoolFacts:
    """What placing an order needs of its pool, as plain values read in one statement (the
    pool and its price version; none of the objects a Pool joins)."""
    id: int
    coop_id: int
    currency: str
    coop_currency: str
    status: str
    closes_at: datetime
    min_g: int
    buyer_price_per_kg_minor: int  # the highest tier's: what a card hold is sized on
    billing_given: bool = False    # the ordering buyer has given its billing details


@functools.cache
def _facts_statement():
    """Built once per process (its cache key too): every order asks it. It also asks the
    invoices domain's rule whether the ordering buyer has given its billing details (an
    EXISTS: no statement more per order)."""
    from sqlalchemy import bindparam

    from ..cooperatives.models import Cooperative
    from ..invoices import services as invoices
    from ..pricing.models import PriceVersion
    return (select(Pool.id, Pool.coop_id, Pool.currency, Cooperative.currency, Pool.status,
                   Pool.closes_at, Pool.min_g,
                   invoices.billing_given(bindparam("buyer_id")).label("billing_given"),
                   PriceVersion)
            .join(Cooperative, Cooperative.id == Pool.coop_id)
            .join(PriceVersion, PriceVersion.id == Pool.price_version_id)
            .where(Pool.id == bindparam("pool_id")))


def pool_facts(pool_id: int, buyer_id: int | None = None) -> PoolFacts:
    """The pool's facts for an order of buyer `buyer_id` (billing_given: whether that buyer
    has given its billing details; false without one)."""
    row = db.session.execute(_facts_statement(),
                             {"pool_id": pool_id, "buyer_id": buyer_id}).first()
    if row is None:
        raise NotFound(_("No such pool."))
    *values, given, price = row
    return PoolFacts(*values, buyer_price_per_kg_minor=pricing.highest(price).buyer,
                     billing_given=bool(given))


def require_orderable(pool: PoolFacts, buyer_id: int, now: datetime) -> None:
    """What every new order of a pool needs, from its facts (no statement): the pool open
    (409 pool_closed), and the buyer's billing details given (422 billing_details_required,
    the invoices domain's rule: an invoice needs them). Refused before anything is written
    or asked of Stripe."""
    if pool.status != "open" or pool.closes_at <= now:
        raise Conflict(_("This pool is closed."), code="pool_closed")
    from ..invoices import services as invoices
    invoices.require_billing(buyer_id, given=pool.billing_given)


def pools(status: str | None = None, coop_id: int | None = None, limit: int | None = None,
          after_id: int | None = None) -> list[Pool]:
    stmt = select(Pool).order_by(Pool.id.desc())
    if status:
        stmt = stmt.where(Pool.status == status)
    if coop_id:
        stmt = stmt.where(Pool.coop_id == coop_id)
    if after_id:
        stmt = stmt.where(Pool.id < after_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt).unique())


def pools_page(cursor: str | None, *, status: str | None = None, coop_id: int | None = None,
               limit: int = PER_PAGE) -> KeysetPage:
    """A page of pools, newest first (keyset on the id), narrowed by status and coop."""
    stmt = select(Pool)
    if status:
        stmt = stmt.where(Pool.status == status)
    if coop_id:
        stmt = stmt.where(Pool.coop_id == coop_id)
    return keyset(stmt, [(Pool.id, "desc")], cursor, limit)


def buyer_orders_page(user, cursor: str | None, *, status: str | None = None,
                      limit: int = PER_PAGE) -> KeysetPage:
    """A page of the buyer's orders, newest first (keyset on the id), narrowed by status."""
    stmt = select(Order).where(Order.buyer_id == (user.buyer_id or -1))
    if status:
        stmt = stmt.where(Order.status == status)
    return keyset(stmt, [(Order.id, "desc")], cursor, limit)


def pool_orders(pool_id: int, limit: int | None = None) -> list[Order]:
    """A pool's orders, oldest first (`limit`: only the first so many)."""
    stmt = select(Order).where(Order.pool_id == pool_id).order_by(Order.id)
    if limit:  # a page's rows: their columns only, not the pool and all it joins, per row
        stmt = stmt.options(lazyload("*")).limit(limit)
    return list(db.session.scalars(stmt).unique())


def pool_orders_page(pool_id: int, number: int) -> Page:
    """One page of a pool's orders, oldest first."""
    return paginate(select(Order).where(Order.pool_id == pool_id).options(lazyload("*"))
                    .order_by(Order.id), number)


def pool_allocations(pool_id: int, limit: int | None = None) -> list[Allocation]:
    stmt = select(Allocation).where(Allocation.pool_id == pool_id).order_by(Allocation.id)
    if limit:
        stmt = stmt.options(lazyload("*")).limit(limit)
    return list(db.session.scalars(stmt).unique())


@dataclass(frozen=True)
class PoolTotals:
    orders: int
    captured_minor: int
    refunded_minor: int
    allocations: int
    allocated_g: int
    expected_minor: int


def pool_totals(pool_id: int) -> PoolTotals:
    """How many orders and allocations a pool has and what they add up to: one SELECT."""
    def of(model, column):
        return select(column).where(model.pool_id == pool_id).scalar_subquery()

    row = db.session.execute(select(
        of(Order, func.count(Order.id)),
        of(Order, func.coalesce(func.sum(Order.amount_captured_minor), 0)),
        of(Order, func.coalesce(func.sum(Order.amount_refunded_minor), 0)),
        of(Allocation, func.count(Allocation.id)),
        of(Allocation, func.coalesce(func.sum(Allocation.quantity_g), 0)),
        of(Allocation, func.coalesce(func.sum(Allocation.farmer_amount_minor), 0)))).one()
    return PoolTotals(*(int(v or 0) for v in row))


def buyer_orders(user, limit: int | None = None, after_id: int | None = None) -> list[Order]:
    if not user.buyer_id:
        return []
    stmt = select(Order).where(Order.buyer_id == user.buyer_id).order_by(Order.id.desc())
    if after_id:
        stmt = stmt.where(Order.id < after_id)
    if limit:
        stmt = stmt.limit(limit)
    return list(db.session.scalars(stmt).unique())


def buyer_pool_orders(user, pool_id: int) -> list[Order]:
    """The buyer's own orders in one pool, newest first (none for anyone else)."""
    if not getattr(user, "buyer_id", None):
        return []
    return list(db.session.scalars(select(Order).where(Order.buyer_id == user.buyer_id,
                                                       Order.pool_id == pool_id)
                                   .order_by(Order.id.desc())).unique())


def farmer_allocations(user) -> list[Allocation]:
    return list(db.session.scalars(select(Allocation).where(Allocation.farmer_user_id == user.id)
                                   .order_by(Allocation.id.desc())).unique())


def own_order(user, order_id: int) -> Order:
    order = db.session.get(Order, order_id)
    if order is None or not user.buyer_id or order.buyer_id != user.buyer_id:
        raise NotFound(_("No such order."))
    return order


def current_price(pool: Pool) -> pricing.Breakdown:
    return pricing.breakdown(pool.price, pool.committed_g)


# ---------------------------------------------------------------- the ledger side of holds

def _ledger_hold(order: Order) -> None:
    """The authorised amount as a pending entry (it moves no posted balance)."""
    ledger.hold(order.pool.coop, key=f"order:{order.id}:hold:{order.payment_intent_id}",
                amount=order.amount_authorized_minor, source=("order", order.id),
                memo=f"card hold, order {order.id}")


def _ledger_release(order: Order) -> None:
    for pending in ledger.pending_for(order.pool.coop, ("order", order.id)):
        ledger.settle_pending(order.pool.coop, pending, outcome="voided")


def _ledger_capture(order: Order, amount: int, charge_id: str | None) -> None:
    """Captured money sits at Stripe (clearing) and is owed to the buyer until the goods
    are received (deposits). The hold's pending entry is marked posted."""
    coop = order.pool.coop
    for pending in ledger.pending_for(coop, ("order", order.id)):
        ledger.settle_pending(coop, pending, outcome="posted")
    # Its invoice, as settlement issues them (a capture the webhook told first), numbered
    # after the ledger's entry, as settlement does: the accounts' rows, then the
    # counter's, locked in the same order everywhere (no deadlock with a settling chunk).
    from ..invoices import services as invoices
    invoice = invoices.prepare_invoices(coop, order.pool, [invoices.Capture(
        order_id=order.id, buyer_id=order.buyer_id, quantity_g=order.quantity_g,
        amount_minor=amount, charge_id=charge_id)])
    invoice_id = invoice.ids[order.id]
    ledger.post(coop, key=f"order:{order.id}:capture", kind="capture",
                source=("order", order.id), external_ref=charge_id, document=invoice_id,
                memo=f"card capture, order {order.id}",
                lines=[ledger.debit("stripe_clearing", amount),
                       ledger.credit("buyer_deposits", amount)])
    invoice.issue()


@functools.cache
def _reserve_statement():
    """Built once per process (its cache key too): every order runs it."""
    from sqlalchemy import BigInteger, bindparam
    grams = bindparam("b_grams", type_=BigInteger)
    c = Pool.__table__.c  # Core: no ORM layer per execution, the cache key kept
    return (update(Pool.__table__).where(c.id == bindparam("b_pool_id"), c.status == "open",
                                         c.committed_g + grams <= c.max_g)
            .values(committed_g=c.committed_g + grams)
            .returning(c.committed_g))


def _reserve(pool_id: int, grams: int) -> int:
    """Add grams to a pool's committed total in one conditional UPDATE: atomic on both
    databases, so no number of concurrent buyers can pass max_kg. Returns the new total."""
    committed = db.session.execute(_reserve_statement(),
                                   {"b_pool_id": pool_id, "b_grams": grams}).scalar()
    if committed is not None:
        return committed
    pool = db.session.get(Pool, pool_id)
    db.session.refresh(pool)
    if pool.status != "open":
        raise Conflict(_("This pool is closed."), code="pool_closed")
    raise Conflict(_("Only %(kg)s kg is left in this pool.",
                     kg=_kg_text(pool.max_g - pool.committed_g)), code="pool_full",
                   fields={"quantity_kg": [_("More than is left.")]})


def _release(pool_id: int, grams: int) -> bool:
    result = db.session.execute(
        update(Pool).where(Pool.id == pool_id, Pool.status == "open",
                           Pool.committed_g >= grams)
        .values(committed_g=Pool.committed_g - grams)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1
