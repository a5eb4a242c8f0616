"""Rows put straight into the tables, fast (one INSERT each, no password hashing): for the
tests of lists and pages that must cost the same with 10 rows as with 1,000."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import insert, select

from coop.auth.models import User
from coop.catalog.models import Crop, Grade
from coop.common.models import utcnow
from coop.cooperatives.models import FarmerProfile, Membership
from coop.extensions import db
from coop.listings.models import Listing


def add_listings(farmers: list, coop_ids: list[int], n: int) -> None:
    """n listings spread over farmers, coops, every crop and grade and five statuses, fast."""
    grades = list(db.session.execute(select(Grade.id, Grade.crop_id).join(Crop)
                                     .order_by(Crop.sort_order, Grade.sort_order)))
    statuses = ["available", "available", "committed", "withdrawn", "sold"]
    now = utcnow()
    rows = []
    for i in range(n):
        grade_id, crop_id = grades[i % len(grades)]
        status = statuses[i % len(statuses)]
        quantity = 10_000 + i * 7
        rows.append({
            "coop_id": coop_ids[i % len(coop_ids)], "farmer_user_id": farmers[i % len(farmers)].id,
            "crop_id": crop_id, "grade_id": grade_id, "quantity_g": quantity,
            "committed_g": {"committed": quantity // 2, "sold": quantity}.get(status, 0),
            "harvested_on": date.today() - timedelta(days=i % 200),
            "collection_point": f"Acopio {i % 13}", "notes": "", "status": status,
            "photo_digest": f"{i:064x}" if i % 10 == 0 else None,
            "created_at": now, "updated_at": now})
    db.session.execute(insert(Listing), rows)
    db.session.commit()


def add_members(coop, n: int, start: int = 0, rail: str = "cash") -> None:
    """n farmers in the coop, fast (no password hashing): names "Socia NNNN", numbers "S-NNNN"."""
    now = utcnow()
    users = [{"email": f"socia{i}@example.org", "name": f"Socia {i:04d}", "password_hash": "x",
              "created_at": now} for i in range(start, start + n)]
    db.session.execute(insert(User), users)
    ids = db.session.execute(select(User.id, User.email).where(
        User.email.in_([u["email"] for u in users]))).all()
    by_email = {email: uid for uid, email in ids}
    db.session.execute(insert(FarmerProfile), [
        {"coop_id": coop.id, "user_id": by_email[f"socia{i}@example.org"],
         "member_number": f"S-{i:04d}", "national_id": f"9{i:07d}", "payout_rail": rail,
         "payout_account": "", "bank_name": "", "joined_on": now}
        for i in range(start, start + n)])
    db.session.execute(insert(Membership), [
        {"coop_id": coop.id, "user_id": uid, "role": "farmer", "created_at": now}
        for uid in by_email.values()])
    db.session.commit()
