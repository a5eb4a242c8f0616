"""Demo prices and open pools, added to `flask seed-demo`."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..auth.models import User
from ..common.models import utcnow
from ..cooperatives.models import Cooperative
from ..extensions import db
from ..pricing import services as pricing
from ..pools import services

# (crop, grade, floor, farmer price, commission bps, premium, tiers) in major units per kg.
PRICES = {
    "COP": [("coffee", "fnc94", "20000", "22000", 800, "1800", "1000 600\n3000 400"),
            ("coffee", "sca80", "22000", "25000", 800, "1800", "1000 600"),
            ("coffee", "sca85", "24000", "28500", 800, "1800", "1000 600"),
            ("cacao", "export", "26000", "30000", 700, "1000", "2000 500"),
            ("cacao", "fine", "28000", "33000", 700, "1000", ""),
            ("cacao", "ordinary", "22000", "24000", 700, "1000", "")],
    "PEN": [("cacao", "export", "17", "19.50", 700, "0.90", "2000 500"),
            ("cacao", "fine", "19", "22", 700, "0.90", ""),
            ("cacao", "ordinary", "14", "16", 700, "0.90", ""),
            ("coffee", "fnc94", "12", "14", 800, "1.60", ""),
            ("coffee", "sca80", "14", "16.50", 800, "1.60", ""),
            ("coffee", "sca85", "16", "19", 800, "1.60", "")],
}
POOLS = {"COP": ("coffee", "sca85", "500", "1500"), "PEN": ("cacao", "export", "300", "900")}


def seed() -> None:
    for coop in db.session.scalars(select(Cooperative).order_by(Cooperative.id)):
        manager = next((m.user for m in coop.memberships if m.role == "manager"), None)
        if manager is None or coop.currency not in PRICES:
            continue
        for crop, grade, floor, farmer, bps, premium, tiers in PRICES[coop.currency]:
            pricing.set_price(coop, manager, crop=crop, grade=grade, floor=floor,
                              farmer_price=farmer, commission_kind="bps", commission=bps,
                              premium=premium, tiers_text=tiers, note="demo")
        crop, grade, min_kg, max_kg = POOLS[coop.currency]
        free = services.free_supply_g(coop.id, *_ids(crop, grade))
        max_kg = min(int(max_kg), free // 1000)
        if max_kg >= int(min_kg):
            services.open_pool(coop, manager, crop=crop, grade=grade, min_kg=min_kg,
                               max_kg=str(max_kg), closes_at=utcnow() + timedelta(days=5))


def _ids(crop_slug, grade_code):
    from ..catalog import services as catalog
    crop, grade = catalog.resolve(crop_slug, grade_code)
    return crop.id, grade.id


__all__ = ["seed", "User"]
