"""Intake at the collection point, the shortfall refunds it causes, and the settlement
statement (liquidación) of each delivery.

What an intake decides (all in integer minor units, at the pool's final buyer price P):
- accepted = min(received, allocated); the excess is recorded as not sold (the farmer takes
  it back); shortfall = allocated - accepted.
- The farmer is owed the farmer price of the grade received x accepted kg: the pool's price
  version when the grade is the pool's, else the coop's current version for that grade
  (none: 422 no_price).
- A lower grade (lower farmer price) gives the buyers the farmer-price difference back, like
  a shortfall; commission and premium per kg stay as sold. A higher grade is paid to the
  farmer out of the coop's commission on this delivery; beyond it, out of the coop's funds
  (operating_costs). Buyers are never charged more than was captured.
- One entry `intake:{id}`: Dr buyer_deposits (accepted x P less the downgrade), Dr
  operating_costs (the coop's cost, if any) / Cr farmer_payable:<farmer>, Cr premium_fund
  (premium x accepted), Cr commission_income (the rest: rounding stays with the coop). The
  last intake of a pool takes what rounding left in the pool's deposits, so that every pool
  ends with nothing owed to its buyers but its refunds.
- Refund = allocated x P - (accepted x P - downgrade), split over the pool's captured orders
  pro rata to quantity (largest remainder, minor units), never above what an order has left
  (captured - refunds already assigned).
- Advance: the coop's percentage of the farmer amount, paid in cash at the collection
  point (`advance:{id}`: Dr farmer_payable / Cr cash), netted at settlement.
- Share withholding: see coop.shares.services.withhold (capped at what the advance leaves).

Commit points: recording is a Stripe saga like closing a pool (see coop.pools.closing).
Step 1 commits the intake, its entries and each refund as `pending`; step 2 calls Stripe for
each refund with no transaction open, then marks it succeeded with its own ledger entry
(`refund:{id}`: Dr buyer_deposits / Cr stripe_clearing). A rerun (the same request again,
or `flask intake finish-refunds`) finishes pending refunds; a refund Stripe made before a
crash is found by its idempotency key in the refund's metadata and never made twice."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, lazyload

from ..audit import services as audit
from ..catalog import services as catalog
from ..common.access import require_member, roles_in
from ..common.apportion import largest_remainder
from ..common.errors import Conflict, NotFound, ValidationFailed
from ..common.idempotency import fingerprint as request_fingerprint, replay_or_refuse, write_or_find
from ..common.models import utcnow
from ..common.paging import PER_PAGE, KeysetPage, Page, keyset, paginate
from ..common.quantities import QuantityError, parse_kg
from ..common.statuses import PayoutLineStatus
from ..cooperatives import finance
from ..common.web import commit_step
from ..extensions import db
from ..invoices import services as invoices
from ..ledger import services as ledger
from ..listings.models import Listing
from ..lots import services as lots
from ..messages import services as messages
from ..payments import gateway
from ..pools import services as pool_services
from ..pools.models import Allocation, Order, Pool
from ..pricing import services as pricing
from ..shares import services as shares
from ..messages.services import Label, Money
from .models import Intake, Refund

REFUND_LEASE = timedelta(minutes=2)
TRANSIENT_CODES = {"gateway_unavailable", "gateway_error", "rate_limited", "lock_timeout",
                   "gateway_not_configured"}


# ---------------------------------------------------------------- reading

def get_allocation(allocation_id: int) -> Allocation:
    allocation = db.session.get(Allocation, allocation_id)
    if allocation is None:
        raise NotFound(_("No such allocation."))
    return allocation


def managed_allocation(user, allocation_id: int) -> Allocation:
    """The allocation if the user manages its coop: 404 for outsiders, 403 for its other
    members."""
    allocation = get_allocation(allocation_id)
    require_member(allocation.pool.coop_id, "manager", user=user)
    return allocation


def intake_for(allocation_id: int) -> Intake | None:
    return db.session.scalar(select(Intake).where(Intake.allocation_id == allocation_id))


def pool_intakes(pool_id: int, allocation_ids=None) -> dict[int, Intake]:
    """A pool's intakes by allocation (`allocation_ids`: only those allocations')."""
    stmt = select(Intake).where(Intake.pool_id == pool_id)
    if allocation_ids is not None:  # a page's rows: their grade, nothing else joined
        stmt = stmt.where(Intake.allocation_id.in_(list(allocation_ids) or [0])).options(
            lazyload("*"), joinedload(Intake.grade).lazyload("*"))
    return {i.allocation_id: i for i in db.session.scalars(stmt).unique()}


def pool_intake_totals(pool_id: int) -> dict[str, int]:
    """The count and sums of a pool's intakes, in one query."""
    row = db.session.execute(select(
        func.count(Intake.id), func.coalesce(func.sum(Intake.farmer_amount_minor), 0),
        func.coalesce(func.sum(Intake.advance_minor), 0),
        func.coalesce(func.sum(Intake.share_withholding_minor), 0))
        .where(Intake.pool_id == pool_id)).one()
    count, owed, advance, withheld = (int(v or 0) for v in row)
    return {"count": count, "farmer_amount_minor": owed, "advance_minor": advance,
            "share_withholding_minor": withheld, "net_minor": owed - advance - withheld}


def pool_deliveries(pool_id: int, *, pending_only: bool = False, point: str = "",
                    page: int = 1, per_page: int = PER_PAGE) -> Page:
    """A page of a pool's allocations (all, or only those not yet received; at one collection
    point, the listing's, or at all), each with its intake. page.extra has, for the same
    collection point, what is left to receive: `pending` allocations and `pending_g` grams of
    `allocations`; and `points`, the pool's collection points. Five queries whatever the
    number of farmers."""
    received = select(Intake.id).where(Intake.allocation_id == Allocation.id).exists()
    where = [Allocation.pool_id == pool_id]
    if point:
        where.append(Allocation.listing_id.in_(
            select(Listing.id).where(Listing.collection_point == point)))
    stmt = select(Allocation).where(*where)
    if pending_only:
        stmt = stmt.where(~received)
    found = paginate(stmt.order_by(Allocation.id), page, per_page)
    pending = ~received
    total, left, left_g = db.session.execute(
        select(func.count(Allocation.id),
               func.coalesce(func.sum(case((pending, 1), else_=0)), 0),
               func.coalesce(func.sum(case((pending, Allocation.quantity_g), else_=0)), 0))
        .where(*where)).one()
    points = list(db.session.scalars(
        select(Listing.collection_point).join(Allocation, Allocation.listing_id == Listing.id)
        .where(Allocation.pool_id == pool_id, Listing.collection_point != "")
        .distinct().order_by(Listing.collection_point)))
    ids = [a.id for a in found.items]
    intakes = {i.allocation_id: i for i in db.session.scalars(
        select(Intake).where(Intake.allocation_id.in_(ids))).unique()} if ids else {}
    found.extra = {"allocations": int(total), "pending": int(left), "pending_g": int(left_g),
                   "intakes": intakes, "points": points}
    return found


def refunds_of(intake: Intake) -> list[Refund]:
    return list(db.session.scalars(select(Refund).where(Refund.intake_id == intake.id)
                                   .order_by(Refund.id)).unique())


def farmer_statements(user) -> list[Intake]:
    return list(db.session.scalars(select(Intake).where(Intake.farmer_user_id == user.id)
                                   .order_by(Intake.id.desc())).unique())


def farmer_statements_page(user, cursor: str | None, limit: int = PER_PAGE) -> KeysetPage:
    """A page of the farmer's statements, newest first (keyset on the id)."""
    return keyset(select(Intake).where(Intake.farmer_user_id == user.id),
                  [(Intake.id, "desc")], cursor, limit)


def coop_statements(coop_id: int, limit: int = 500, before_id: int | None = None,
                    q: str = "") -> list[Intake]:
    """The newest deliveries first; `before_id` pages back (keyset); `q`: the farmer's
    name or member number (part of it), or the delivery's or pool's number."""
    stmt = select(Intake).where(Intake.coop_id == coop_id)
    q = (q or "").strip()[:80]
    if q:
        from ..auth.models import User
        from ..cooperatives.models import FarmerProfile
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        found = [Intake.farmer.has(User.name.ilike(like, escape="\\")),
                 Intake.farmer_user_id.in_(select(FarmerProfile.user_id).where(
                     FarmerProfile.coop_id == coop_id,
                     FarmerProfile.member_number.ilike(like, escape="\\")))]
        digits = q.lstrip("#")
        if digits.isascii() and digits.isdigit() and len(digits) < 10:
            found += [Intake.id == int(digits), Intake.pool_id == int(digits)]
        stmt = stmt.where(or_(*found))
    if before_id:
        stmt = stmt.where(Intake.id < before_id)
    return list(db.session.scalars(stmt.order_by(Intake.id.desc()).limit(limit)).unique())


def statement(user, intake_id: int) -> Intake:
    """A delivery's statement: for its farmer and the coop's managers and treasurers only;
    anyone else gets 404 (nobody learns that it exists)."""
    intake = db.session.get(Intake, intake_id)
    if intake is None:
        raise NotFound(_("No such statement."))
    if intake.farmer_user_id == getattr(user, "id", None):
        return intake
    if roles_in(user, intake.coop_id) & {"manager", "treasurer"}:
        return intake
    raise NotFound(_("No such statement."))


# ---------------------------------------------------------------- recording

def _parse(pool: Pool, received_kg, grade, crop, not_delivered: bool):
    if not_delivered:
        if received_kg not in (None, "", 0, "0"):
            raise ValidationFailed(_("Nothing delivered: leave the kilograms empty."),
                                   fields={"received_kg": [_("Must be empty or 0.")]})
        received_g = 0
    else:
        try:
            received_g = parse_kg(received_kg)
        except QuantityError as exc:
            raise ValidationFailed(str(exc), fields={"received_kg": [str(exc)]})
    if grade is None and not_delivered:
        grade = pool.grade.code
    if not isinstance(grade, str) or not grade.strip():
        raise ValidationFailed(_("Choose the grade received."),
                               fields={"grade": [_("Required string.")]})
    if crop is not None and not isinstance(crop, str):
        raise ValidationFailed(_("crop must be a string."), fields={"crop": [_("String.")]})
    crop_row, grade_row = catalog.resolve(crop if crop is not None else pool.crop.slug,
                                          grade.strip())
    if crop_row.id != pool.crop_id:
        raise ValidationFailed(_("This pool sells another crop."), code="crop_mismatch",
                               fields={"crop": [_("Not the pool's crop.")]})
    return received_g, grade_row


def _price_version(pool: Pool, grade_id: int):
    if grade_id == pool.grade_id:
        return pool.price
    version = pricing.current(pool.coop_id, pool.crop_id, grade_id)
    if version is None:
        raise ValidationFailed(_("Set a price for the grade received before recording it."),
                               code="no_price", fields={"grade": [_("No price set.")]})
    return version


def _fingerprint(allocation_id, received_kg, grade, crop, not_delivered) -> str:
    return request_fingerprint({"allocation": allocation_id, "received_kg": str(received_kg),
                                "grade": grade, "crop": crop, "not_delivered": not_delivered})


def _replay(intake: Intake, fingerprint: str, allocation_id: int) -> Intake:
    return replay_or_refuse(
        intake, intake.request_hash == fingerprint and intake.allocation_id == allocation_id,
        _("This Idempotency-Key was used with a different intake."))


def _by_key(coop_id: int, key: str) -> Intake | None:
    return db.session.scalar(select(Intake).where(Intake.coop_id == coop_id,
                                                  Intake.idempotency_key == key))


def _check_recordable(pool: Pool, allocation: Allocation) -> None:
    """Refuses a delivery before the pool is confirmed and paid, or one recorded already."""
    if pool.status != "confirmed" or pool.settled_at is None \
            or pool.final_price_per_kg_minor is None:
        raise Conflict(_("Deliveries are recorded once the pool is confirmed and paid."),
                       code="pool_not_settled")
    if intake_for(allocation.id) is not None:
        raise Conflict(_("This delivery was recorded already."), code="intake_recorded")


def record_intake(user, allocation_id: int, *, received_kg, grade, crop=None,
                  not_delivered: bool = False, idempotency_key: str | None = None
                  ) -> tuple[Intake, bool]:
    """Record what a farmer delivered against an allocation (the coop's manager only) and
    refund the shortfall. Returns (intake, created). Refuses: outsiders 404, other members
    403; bad kilograms, an unknown or prohibited crop or grade, a grade without price (422);
    a pool not yet confirmed and captured (409 pool_not_settled); a second intake of the
    same allocation (409 intake_recorded). The same Idempotency-Key with the same body
    returns the first intake (and finishes its pending refunds); with another body, 422.
    Commits in steps (see the module docstring)."""
    allocation = managed_allocation(user, allocation_id)
    pool = allocation.pool
    coop = pool.coop
    not_delivered = bool(not_delivered)
    fingerprint = _fingerprint(allocation_id, received_kg, grade, crop, not_delivered)
    if idempotency_key is not None:
        earlier = _by_key(coop.id, idempotency_key)
        if earlier is not None:
            intake = _replay(earlier, fingerprint, allocation_id)
            finish_refunds(intake_id=intake.id)
            return intake, False
    received_g, grade_row = _parse(pool, received_kg, grade, crop, not_delivered)
    try:
        _check_recordable(pool, allocation)
    except Conflict as exc:
        # The same key may have recorded it a moment ago (a replay racing the first
        # request): its intake answers, not 409.
        earlier = _by_key(coop.id, idempotency_key) if idempotency_key is not None \
            and exc.code == "intake_recorded" else None
        if earlier is None:
            raise
        intake = _replay(earlier, fingerprint, allocation_id)
        finish_refunds(intake_id=intake.id)
        return intake, False
    version = _price_version(pool, grade_row.id)
    # Step 1, one transaction: end the reads, then lock the pool (an UPDATE takes the write
    # lock on both databases) so two intakes of a pool never split the same deposits.
    commit_step()
    pool_services.lock_pool(pool.id)
    try:
        intake, earlier = write_or_find(
            lambda: _create(user, allocation, pool, coop, received_g, grade_row, version,
                            idempotency_key, fingerprint if idempotency_key else None),
            lambda: _by_key(coop.id, idempotency_key) if idempotency_key else None)
    except IntegrityError:
        # The same allocation was recorded at this moment by another request (with the same
        # key, its intake answers).
        db.session.rollback()
        earlier = _by_key(coop.id, idempotency_key) if idempotency_key is not None else None
        if earlier is None:
            raise Conflict(_("This delivery was recorded already."), code="intake_recorded")
        return _replay(earlier, fingerprint, allocation_id), False
    if earlier is not None:  # the same key raced in: the other request's intake answers
        return _replay(earlier, fingerprint, allocation_id), False
    # Step 2: the refunds at Stripe, no transaction open.
    finish_refunds(intake_id=intake.id)
    db.session.refresh(intake)
    return intake, True


def _pool_money(pool: Pool) -> tuple[int, int, int, int]:
    """(captured, refunds assigned, taken by intakes, intakes recorded) for a pool."""
    captured = db.session.scalar(select(func.coalesce(func.sum(Order.amount_captured_minor), 0))
                                 .where(Order.pool_id == pool.id, Order.status == "captured"))
    refunds = db.session.scalar(select(func.coalesce(func.sum(Refund.amount_minor), 0))
                                .join(Order, Order.id == Refund.order_id)
                                .where(Order.pool_id == pool.id))
    taken, count = db.session.execute(
        select(func.coalesce(func.sum(Intake.sale_minor), 0), func.count(Intake.id))
        .where(Intake.pool_id == pool.id)).one()
    return int(captured), int(refunds), int(taken), int(count)


def _figures(allocation: Allocation, pool: Pool, received_g: int, version) -> dict:
    """What a delivery of `received_g` against `allocation` comes to: accepted grams, the
    farmer's amount and premium, the sale taken from the buyers' deposits, the refund of the
    shortfall (and downgrade), the commission or the coop's cost. Reads only."""
    final = pool.final_price_per_kg_minor
    pool_farmer = pool.price.farmer_price_per_kg_minor
    premium_per_kg = pool.price.premium_per_kg_minor
    accepted = min(received_g, allocation.quantity_g)
    farmer_price = version.farmer_price_per_kg_minor
    farmer_amount = pricing.amount_for(farmer_price, accepted)
    premium = pricing.amount_for(premium_per_kg, accepted)
    downgrade = max(pricing.amount_for(pool_farmer, accepted) - farmer_amount, 0)
    due = pricing.amount_for(final, allocation.quantity_g)
    refund_total = due - (pricing.amount_for(final, accepted) - downgrade)

    captured, refunds, taken, recorded = _pool_money(pool)
    available = max(captured - refunds - taken, 0)
    allocations = db.session.scalar(select(func.count(Allocation.id))
                                    .where(Allocation.pool_id == pool.id))
    last = recorded + 1 >= allocations
    # The last delivery of a pool takes whatever rounding left in its deposits.
    target = available if last else min(due, available)
    refund_total = min(refund_total, target)
    sale = target - refund_total
    rest = sale - farmer_amount - premium
    commission, coop_cost = (rest, 0) if rest >= 0 else (0, -rest)
    return {"final": final, "accepted": accepted, "farmer_price": farmer_price,
            "farmer_amount": farmer_amount, "premium": premium, "refund_total": refund_total,
            "sale": sale, "commission": commission, "coop_cost": coop_cost}


def _create(user, allocation: Allocation, pool: Pool, coop, received_g: int, grade_row,
            version, key, request_hash) -> Intake:
    f = _figures(allocation, pool, received_g, version)
    final, accepted, farmer_price = f["final"], f["accepted"], f["farmer_price"]
    farmer_amount, premium, refund_total = f["farmer_amount"], f["premium"], f["refund_total"]
    sale, commission, coop_cost = f["sale"], f["commission"], f["coop_cost"]

    intake = Intake(
        coop_id=coop.id, pool_id=pool.id, allocation_id=allocation.id,
        farmer_user_id=allocation.farmer_user_id, grade_id=grade_row.id,
        price_version_id=version.id, currency=pool.currency, received_g=received_g,
        accepted_g=accepted, excess_g=received_g - accepted,
        shortfall_g=allocation.quantity_g - accepted, farmer_price_per_kg_minor=farmer_price,
        buyer_price_per_kg_minor=final, farmer_amount_minor=farmer_amount, sale_minor=sale,
        premium_minor=premium, commission_minor=commission, coop_cost_minor=coop_cost,
        refund_minor=refund_total, advance_minor=0, share_withholding_minor=0,
        idempotency_key=key, request_hash=request_hash, recorded_by_id=user.id)
    db.session.add(intake)
    db.session.flush()
    lots.add_delivery(intake, allocation, pool, coop, grade_row.crop.slug)

    farmer = allocation.farmer_user_id
    source = ("intake", intake.id)
    if sale or coop_cost or farmer_amount or premium:
        ledger.post(coop, key=f"intake:{intake.id}", kind="intake", user=user, source=source,
                    memo=f"intake {intake.id}, allocation {allocation.id}, pool {pool.id}",
                    lines=[ledger.debit("buyer_deposits", sale),
                           ledger.debit("operating_costs", coop_cost),
                           ledger.credit(ledger.farmer_payable(farmer), farmer_amount),
                           ledger.credit("premium_fund", premium),
                           ledger.credit("commission_income", commission)])
    advance = farmer_amount * finance.settings(coop).advance_bps // 10000
    if advance > 0:
        ledger.post(coop, key=f"advance:{intake.id}", kind="advance", user=user, source=source,
                    memo=f"cash advance at intake {intake.id}",
                    lines=[ledger.debit(ledger.farmer_payable(farmer), advance),
                           ledger.credit("cash", advance)])
    withheld = shares.withhold(coop, farmer, farmer_amount, key=f"withhold:intake:{intake.id}",
                               user=user, cap=farmer_amount - advance, source=source)
    intake.advance_minor, intake.share_withholding_minor = advance, withheld

    for order_id, amount in split_refund(pool.id, refund_total).items():
        db.session.add(Refund(coop_id=coop.id, order_id=order_id, intake_id=intake.id,
                              amount_minor=amount, currency=pool.currency, status="pending"))
    audit.record(coop.id, user, "intake.record", "intake", intake.id, {}, {
        "allocation": allocation.id, "received_g": received_g, "accepted_g": accepted,
        "grade": grade_row.code, "farmer_amount_minor": farmer_amount, "sale_minor": sale,
        "refund_minor": refund_total, "advance_minor": advance, "withheld_minor": withheld})
    if received_g > 0:  # "nothing delivered" is the manager's record, not news to the farmer
        messages.notify(farmer, "farmer.delivery_received", event=f"intake:{intake.id}",
                        coop_id=coop.id, kg=messages.Kg(accepted),
                        crop=messages.Label("crop", grade_row.crop.slug),
                        grade=messages.Label("grade", grade_row.code),
                        amount=messages.Money(farmer_amount, pool.currency),
                        advance=messages.Money(advance, pool.currency),
                        link=f"/my/statements/{intake.id}")
    db.session.flush()
    return intake


def split_refund(pool_id: int, total: int) -> dict[int, int]:
    """Split `total` minor units over the pool's captured orders pro rata to their quantity
    (largest remainder), never giving an order more than it has left to refund (captured
    less every refund already assigned to it); what a capped order cannot take goes to the
    others. Refuses (ValueError) a total above what the orders have left."""
    if total <= 0:
        return {}
    orders = list(db.session.execute(
        select(Order.id, Order.quantity_g, Order.amount_captured_minor)
        .where(Order.pool_id == pool_id, Order.status == "captured",
               Order.amount_captured_minor > 0).order_by(Order.id)))
    assigned = dict(db.session.execute(
        select(Refund.order_id, func.sum(Refund.amount_minor))
        .where(Refund.order_id.in_([o.id for o in orders]))
        .group_by(Refund.order_id)).all()) if orders else {}
    room = {o.id: o.amount_captured_minor - int(assigned.get(o.id) or 0) for o in orders}
    active = {o.id: o.quantity_g for o in orders if room[o.id] > 0}
    if total > sum(room[k] for k in active):
        raise ValueError("refund above what the pool's orders have left")
    result: dict[int, int] = {}
    remaining = total
    while remaining > 0:
        parts = largest_remainder(remaining, sorted(active.items()))
        over = [k for k, v in parts.items() if v > room[k]]
        if not over:
            for k, v in parts.items():
                result[k] = result.get(k, 0) + v
            break
        for k in over:
            result[k] = room[k]
            remaining -= room[k]
            del active[k]
    return {k: v for k, v in result.items() if v > 0}


# ---------------------------------------------------------------- refunds at Stripe

def _claim(refund_id: int, now: datetime) -> bool:
    result = db.session.execute(
        update(Refund).where(Refund.id == refund_id, Refund.status == "pending",
                             (Refund.locked_until.is_(None)) | (Refund.locked_until < now))
        .values(locked_until=now + REFUND_LEASE, attempts=Refund.attempts + 1)
        .execution_options(synchronize_session=False))
    commit_step()
    return result.rowcount == 1


def _transient(exc: gateway.PaymentError) -> bool:
    return isinstance(exc, gateway.GatewayUnavailable) or exc.code in TRANSIENT_CODES \
        or (exc.http_status or 0) >= 500


def finish_refunds(intake_id: int | None = None, now: datetime | None = None
                   ) -> list[tuple[int, str]]:
    """Make every pending refund (of one intake, or all) at Stripe and record it. Returns
    (refund id, status) for each one tried. A refund another worker holds is skipped; one
    Stripe did not answer for stays pending for the next run; one Stripe refused for good is
    marked failed and what it owed moves to unsold_returns (owed to the buyer, for the
    treasurer to settle by hand)."""
    now = now or utcnow()
    stmt = select(Refund.id).where(Refund.status == "pending").order_by(Refund.id)
    if intake_id is not None:
        stmt = stmt.where(Refund.intake_id == intake_id)
    ids = list(db.session.scalars(stmt))
    commit_step()
    done = []
    for refund_id in ids:
        if not _claim(refund_id, now):
            continue
        refund = db.session.get(Refund, refund_id)
        db.session.refresh(refund)
        intent = refund.order.payment_intent_id
        key = f"refund:{refund.id}"
        commit_step()
        try:
            stripe_id = gateway.find_refund(intent, key) \
                or gateway.refund(intent, refund.amount_minor, key,
                                  {"coop_id": str(refund.coop_id), "order_id": str(refund.order_id),
                                   "pool_id": str(refund.order.pool_id)})
        except gateway.PaymentError as exc:
            if _transient(exc):
                db.session.execute(update(Refund).where(Refund.id == refund_id)
                                   .values(locked_until=None,
                                           failure_message=str(exc)[:255])
                                   .execution_options(synchronize_session=False))
                commit_step()
                current_app.logger.warning("refund %s stays pending: %s", refund_id, exc)
                done.append((refund_id, "pending"))
                continue
            _mark_failed(refund, str(exc))
            done.append((refund_id, "failed"))
            continue
        _mark_succeeded(refund, stripe_id)
        done.append((refund_id, "succeeded"))
    return done


def _mark_succeeded(refund: Refund, stripe_id: str) -> None:
    result = db.session.execute(update(Refund).where(Refund.id == refund.id,
                                                     Refund.status == "pending")
                                .values(status="succeeded", stripe_refund_id=stripe_id,
                                        locked_until=None, failure_message="",
                                        updated_at=utcnow())
                                .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        pool_services.record_refunded(refund.order_id, refund.amount_minor)
        coop = refund.order.pool.coop
        # The refund's credit note, pointing at the order's invoice, in the same step.
        note = invoices.issue_credit_note(
            coop, refund_id=refund.id, order_id=refund.order_id, amount_minor=refund.amount_minor,
            reason=refund_reason(db.session.get(Intake, refund.intake_id)))
        ledger.post(coop, key=f"refund:{refund.id}", kind="refund", source=("refund", refund.id),
                    external_ref=stripe_id, document=note,
                    memo=f"shortfall refund, order {refund.order_id}, intake {refund.intake_id}",
                    lines=[ledger.debit("buyer_deposits", refund.amount_minor),
                           ledger.credit("stripe_clearing", refund.amount_minor)])
        order = refund.order
        messages.notify(order.user_id, "buyer.refunded", event=f"refund:{refund.id}",
                        coop_id=coop.id, amount=Money(refund.amount_minor, refund.currency),
                        pool=f"#{order.pool_id}",
                        reason=Label("refund_reason",
                                     refund_reason(db.session.get(Intake, refund.intake_id))),
                        link="/my/orders")
    commit_step()
    db.session.expire_all()


def _mark_failed(refund: Refund, message: str) -> None:
    result = db.session.execute(update(Refund).where(Refund.id == refund.id,
                                                     Refund.status == "pending")
                                .values(status="failed", failure_message=message[:255],
                                        locked_until=None, updated_at=utcnow())
                                .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        coop = refund.order.pool.coop
        ledger.post(coop, key=f"refund-failed:{refund.id}", kind="refund_failed",
                    source=("refund", refund.id),
                    memo=f"Stripe refused the refund of order {refund.order_id}; owed by hand",
                    lines=[ledger.debit("buyer_deposits", refund.amount_minor),
                           ledger.credit("unsold_returns", refund.amount_minor)])
    commit_step()
    db.session.expire_all()


# ---------------------------------------------------------------- preview (read-only)

@dataclass(frozen=True)
class RefundEffect:
    order_id: int
    buyer: str
    amount_minor: int


@dataclass(frozen=True)
class IntakePreview:
    allocation_id: int
    currency: str
    farmer: str
    grade: str
    allocated_g: int
    received_g: int
    accepted_g: int
    farmer_price_per_kg_minor: int
    farmer_amount_minor: int
    refund_minor: int
    refunds: tuple = ()

    @property
    def shortfall_g(self) -> int:
        return self.allocated_g - self.accepted_g


def preview_intake(user, allocation_id: int, *, received_kg, grade, crop=None,
                   not_delivered: bool = False) -> IntakePreview:
    """What record_intake would record and refund (each buyer's share of the refund),
    refusing what it would refuse; writes nothing."""
    allocation = managed_allocation(user, allocation_id)
    pool = allocation.pool
    received_g, grade_row = _parse(pool, received_kg, grade, crop, bool(not_delivered))
    _check_recordable(pool, allocation)
    version = _price_version(pool, grade_row.id)
    f = _figures(allocation, pool, received_g, version)
    split = split_refund(pool.id, f["refund_total"])
    from ..auth.models import Buyer, User
    buyers = dict(db.session.execute(
        select(Order.id, Buyer.organisation).join(Buyer, Buyer.id == Order.buyer_id)
        .where(Order.id.in_(list(split)))).all()) if split else {}
    return IntakePreview(
        allocation_id=allocation.id, currency=pool.currency,
        farmer=db.session.scalar(select(User.name).where(User.id == allocation.farmer_user_id))
        or "", grade=grade_row.code, allocated_g=allocation.quantity_g, received_g=received_g,
        accepted_g=f["accepted"], farmer_price_per_kg_minor=f["farmer_price"],
        farmer_amount_minor=f["farmer_amount"], refund_minor=f["refund_total"],
        refunds=tuple(RefundEffect(order_id=k, buyer=buyers.get(k, ""), amount_minor=v)
                      for k, v in sorted(split.items())))

# ---------------------------------------------------------------- the farmer's deliveries

# The day by which a confirmed pool's farmers deliver (the pools domain decides it: its
# closing tells the farmers).
DELIVERY_DAYS, delivery_due = pool_services.DELIVERY_DAYS, pool_services.delivery_due


@dataclass
class Delivery:
    """One allocation of the farmer's, at the stage it has reached: `to_deliver` (the pool
    is confirmed), `delivered` (weighed and graded: what is owed is the statement's net),
    `on_its_way` (a payout line covering it waits for the bank), `paid` (the line that paid
    it, or none when the advance and withholding took all of it)."""
    allocation: Allocation
    intake: Intake | None
    stage: str
    due_on: object
    line: object = None

    @property
    def pool(self) -> Pool:
        return self.allocation.pool


def farmer_deliveries_page(user, cursor: str | None, *, stage: str | None = None,
                           limit: int = PER_PAGE) -> tuple[list[Delivery], KeysetPage]:
    """A page of the farmer's allocations, newest first (keyset on the id), each at its
    stage as `farmer_deliveries` tells it; `stage` "to_deliver" keeps those not received yet,
    "received" those weighed. Which payout line paid a delivery is worked out on narrow rows
    (ids and amounts) of the farmer's intakes and lines; only the page's objects are loaded:
    a constant number of queries whatever the number of deliveries."""
    from ..payouts.models import PayoutLine
    received = select(Intake.allocation_id).where(Intake.farmer_user_id == user.id)
    stmt = select(Allocation).where(Allocation.farmer_user_id == user.id)
    if stage == "to_deliver":
        stmt = stmt.where(Allocation.id.not_in(received))
    elif stage == "received":
        stmt = stmt.where(Allocation.id.in_(received))
    found = keyset(stmt, [(Allocation.id, "desc")], cursor, limit)
    ids = [a.id for a in found.items]
    intakes = {i.allocation_id: i for i in db.session.scalars(
        select(Intake).where(Intake.allocation_id.in_(ids))).unique()} if ids else {}
    paying: dict[int, tuple[str, int | None]] = {}
    if intakes:
        narrow = db.session.execute(select(
            Intake.id, Intake.coop_id, (Intake.farmer_amount_minor - Intake.advance_minor
                                        - Intake.share_withholding_minor).label("net_minor"))
            .where(Intake.farmer_user_id == user.id).order_by(Intake.id)).all()
        lines = db.session.execute(
            select(PayoutLine.id, PayoutLine.coop_id, PayoutLine.status,
                   PayoutLine.amount_minor, PayoutLine.confirmed_at, PayoutLine.created_at)
            .where(PayoutLine.farmer_user_id == user.id,
                   PayoutLine.status.in_((PayoutLineStatus.PAID, PayoutLineStatus.PENDING)))
        ).all()
        paying = _paying_lines(narrow, lines)
    line_ids = {line_id for _stage, line_id in paying.values() if line_id}
    full = {ln.id: ln for ln in db.session.scalars(
        select(PayoutLine).where(PayoutLine.id.in_(line_ids)))} if line_ids else {}
    out = []
    for allocation in found.items:
        intake = intakes.get(allocation.id)
        if intake is None:
            where, line = "to_deliver", None
        elif intake.accepted_g == 0:
            where, line = "not_delivered", None
        else:
            where, line_id = paying.get(intake.id, ("delivered", None))
            line = full.get(line_id)
        out.append(Delivery(allocation=allocation, intake=intake, stage=where,
                            due_on=delivery_due(allocation.pool), line=line))
    return out, found


def _paying_lines(intakes, lines) -> dict[int, tuple[str, int | None]]:
    """intake id -> (stage, id of the line that completes its net) for the intakes a line
    covers, from (id, coop_id, net_minor) intakes and (id, coop_id, status, amount_minor,
    confirmed_at, created_at) lines: within a coop, lines are applied to the deliveries
    oldest first (paid lines by confirmation time, then the lines on their way)."""
    paying: dict[int, tuple[str, int | None]] = {}
    for coop_id in {i.coop_id for i in intakes}:
        ordered = [i for i in intakes if i.coop_id == coop_id]
        paid = sorted((ln for ln in lines if ln.coop_id == coop_id and ln.status == "paid"),
                      key=lambda ln: (ln.confirmed_at or ln.created_at, ln.id))
        waiting = sorted((ln for ln in lines if ln.coop_id == coop_id
                          and ln.status == "pending"), key=lambda ln: ln.id)
        queue = [("paid", ln) for ln in paid] + [("on_its_way", ln) for ln in waiting]
        covered, position, owed = 0, 0, 0
        for intake in ordered:
            owed += intake.net_minor
            if intake.net_minor <= 0:
                paying[intake.id] = ("paid", None)
                continue
            while covered < owed and position < len(queue):
                covered += queue[position][1].amount_minor
                position += 1
            if covered >= owed and position:
                where, line = queue[position - 1]
                paying[intake.id] = (where, line.id)
    return paying


def farmer_deliveries(user) -> list[Delivery]:
    """Every allocation of the farmer's, newest first, with its stage (the pages read
    `farmer_deliveries_page`, a page at a time)."""
    out: list[Delivery] = []
    cursor = None
    while True:
        deliveries, found = farmer_deliveries_page(user, cursor, limit=500)
        out += deliveries
        if not found.has_more:
            return out
        cursor = found.next_cursor


# ---------------------------------------------------------------- refunds, with their reason

def refund_reason(intake: Intake) -> str:
    """Why an intake gave buyers money back: `not_delivered` (nothing received),
    `shortfall` (less than sold), `downgrade` (a lower grade than sold), or
    `shortfall_downgrade` (both)."""
    if intake.accepted_g == 0:
        return "not_delivered"
    lower = intake.grade_id != intake.pool.grade_id and \
        intake.farmer_price_per_kg_minor < intake.pool.price.farmer_price_per_kg_minor
    if intake.shortfall_g and lower:
        return "shortfall_downgrade"
    return "downgrade" if lower else "shortfall"


def order_refunds(order_ids) -> dict[int, list[tuple[Refund, str]]]:
    """Each order's refunds (oldest first) with their reason, in one query."""
    order_ids = list(order_ids)
    if not order_ids:
        return {}
    out: dict[int, list] = {}
    rows = db.session.execute(select(Refund, Intake).join(Intake, Intake.id == Refund.intake_id)
                              .where(Refund.order_id.in_(order_ids)).order_by(Refund.id))
    for refund, intake in rows.unique():
        out.setdefault(refund.order_id, []).append((refund, refund_reason(intake)))
    return out
