"""The farmers' side: one weekly purchase document per farmer (Colombia's documento soporte,
Res. DIAN 000167 de 2021, which may group a supplier's purchases of a week; Peru's
liquidación de compra), built from the deliveries (intakes) the coop recorded that week, in
the coop's `support_doc` sequence (the same rules: one block of numbers, never past the
range, nothing burnt by a rollback).

Weeks run Monday to Sunday, UTC, by the intake's recording time, and only a finished week is
documented: an intake is recorded now, so a finished week never gains a delivery. The same
farmer-week never gets two numbers (its source key is unique per coop)."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import select

from ..common.models import utcnow
from ..extensions import db
from . import services
from .models import Invoice


def week_of(moment: datetime) -> date:
    """The Monday of the week (UTC) of `moment`."""
    day = moment.astimezone(timezone.utc).date()
    return day - timedelta(days=day.weekday())


def last_finished_week(now: datetime | None = None) -> date:
    return week_of(now or utcnow()) - timedelta(days=7)


def issue_week(coop, week_start: date, *, now: datetime | None = None) -> dict[int, int]:
    """The purchase documents of the coop's farmers for the week starting `week_start` (a
    Monday), each farmer with deliveries that week getting one (farmer id -> document id,
    those issued before included). Refuses (ValueError) a week not finished yet and a date
    that is not a Monday; 409 numbering_range_exhausted past the authorised range. Flushes."""
    from ..cooperatives.models import FarmerProfile
    from ..intake.models import Intake
    from ..lots.models import Lot
    now = now or utcnow()
    if week_start.weekday() != 0:
        raise ValueError("a week starts on a Monday")
    start = datetime.combine(week_start, time(), timezone.utc)
    end = start + timedelta(days=7)
    if end > now:
        raise ValueError("the week is not over yet")
    rows = db.session.execute(
        select(Intake.id, Intake.farmer_user_id, Intake.pool_id, Intake.accepted_g,
               Intake.farmer_price_per_kg_minor, Intake.farmer_amount_minor, Intake.recorded_at,
               Intake.grade_id)
        .where(Intake.coop_id == coop.id, Intake.recorded_at >= start, Intake.recorded_at < end,
               Intake.farmer_amount_minor > 0)
        .order_by(Intake.farmer_user_id, Intake.id)).all()
    keys = {r.farmer_user_id: f"week:{r.farmer_user_id}:{week_start.isoformat()}" for r in rows}
    found = services._existing(coop.id, list(keys.values()))
    todo = [r for r in rows if keys[r.farmer_user_id] not in found]
    if todo:
        from ..auth.models import User
        from ..catalog.models import Crop, Grade
        from ..pools.models import Pool
        farmer_ids = sorted({r.farmer_user_id for r in todo})
        names = dict(db.session.execute(select(User.id, User.name)
                                        .where(User.id.in_(farmer_ids))).all())
        # The member number and identity document as they stand now: the document keeps
        # them (a later change of the profile does not touch an issued one).
        members = {row.user_id: row for row in db.session.execute(
            select(FarmerProfile.user_id, FarmerProfile.member_number,
                   FarmerProfile.tax_id_type, FarmerProfile.tax_id)
            .where(FarmerProfile.coop_id == coop.id, FarmerProfile.user_id.in_(farmer_ids)))}
        pool_ids = sorted({r.pool_id for r in todo})
        pools = {p.id: p for p in db.session.execute(
            select(Pool.id, Crop.slug, Crop.name_es, Crop.name_en)
            .join(Crop, Crop.id == Pool.crop_id).where(Pool.id.in_(pool_ids)))}
        lots = dict(db.session.execute(select(Lot.pool_id, Lot.code)
                                       .where(Lot.pool_id.in_(pool_ids))).all())
        grades = {g.id: g for g in db.session.execute(
            select(Grade.id, Grade.code, Grade.name_es, Grade.name_en)
            .where(Grade.id.in_(sorted({r.grade_id for r in todo}))))}
        buyer = json.dumps(services._seller(coop), sort_keys=True)
        by_farmer: dict[int, list] = {}
        for r in todo:
            p, g = pools[r.pool_id], grades[r.grade_id]
            by_farmer.setdefault(r.farmer_user_id, []).append({
                "intake_id": r.id, "crop": p.slug, "crop_es": p.name_es, "crop_en": p.name_en,
                "grade": g.code, "grade_es": g.name_es, "grade_en": g.name_en,
                "pool_id": r.pool_id, "lot": lots.get(r.pool_id, ""),
                "quantity_g": r.accepted_g, "unit_price_minor": r.farmer_price_per_kg_minor,
                "tax_bps": 0, "net_minor": r.farmer_amount_minor, "tax_minor": 0,
                "total_minor": r.farmer_amount_minor,
                "delivered_on": r.recorded_at.date().isoformat()})
        documents = []
        for farmer_id, lines in by_farmer.items():
            total = sum(line["total_minor"] for line in lines)
            member = members.get(farmer_id)
            supplier = {"name": names.get(farmer_id, ""),
                        "tax_id": (member.tax_id or "") if member else "",
                        "tax_id_type": (member.tax_id_type or "") if member else "",
                        "member_number": member.member_number if member else "",
                        "country": coop.country, "address": ""}
            documents.append({
                "coop_id": coop.id, "kind": "support_doc", "source_key": keys[farmer_id],
                "issued_at": now, "currency": coop.currency, "subtotal_minor": total,
                "tax_minor": 0, "total_minor": total, "buyer_id": None,
                "farmer_user_id": farmer_id, "order_id": None, "pool_id": None,
                "refund_id": None, "credits_invoice_id": None, "week_start": week_start,
                "payment": "payout", "paid_at": None, "seller_json": buyer,
                "customer_json": json.dumps(supplier, sort_keys=True),
                "lines_json": json.dumps(lines, sort_keys=True)})
        services._number_rows(coop.id, "support_doc", documents)
        found.update(services._insert(documents))
    return {farmer_id: found[key] for farmer_id, key in keys.items()}


def document_for_intake(farmer_user_id: int, coop_id: int, recorded_at: datetime
                        ) -> Invoice | None:
    """The purchase document whose week holds a delivery (None: not issued yet)."""
    return db.session.scalar(select(Invoice).where(
        Invoice.coop_id == coop_id, Invoice.kind == "support_doc",
        Invoice.farmer_user_id == farmer_user_id, Invoice.week_start == week_of(recorded_at)))


def issue_last_week_everywhere(now: datetime | None = None) -> int:
    """Every coop's documents of the last finished week (the weekly job); each coop in its
    own transaction. Returns how many farmers have one for that week."""
    from ..cooperatives.models import Cooperative
    week = last_finished_week(now)
    count = 0
    for coop_id in list(db.session.scalars(select(Cooperative.id).order_by(Cooperative.id))):
        coop = db.session.get(Cooperative, coop_id)
        try:
            count += len(issue_week(coop, week, now=now))
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return count
