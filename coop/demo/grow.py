"""Grow the demo (`flask grow-demo --factor N`): N times the seeded demo's people and a season's
worth of activity per unit, for the page-growth test (tests/test_page_growth.py) and the pages
bench (bench/pages_bench.py). Never needed in production.

A *unit* is one copy, per demo cooperative, of:
- its farmers (unit 1: the seeded ones; later units: copies with their memberships, profiles,
  a plot and the same listings), and five buyers (unit 1: the demo's);
- a confirmed, settled pool: ten sold listings, their allocations, five captured orders, eight
  intakes recorded (two still to record), share withholding at intake, a payout batch whose
  lines are six paid and two waiting for the bank's confirmation, the bank's statement lines
  for the paid ones (half matched) and Stripe's balance transactions for the captures;
- an open pool with three authorised orders (their card holds pending);
- a pending invitation.
`grow(n)` adds units until there are n of them, so a test can build 1x, measure, then grow
to 20x on the same database.

Set-based: every table is written with multi-row INSERTs (insert() with lists of dicts), a
few statements per table per unit. Money goes through the ledger's bulk writer
(coop.ledger.bulk.post_many: balanced entries, idempotency keys, cached balances, the
ledger's triggers). No domain offers a bulk writer for the other rows (users, memberships,
profiles, listings, pools, orders, allocations, intakes, share accounts and movements, payout
batches and lines, bank and Stripe lines, invitations, and the card holds, which are
memorandum entries that move no balance), so this test/bench data generator inserts them
directly, with the columns their services would write."""
from __future__ import annotations

import hashlib
from datetime import date, timedelta

from sqlalchemy import bindparam, func, insert, select, update

from ..auth.models import Buyer, User
from ..catalog import services as catalog
from ..common.models import utcnow
from ..cooperatives.models import (Cooperative, FarmerProfile, Invitation, Membership, Plot)
from ..extensions import db
from ..intake.models import Intake
from ..ledger import bulk
from ..ledger import services as ledger
from ..listings.models import Listing, ListingPlot
from ..lots.models import Lot, LotSequence, LotSource, LotSourcePlot
from ..lots.services import lot_code
from ..payouts.models import PayoutBatch, PayoutLine
from ..pools.models import Allocation, Order, Pool
from ..pricing import services as pricing
from ..pricing.models import PriceVersion
from ..shares.models import ShareAccount, ShareMovement
from ..treasury.models import BankStatementLine, StripeBalanceTxn
from .pools import POOLS
from .seed import seed_demo

SOLD_PER_POOL = 10      # allocations in each unit's settled pool
INTAKES_PER_POOL = 8    # of them recorded (the rest: intakes to record)
PAID_PER_BATCH = 6      # payout lines paid (the rest: waiting for the bank)
KG_PER_ALLOCATION = 100
BUYERS_PER_UNIT = 5
OPEN_ORDERS = 3
MARK = "grow:"          # the payout batches' idempotency keys: one per coop and unit


def _ids(model, rows: list[dict]) -> list[int]:
    """Insert rows (one multi-row statement per chunk) and return their ids in order."""
    if not rows:
        return []
    table = model.__table__
    result = db.session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return list(result.scalars())


def _rows(model, rows: list[dict]) -> None:
    if rows:
        db.session.execute(insert(model.__table__), rows)


def units_grown(coop_id: int) -> int:
    return int(db.session.scalar(select(func.count(PayoutBatch.id)).where(
        PayoutBatch.coop_id == coop_id, PayoutBatch.idempotency_key.like(f"{MARK}%"))) or 0)


def demo_coops() -> list[Cooperative]:
    """The seeded cooperatives (those with a manager and the demo's prices)."""
    names = ("Cooperativa Nuevo Horizonte", "Cooperativa Valle Verde")
    return list(db.session.scalars(select(Cooperative).where(Cooperative.name.in_(names))
                                   .order_by(Cooperative.id)))


def grow(factor: int, say=None) -> dict:
    """Seed the demo if needed, then add units until every demo coop has `factor` of them.
    Returns {coop slug: units}. Commits."""
    factor = int(factor)
    if factor < 1:
        raise ValueError("factor must be at least 1")
    seed_demo()
    _BUYER_OF.clear()
    buyers_by_unit: dict[int, list[int]] = {}
    out = {}
    for coop in demo_coops():
        state = _State(coop)
        start = units_grown(coop.id) + 1
        for unit in range(start, factor + 1):
            if unit not in buyers_by_unit:
                buyers_by_unit[unit] = _buyers(unit, state.pw_hash)
            farmers = state.seeded if unit == 1 else _copy_farmers(state, unit)
            _season(state, unit, farmers, buyers_by_unit[unit])
        db.session.commit()
        out[coop.slug] = factor
        if say:
            say(f"{coop.name}: {factor} units")
    return out


class _State:
    """What every unit of one coop reuses: its staff, farmers, listings and prices."""

    def __init__(self, coop: Cooperative):
        self.coop = coop
        self.manager = next(m.user_id for m in coop.memberships if m.role == "manager")
        self.treasurer = next((m.user_id for m in coop.memberships if m.role == "treasurer"),
                              self.manager)
        self.pw_hash = db.session.scalar(select(User.password_hash).where(
            User.id == self.manager))
        profiles = list(db.session.execute(
            select(FarmerProfile, User.name, User.email).join(User, User.id == FarmerProfile.user_id)
            .where(FarmerProfile.coop_id == coop.id,
                   ~FarmerProfile.member_number.contains("/"))
            .order_by(FarmerProfile.id)).all())
        self.seeded = [_farmer(p, name) for p, name, _email in profiles]
        self.names = {p.user_id: name for p, name, _email in profiles}
        self.emails = {p.user_id: email for p, _name, email in profiles}
        self.profiles = {p.user_id: p for p, _n, _e in profiles}
        seeded_ids = [f["user_id"] for f in self.seeded]
        self.listings = [dict(farmer=row.farmer_user_id, crop_id=row.crop_id,
                              grade_id=row.grade_id, quantity_g=row.quantity_g,
                              harvested_on=row.harvested_on,
                              collection_point=row.collection_point)
                         for row in db.session.scalars(
                             select(Listing).where(Listing.coop_id == coop.id,
                                                   Listing.farmer_user_id.in_(seeded_ids),
                                                   Listing.status == "available")
                             .order_by(Listing.id).limit(200))]
        crop, grade, _min, _max = POOLS[coop.currency]
        crop_row, grade_row = catalog.resolve(crop, grade)
        self.crop_id, self.grade_id = crop_row.id, grade_row.id
        self.price = db.session.scalar(
            select(PriceVersion).where(PriceVersion.coop_id == coop.id,
                                       PriceVersion.crop_id == crop_row.id,
                                       PriceVersion.grade_id == grade_row.id)
            .order_by(PriceVersion.version.desc()).limit(1))
        # The buyer's price per kg at a settled pool's volume (its commission tier).
        self.final = pricing.breakdown(self.price, SOLD_PER_POOL * KG_PER_ALLOCATION * 1000).buyer
        self.open_price = pricing.breakdown(self.price, 0).buyer
        self.point = self.listings[0]["collection_point"] if self.listings else ""


def _farmer(profile: FarmerProfile, name: str) -> dict:
    return {"user_id": profile.user_id, "name": name, "rail": profile.payout_rail,
            "account": profile.payout_account, "bank_name": profile.bank_name,
            "national_id": profile.national_id}


def _buyers(unit: int, pw_hash: str) -> list[int]:
    if unit == 1:
        return list(db.session.scalars(
            select(User.id).where(User.email.in_([f"buyer{n}@example.org"
                                                  for n in range(1, 6)]))
            .order_by(User.id)))
    now = utcnow()
    names = ["Tostadores del Sur", "Chocolates Andinos", "Bean & Bar Imports", "Mercado Justo",
             "Café Origen"]
    first = db.session.scalar(select(User.id).where(User.email == "buyer1@example.org"))
    buyer_ids = _ids(Buyer, [{"organisation": f"{names[n % 5]} {unit}", "country": None,
                              "created_at": now} for n in range(1, BUYERS_PER_UNIT)])
    return [first] + _ids(User, [{"email": f"buyer{n + 2}.g{unit}@example.org",
                        "name": f"Compras {names[n % 5]} {unit}", "password_hash": pw_hash,
                        "locale": "es", "buyer_id": buyer_id, "created_at": now,
                        "must_set_pin": False, "announcements": False, "session_version": 0}
                       for n, buyer_id in enumerate(buyer_ids)])


def _copy_farmers(state: _State, unit: int) -> list[dict]:
    """The seeded farmers once more: accounts, memberships, profiles, a plot, listings."""
    coop, now = state.coop, utcnow()
    seeded = state.seeded
    user_ids = _ids(User, [{
        "email": state.emails[f["user_id"]].replace("@", f".g{unit}@"),
        "name": state.names[f["user_id"]], "password_hash": state.pw_hash, "locale": "es",
        "created_at": now, "must_set_pin": False, "announcements": False,
        "session_version": 0} for f in seeded])
    remap = {f["user_id"]: new for f, new in zip(seeded, user_ids)}
    _rows(Membership, [{"user_id": u, "coop_id": coop.id, "role": "farmer", "created_at": now}
                       for u in user_ids])
    profile_rows = []
    for f, new in zip(seeded, user_ids):
        p = state.profiles[f["user_id"]]
        profile_rows.append({
            "coop_id": coop.id, "user_id": new, "member_number": f"{p.member_number}/{unit}",
            "national_id": f"{p.national_id}{unit:03d}", "gender": p.gender,
            "household_size": p.household_size, "payout_rail": p.payout_rail,
            "payout_account": p.payout_account, "bank_name": p.bank_name, "joined_on": now})
    profile_ids = _ids(FarmerProfile, profile_rows)
    _rows(Plot, [{"farmer_id": pid, "name": f"Finca {unit}", "area_m2": 20_000,
                  "replaced_crop": "coca", "illicit_area_m2": 10_000,
                  "licit_crop": "coffee" if coop.currency == "COP" else "cacao"}
                 for pid in profile_ids])
    _rows(Listing, [{"coop_id": coop.id, "farmer_user_id": remap[row["farmer"]],
                     "crop_id": row["crop_id"], "grade_id": row["grade_id"],
                     "quantity_g": row["quantity_g"], "committed_g": 0,
                     "harvested_on": row["harvested_on"],
                     "collection_point": row["collection_point"], "notes": "",
                     "status": "available", "created_at": now, "updated_at": now}
                    for row in state.listings if row["farmer"] in remap])
    return [{**f, "user_id": remap[f["user_id"]], "national_id": r["national_id"]}
            for f, r in zip(seeded, profile_rows)]


def _lot(state: _State, pool_id: int, decided, sold: list[tuple[dict, int]],
         intakes: list[dict], intake_ids: list[int]) -> None:
    """The settled pool's lot, as intake forms it (coop.lots.services.add_delivery): each sold
    listing names its farmer's first plot, each recorded delivery is a source with that plot
    at its current version and the farmer's consent as it stands."""
    from ..plots.models import TraceConsent
    coop = state.coop
    users = [f["user_id"] for f, _listing in sold]
    profiles = dict(db.session.execute(select(FarmerProfile.user_id, FarmerProfile.id).where(
        FarmerProfile.coop_id == coop.id, FarmerProfile.user_id.in_(users))).all())
    first = {}
    for farmer_id, plot_id, version_id in db.session.execute(
            select(Plot.farmer_id, Plot.id, Plot.current_version_id)
            .where(Plot.farmer_id.in_(list(profiles.values()))).order_by(Plot.id)):
        first.setdefault(farmer_id, (plot_id, version_id))
    consents = {}
    for farmer_id, consent_id in db.session.execute(
            select(TraceConsent.farmer_id, TraceConsent.id).where(
                TraceConsent.farmer_id.in_(list(profiles.values())),
                TraceConsent.withdrawn_at.is_(None)).order_by(TraceConsent.id)):
        consents[farmer_id] = consent_id
    _rows(ListingPlot, [{"listing_id": listing_id,
                         "plot_id": first[profiles[f["user_id"]]][0]}
                        for f, listing_id in sold if profiles[f["user_id"]] in first])
    sequence = db.session.get(LotSequence, coop.id)
    if sequence is None:
        sequence = LotSequence(coop_id=coop.id, last_number=0)
        db.session.add(sequence)
    sequence.last_number += 1
    db.session.flush()
    lot_id = _ids(Lot, [{"coop_id": coop.id, "pool_id": pool_id, "crop_id": state.crop_id,
                         "number": sequence.last_number,
                         "code": lot_code(coop, sequence.last_number, decided.year),
                         "eudr": True, "created_at": decided + timedelta(days=3)}])[0]
    listing_of = {f["user_id"]: listing_id for f, listing_id in sold}
    source_ids = _ids(LotSource, [{
        "lot_id": lot_id, "intake_id": intake_id, "listing_id": listing_of[i["farmer_user_id"]],
        "farmer_id": profiles[i["farmer_user_id"]], "farmer_user_id": i["farmer_user_id"],
        "grade_id": i["grade_id"], "accepted_g": i["accepted_g"],
        "harvested_on": date.today() - timedelta(days=30),
        "consent_id": consents.get(profiles[i["farmer_user_id"]]),
        "created_at": i["recorded_at"]} for i, intake_id in zip(intakes, intake_ids)])
    _rows(LotSourcePlot, [{"source_id": source_id, "plot_id": first[profile][0],
                           "plot_version_id": first[profile][1]}
                          for source_id, i in zip(source_ids, intakes)
                          for profile in [profiles[i["farmer_user_id"]]] if profile in first])


def _season(state: _State, unit: int, farmers: list[dict], buyers: list[int]) -> None:
    coop, now, price = state.coop, utcnow(), state.price
    today = date.today()
    # The demo's first farmer (and buyer) take part in every unit, so their own pages grow.
    sellers = farmers[:SOLD_PER_POOL] if unit == 1 else \
        [state.seeded[0]] + farmers[:SOLD_PER_POOL - 1]
    grams = KG_PER_ALLOCATION * 1000
    total_g = grams * len(sellers)
    listing_row = {"coop_id": coop.id, "crop_id": state.crop_id, "grade_id": state.grade_id,
                   "harvested_on": today - timedelta(days=30), "notes": "",
                   "collection_point": state.point, "created_at": now, "updated_at": now}
    sold = _ids(Listing, [{**listing_row, "farmer_user_id": f["user_id"], "quantity_g": grams,
                           "committed_g": grams, "status": "sold"} for f in sellers])
    # The settled pool.
    decided = now - timedelta(days=20)
    pool_row = {"coop_id": coop.id, "crop_id": state.crop_id, "grade_id": state.grade_id,
                "price_version_id": price.id, "currency": coop.currency,
                "created_by_id": state.manager}
    pool_id = _ids(Pool, [{**pool_row, "min_g": total_g // 2, "max_g": total_g,
                           "committed_g": total_g, "closes_at": decided, "status": "confirmed",
                           "decided_at": decided, "final_price_per_kg_minor": state.final,
                           "allocated_g": total_g, "settled_at": decided,
                           "created_at": decided - timedelta(days=5)}])[0]
    farmer_price = price.farmer_price_per_kg_minor
    allocation_ids = _ids(Allocation, [{
        "pool_id": pool_id, "listing_id": listing_id, "farmer_user_id": f["user_id"],
        "quantity_g": grams, "farmer_price_per_kg_minor": farmer_price,
        "farmer_amount_minor": pricing.amount_for(farmer_price, grams), "created_at": decided}
        for f, listing_id in zip(sellers, sold)])
    # Five captured orders, whole kilograms (exact amounts).
    kg_total = total_g // 1000
    shares = [kg_total // len(buyers)] * len(buyers)
    shares[0] += kg_total - sum(shares)
    order_row = {"pool_id": pool_id, "currency": coop.currency, "payment_method": "pm_card_visa",
                 "failure_message": ""}
    tag = f"{coop.id}_{unit}"
    orders = []
    for n, (buyer, kg) in enumerate(zip(buyers, shares)):
        amount = pricing.amount_for(state.final, kg * 1000)
        orders.append({**order_row, "buyer_id": _buyer_of(buyer), "user_id": buyer,
                       "quantity_g": kg * 1000, "status": "captured",
                       "payment_intent_id": f"pi_grow_{tag}_{n}", "charge_id": f"ch_grow_{tag}_{n}",
                       "amount_authorized_minor": amount, "amount_due_minor": amount,
                       "amount_captured_minor": amount, "amount_refunded_minor": 0,
                       "idempotency_key": f"grow:{pool_id}:{n}",
                       "created_at": decided - timedelta(days=2), "updated_at": decided})
    order_ids = _ids(Order, orders)
    # Their invoices, as settlement issues them (one block of numbers for the pool's orders).
    from ..invoices import services as invoices
    invoiced = invoices.issue_for_captures(coop, db.session.get(Pool, pool_id), [
        invoices.Capture(order_id=order_id, buyer_id=order["buyer_id"],
                         quantity_g=order["quantity_g"],
                         amount_minor=order["amount_captured_minor"],
                         charge_id=order["charge_id"])
        for order_id, order in zip(order_ids, orders)], now=decided)
    # Intakes: the first eight deliveries recorded, in full.
    premium_kg = price.premium_per_kg_minor
    intakes = []
    for f, allocation_id in list(zip(sellers, allocation_ids))[:INTAKES_PER_POOL]:
        farmer_amount = pricing.amount_for(farmer_price, grams)
        sale = pricing.amount_for(state.final, grams)
        premium = pricing.amount_for(premium_kg, grams)
        intakes.append({
            "coop_id": coop.id, "pool_id": pool_id, "allocation_id": allocation_id,
            "farmer_user_id": f["user_id"], "grade_id": state.grade_id,
            "price_version_id": price.id, "currency": coop.currency, "received_g": grams,
            "accepted_g": grams, "excess_g": 0, "shortfall_g": 0,
            "farmer_price_per_kg_minor": farmer_price, "buyer_price_per_kg_minor": state.final,
            "farmer_amount_minor": farmer_amount, "sale_minor": sale, "premium_minor": premium,
            "commission_minor": sale - farmer_amount - premium, "coop_cost_minor": 0,
            "refund_minor": 0, "advance_minor": 0,
            "share_withholding_minor": farmer_amount // 10,
            "recorded_by_id": state.manager, "recorded_at": decided + timedelta(days=3)})
    intake_ids = _ids(Intake, intakes)
    _lot(state, pool_id, decided, list(zip(sellers, sold)), intakes, intake_ids)
    # Share accounts of every farmer of the unit (five shares subscribed).
    share_ids = dict(zip([f["user_id"] for f in farmers], _ids(ShareAccount, [{
        "coop_id": coop.id, "user_id": f["user_id"], "subscribed_shares": 5,
        "paid_minor": 0, "redeemed_minor": 0, "status": "active", "opened_at": now}
        for f in farmers])))
    for user_id, account_id in db.session.execute(
            select(ShareAccount.user_id, ShareAccount.id).where(
                ShareAccount.coop_id == coop.id,
                ShareAccount.user_id.in_([f["user_id"] for f in sellers
                                          if f["user_id"] not in share_ids]))):
        share_ids[user_id] = account_id
    # The payout batch: every delivered farmer's net, six paid, two waiting.
    batch_id = _ids(PayoutBatch, [{
        "coop_id": coop.id, "rail": None, "status": "open", "currency": coop.currency,
        "total_minor": sum(i["farmer_amount_minor"] - i["share_withholding_minor"]
                           for i in intakes),
        "idempotency_key": f"{MARK}{unit}", "created_by_id": state.treasurer,
        "created_at": decided + timedelta(days=5), "exported_at": decided + timedelta(days=5)}])[0]
    by_user = {f["user_id"]: f for f in sellers}
    lines = []
    for n, intake in enumerate(intakes):
        f = by_user[intake["farmer_user_id"]]
        paid = n < PAID_PER_BATCH
        lines.append({
            "batch_id": batch_id, "coop_id": coop.id, "farmer_user_id": f["user_id"],
            "rail": f["rail"], "payee_name": f["name"], "national_id": f["national_id"],
            "account": f["account"], "bank_name": f["bank_name"],
            "amount_minor": intake["farmer_amount_minor"] - intake["share_withholding_minor"],
            "currency": coop.currency, "flag": "", "status": "paid" if paid else "pending",
            "reference": f"GROW-{tag}-{n}" if paid else None,
            "confirmed_at": decided + timedelta(days=6) if paid else None,
            "confirmed_by_id": state.treasurer if paid else None,
            "created_at": decided + timedelta(days=5)})
    line_ids = _ids(PayoutLine, lines)

    # The money, through the ledger's bulk writer: captures, intakes, withholding, payouts.
    new = []
    for order_id, order in zip(order_ids, orders):
        new.append(bulk.NewEntry(
            key=f"order:{order_id}:capture", kind="capture", source=("order", order_id),
            external_ref=order["charge_id"], memo=f"card capture, order {order_id}",
            effective_on=decided, document=invoiced.get(order_id), lines=[
                ledger.debit("stripe_clearing", order["amount_captured_minor"]),
                ledger.credit("buyer_deposits", order["amount_captured_minor"])]))
    for intake_id, intake, allocation_id in zip(intake_ids, intakes, allocation_ids):
        farmer = intake["farmer_user_id"]
        when = intake["recorded_at"]
        new.append(bulk.NewEntry(
            key=f"intake:{intake_id}", kind="intake", source=("intake", intake_id),
            memo=f"intake {intake_id}, allocation {allocation_id}, pool {pool_id}",
            effective_on=when, lines=[
                ledger.debit("buyer_deposits", intake["sale_minor"]),
                ledger.credit(ledger.farmer_payable(farmer), intake["farmer_amount_minor"]),
                ledger.credit("premium_fund", intake["premium_minor"]),
                ledger.credit("commission_income", intake["commission_minor"])]))
        new.append(bulk.NewEntry(
            key=f"withhold:intake:{intake_id}", kind="shares_withholding",
            source=("intake", intake_id), effective_on=when, lines=[
                ledger.debit(ledger.farmer_payable(farmer), intake["share_withholding_minor"]),
                ledger.credit(ledger.share_capital(farmer), intake["share_withholding_minor"])]))
    for line_id, line in zip(line_ids, lines):
        if line["status"] == "paid":
            new.append(bulk.NewEntry(
                key=f"payout_line:{line_id}", kind="payout", source=("payout_line", line_id),
                external_ref=line["reference"], effective_on=line["confirmed_at"], lines=[
                    ledger.debit(ledger.farmer_payable(line["farmer_user_id"]),
                                 line["amount_minor"]),
                    ledger.credit("cash" if line["rail"] == "cash" else "bank",
                                  line["amount_minor"])]))
    entry_ids = bulk.post_many(coop, new, user=_user(state.treasurer))
    # Card holds of the captured orders: memorandum entries, marked posted at capture.
    _holds(coop, [(order_id, order["payment_intent_id"], order["amount_authorized_minor"])
                  for order_id, order in zip(order_ids, orders)], status="posted", when=decided)

    # What refers to those entries.
    _rows(ShareMovement, [{
        "coop_id": coop.id, "account_id": share_ids[i["farmer_user_id"]], "kind": "withholding",
        "amount_minor": i["share_withholding_minor"], "idempotency_key": f"withhold:intake:{iid}",
        "ledger_entry_id": entry_ids[f"withhold:intake:{iid}"], "note": "",
        "created_by_id": state.manager, "created_at": i["recorded_at"]}
        for iid, i in zip(intake_ids, intakes)])
    paid_by_user = {i["farmer_user_id"]: i["share_withholding_minor"] for i in intakes}
    db.session.execute(
        update(ShareAccount.__table__).where(ShareAccount.__table__.c.id == bindparam("sid"))
        .values(paid_minor=ShareAccount.__table__.c.paid_minor + bindparam("paid")),
        [{"sid": share_ids[u], "paid": paid} for u, paid in paid_by_user.items()])
    paid_lines = [(line_id, line) for line_id, line in zip(line_ids, lines)
                  if line["status"] == "paid"]
    if paid_lines:
        db.session.execute(
            update(PayoutLine.__table__).where(PayoutLine.__table__.c.id == bindparam("lid"))
            .values(entry_id=bindparam("eid")),
            [{"lid": lid, "eid": entry_ids[f"payout_line:{lid}"]} for lid, _line in paid_lines])
    # The bank's statement: the paid lines sent by bank (half matched) and Stripe's payout in.
    bank = []
    for n, (line_id, line) in enumerate(paid_lines):
        if line["rail"] == "cash":
            continue
        matched = n % 2 == 0
        bank.append({
            "coop_id": coop.id, "line_key": f"grow:{line_id}",
            "booked_on": (decided + timedelta(days=7)).date(),
            "description": f"Pago {line['payee_name']}", "amount_minor": -line["amount_minor"],
            "reference": line["reference"], "status": "matched" if matched else "unmatched",
            "matched_entry_id": entry_ids[f"payout_line:{line_id}"] if matched else None,
            "note": "", "imported_by_id": state.treasurer, "imported_at": now})
    captured = sum(o["amount_captured_minor"] for o in orders)
    bank.append({"coop_id": coop.id, "line_key": f"grow:stripe:{pool_id}",
                 "booked_on": (decided + timedelta(days=2)).date(),
                 "description": "STRIPE PAYOUT", "amount_minor": captured,
                 "reference": f"po_grow_{tag}", "status": "unmatched", "note": "",
                 "matched_entry_id": None, "imported_by_id": state.treasurer,
                 "imported_at": now})
    _rows(BankStatementLine, bank)
    _rows(StripeBalanceTxn, [{
        "coop_id": coop.id, "txn_id": f"txn_grow_{tag}_{n}", "type": "charge",
        "source": order["charge_id"], "amount_minor": order["amount_captured_minor"],
        "fee_minor": 0, "net_minor": order["amount_captured_minor"],
        "currency": coop.currency, "created": decided, "available_on": decided,
        "origin": "api", "status": "matched" if n % 2 == 0 else "unmatched",
        "ledger_amount_minor": order["amount_captured_minor"] if n % 2 == 0 else None,
        "note": "", "imported_at": now} for n, order in enumerate(orders)])

    # An open pool with three authorised orders, on listings of its own.
    open_kg = KG_PER_ALLOCATION * len(sellers)
    _rows(Listing, [{**listing_row, "farmer_user_id": f["user_id"],
                     "quantity_g": KG_PER_ALLOCATION * 1000, "committed_g": 0,
                     "status": "available"} for f in sellers])
    held_kg = 50
    open_id = _ids(Pool, [{**pool_row, "min_g": open_kg * 300, "max_g": open_kg * 900,
                           "committed_g": held_kg * 1000 * OPEN_ORDERS,
                           "closes_at": now + timedelta(days=5), "status": "open",
                           "allocated_g": 0, "created_at": now}])[0]
    held = []
    for n, buyer in enumerate(buyers[:OPEN_ORDERS]):
        amount = pricing.amount_for(state.open_price, held_kg * 1000)
        held.append({**order_row, "pool_id": open_id, "buyer_id": _buyer_of(buyer),
                     "user_id": buyer, "quantity_g": held_kg * 1000, "status": "authorized",
                     "payment_intent_id": f"pi_grow_open_{tag}_{n}",
                     "amount_authorized_minor": amount, "amount_captured_minor": 0,
                     "amount_refunded_minor": 0, "idempotency_key": f"grow:{open_id}:{n}",
                     "created_at": now, "updated_at": now})
    held_ids = _ids(Order, held)
    _holds(coop, [(oid, o["payment_intent_id"], o["amount_authorized_minor"])
                  for oid, o in zip(held_ids, held)], status="pending", when=now)
    # The demo's open pool (coop/demo/pools.py, the coop's first) fills up a little with every unit.
    seeded_pool = db.session.execute(
        select(Pool.id, Pool.max_g, Pool.committed_g).where(
            Pool.coop_id == coop.id, Pool.status == "open")
        .order_by(Pool.id).limit(1)).first()
    if seeded_pool is not None and seeded_pool.committed_g + 2000 <= seeded_pool.max_g:
        small = [{**order_row, "pool_id": seeded_pool.id, "buyer_id": _buyer_of(buyer),
                  "user_id": buyer, "quantity_g": 1000, "status": "authorized",
                  "payment_intent_id": f"pi_grow_demo_{tag}_{n}",
                  "amount_authorized_minor": pricing.amount_for(state.open_price, 1000),
                  "amount_captured_minor": 0, "amount_refunded_minor": 0,
                  "idempotency_key": f"grow:{seeded_pool.id}:{unit}:{n}",
                  "created_at": now, "updated_at": now} for n, buyer in enumerate(buyers[:2])]
        small_ids = _ids(Order, small)
        _holds(coop, [(oid, o["payment_intent_id"], o["amount_authorized_minor"])
                      for oid, o in zip(small_ids, small)], status="pending", when=now)
        db.session.execute(update(Pool.__table__).where(Pool.__table__.c.id == seeded_pool.id)
                           .values(committed_g=Pool.__table__.c.committed_g + 2000))
    # A pending invitation.
    token = hashlib.sha256(f"grow:{tag}".encode()).hexdigest()
    _rows(Invitation, [{"coop_id": coop.id, "role": "farmer",
                        "email": f"invited.{tag}@example.org", "phone": None,
                        "name": f"Invitada {unit}", "details_json": "{}", "token_hash": token,
                        "status": "pending", "invited_by_id": state.manager,
                        "created_at": now, "expires_at": now + timedelta(days=7)}])


_BUYER_OF: dict[int, int] = {}


def _buyer_of(user_id: int) -> int:
    if user_id not in _BUYER_OF:
        _BUYER_OF[user_id] = db.session.scalar(select(User.buyer_id).where(User.id == user_id))
    return _BUYER_OF[user_id]


def _user(user_id: int):
    return db.session.get(User, user_id)


def _holds(coop, orders: list[tuple[int, str, int]], *, status: str, when) -> None:
    """Card holds as ledger.hold writes them, many at once (the ledger's bulk writer)."""
    bulk.holds_many(coop, orders, status=status, when=when)
