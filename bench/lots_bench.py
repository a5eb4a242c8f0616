"""EUDR pack benchmark (issue 13): a coffee lot of 2,000 farmers, each with a plot whose
boundary has about 50 vertices (six decimals, in Cauca), complete for the EUDR (cut-off and
legality declared, consent given), bought by two buyers. Timed, for a buyer:
- the first export of the lot's GeoJSON FeatureCollection (eudr.issue: the lot's detail and
  pinned versions read, the gaps checked, the GeoJSON written from the stored geometry text,
  stored in eudr_packs with its digest, committed) — target under 2 s;
- a later download (the stored bytes);
- the first export of the JSON data pack (every producer's own base64 GeoJSON inside).
The data set is written with bulk inserts (pool, orders, allocations, intakes, plots, plot
versions, consents, the lot and its sources), on the run's own database.

`--kml` also runs the 10,000-plot KML register import of bench/plots_import_bench.py (one
run) so that both figures of the issue print together (`make bench` runs that bench on its
own already).

    .venv/bin/python -m bench.lots_bench [--db sqlite|postgresql|both] [--farmers 2000]
        [--vertices 50] [--runs 3] [--kml]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from datetime import date, timedelta

from bench.common import analyze, databases, fresh_app, load, seed_market, sqlite_run_url


def _ids(model, rows: list[dict]) -> list[int]:
    from sqlalchemy import insert

    from coop.extensions import db
    table = model.__table__
    out: list[int] = []
    for start in range(0, len(rows), 1000):
        result = db.session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            rows[start:start + 1000])
        out.extend(result.scalars())
    return out


def ring_text(n: int, vertices: int) -> tuple[str, int]:
    """A counter-clockwise boundary of `vertices` corners (closed: one more position) on a
    grid of cells 300 m apart, and its area in m2 (about 1 to 2.5 ha)."""
    side = math.ceil(math.sqrt(2000))
    cx = -76.90 + (n % side) * 0.0027
    cy = 2.20 + (n // side) * 0.0027
    r = 0.0005 + (n % 5) * 0.0001
    ring = [(cx + r * math.cos(2 * math.pi * k / vertices),
             cy + r * math.sin(2 * math.pi * k / vertices)) for k in range(vertices)]
    ring.append(ring[0])
    text = ",".join(f"[{x:.6f},{y:.6f}]" for x, y in ring)
    area = int(math.pi * (r * 111_000) ** 2 * (vertices / (2 * math.pi))
               * math.sin(2 * math.pi / vertices))
    return '{"type":"Polygon","coordinates":[[' + text + "]]}", area


def build(app, farmers: int, vertices: int) -> tuple[int, int]:
    """The lot and a buyer's user id."""
    from sqlalchemy import select, update

    from coop.auth.models import User
    from coop.catalog import services as catalog
    from coop.common.models import utcnow
    from coop.cooperatives.models import FarmerProfile
    from coop.extensions import db
    from coop.intake.models import Intake
    from coop.listings.models import Listing
    from coop.lots.models import Lot, LotSequence, LotSource, LotSourcePlot
    from coop.plots.models import Plot, PlotVersion, TraceConsent
    from coop.pools.models import Allocation, Order, Pool
    from coop.pricing.models import PriceVersion

    coop_id, manager_id, buyer_users = seed_market(app, farmers=farmers, buyers=2)
    with app.app_context():
        crop, grade = catalog.resolve("coffee", "sca85")
        price = db.session.scalar(select(PriceVersion).where(PriceVersion.coop_id == coop_id))
        now = utcnow()
        decided = now - timedelta(days=20)
        harvested = date.today() - timedelta(days=30)
        profiles = db.session.execute(
            select(FarmerProfile.id, FarmerProfile.user_id).where(
                FarmerProfile.coop_id == coop_id).order_by(FarmerProfile.id)).all()
        listings = dict(db.session.execute(select(Listing.farmer_user_id, Listing.id).where(
            Listing.coop_id == coop_id)).tuples().all())
        db.session.execute(update(Listing).where(Listing.coop_id == coop_id).values(
            harvested_on=harvested, status="sold"))
        grams = 50_000
        total = grams * len(profiles)
        pool_id = _ids(Pool, [{
            "coop_id": coop_id, "crop_id": crop.id, "grade_id": grade.id,
            "price_version_id": price.id, "currency": "COP", "created_by_id": manager_id,
            "min_g": total // 2, "max_g": total, "committed_g": total, "closes_at": decided,
            "status": "confirmed", "decided_at": decided,
            "final_price_per_kg_minor": 3_000_000, "allocated_g": total,
            "settled_at": decided, "created_at": decided - timedelta(days=5)}])[0]
        buyers = db.session.execute(select(User.id, User.buyer_id).where(
            User.id.in_(buyer_users)).order_by(User.id)).all()
        _ids(Order, [{
            "pool_id": pool_id, "currency": "COP", "payment_method": "pm_card_visa",
            "failure_message": "", "buyer_id": buyer_id, "user_id": user_id,
            "quantity_g": total // 2, "status": "captured",
            "payment_intent_id": f"pi_lots_{n}", "charge_id": f"ch_lots_{n}",
            "amount_authorized_minor": 1, "amount_due_minor": 1, "amount_captured_minor": 1,
            "amount_refunded_minor": 0, "idempotency_key": f"lots:{n}",
            "created_at": decided, "updated_at": decided}
            for n, (user_id, buyer_id) in enumerate(buyers)])
        farmer_price = price.farmer_price_per_kg_minor
        allocation_ids = _ids(Allocation, [{
            "pool_id": pool_id, "listing_id": listings[uid], "farmer_user_id": uid,
            "quantity_g": grams, "farmer_price_per_kg_minor": farmer_price,
            "farmer_amount_minor": farmer_price * 50, "created_at": decided}
            for _pid, uid in profiles])
        intake_ids = _ids(Intake, [{
            "coop_id": coop_id, "pool_id": pool_id, "allocation_id": aid,
            "farmer_user_id": uid, "grade_id": grade.id, "price_version_id": price.id,
            "currency": "COP", "received_g": grams, "accepted_g": grams, "excess_g": 0,
            "shortfall_g": 0, "farmer_price_per_kg_minor": farmer_price,
            "buyer_price_per_kg_minor": 3_000_000, "farmer_amount_minor": farmer_price * 50,
            "sale_minor": 150_000_000, "premium_minor": 0,
            "commission_minor": 150_000_000 - farmer_price * 50, "coop_cost_minor": 0,
            "refund_minor": 0, "advance_minor": 0, "share_withholding_minor": 0,
            "recorded_by_id": manager_id, "recorded_at": decided + timedelta(days=3)}
            for aid, (_pid, uid) in zip(allocation_ids, profiles)])
        shapes = [ring_text(n, vertices) for n in range(len(profiles))]
        plot_ids = _ids(Plot, [{"farmer_id": pid, "name": f"Finca {n}", "area_m2": area,
                                "illicit_area_m2": 0}
                               for n, ((pid, _uid), (_t, area)) in
                               enumerate(zip(profiles, shapes))])
        version_ids = _ids(PlotVersion, [{
            "plot_id": plot_id, "version": 1, "change": "legality", "declared_area_m2": area,
            "geometry_kind": "polygon", "geometry_json": text, "geometry_source": "kml",
            "computed_area_m2": area, "geometry_by_id": manager_id, "geometry_at": now,
            "land_use_2020": "not_forest", "cutoff_evidence_kind": "satellite",
            "cutoff_evidence_ref": f"GFW-2020-{plot_id}", "cutoff_note": "",
            "cutoff_by_id": manager_id, "cutoff_at": now, "tenure_type": "title",
            "tenure_reference": f"Matrícula 120-{plot_id}", "tenure_by_id": manager_id,
            "tenure_at": now, "created_by_id": manager_id, "created_at": now}
            for plot_id, (text, area) in zip(plot_ids, shapes)])
        db.session.execute(update(Plot), [{"id": p, "current_version_id": v}
                                          for p, v in zip(plot_ids, version_ids)])
        consent_ids = _ids(TraceConsent, [{
            "coop_id": coop_id, "farmer_id": pid, "text": "Consiento.", "locale": "es",
            "recorded_by_id": manager_id, "given_at": now} for pid, _uid in profiles])
        db.session.add(LotSequence(coop_id=coop_id, last_number=1))
        lot_id = _ids(Lot, [{"coop_id": coop_id, "pool_id": pool_id, "crop_id": crop.id,
                             "number": 1, "code": f"CO-{coop_id}-2026-0001", "eudr": True,
                             "created_at": now}])[0]
        source_ids = _ids(LotSource, [{
            "lot_id": lot_id, "intake_id": iid, "listing_id": listings[uid], "farmer_id": pid,
            "farmer_user_id": uid, "grade_id": grade.id, "accepted_g": grams,
            "harvested_on": harvested, "consent_id": cid, "created_at": now}
            for iid, (pid, uid), cid in zip(intake_ids, profiles, consent_ids)])
        _ids(LotSourcePlot, [{"source_id": s, "plot_id": p, "plot_version_id": v}
                             for s, p, v in zip(source_ids, plot_ids, version_ids)])
        db.session.commit()
        return lot_id, buyers[0][0]


def run(name: str, url: str, farmers: int, vertices: int, runs: int) -> None:
    import json

    from coop.auth.models import User
    from coop.extensions import db
    from coop.lots import eudr
    from coop.lots import services as lots

    times: dict[str, list[float]] = {"geojson": [], "again": [], "json": []}
    size = 0
    for _run in range(runs):
        app = fresh_app(sqlite_run_url() if url.startswith("sqlite") else url)
        lot_id, buyer_id = build(app, farmers, vertices)
        analyze(app)
        with app.app_context():
            assert lots.gaps(lots.detail(lots.get_lot(lot_id))) == []
            db.session.remove()
            for label, fmt in (("geojson", "geojson"), ("again", "geojson"), ("json", "json")):
                buyer = db.session.get(User, buyer_id)
                start = time.perf_counter()
                pack = eudr.issue(buyer, lot_id, fmt)
                data = pack.data
                db.session.commit()
                times[label].append(time.perf_counter() - start)
                if fmt == "geojson":
                    doc = json.loads(data)
                    assert len(doc["features"]) == farmers
                    size = len(data)
                db.session.remove()
    labels = {"geojson": "first export of the GeoJSON (rendered, stored)",
              "again": "the GeoJSON again (the stored bytes)",
              "json": "first export of the JSON data pack"}
    for label, what in labels.items():
        print(f"{name}: lot of {farmers:,} farmers ({vertices} vertices a plot, GeoJSON "
              f"{size / 1e6:.1f} MB), {what}: median {statistics.median(times[label]):.2f} s "
              f"(runs {', '.join(f'{t:.2f}' for t in times[label])}; target < 2 s for the "
              f"GeoJSON; {load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--farmers", type=int, default=2_000)
    parser.add_argument("--vertices", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kml", action="store_true",
                        help="also the 10,000-plot KML register import (plots_import_bench)")
    args = parser.parse_args()
    for name, url in databases(args.db):
        run(name, url, args.farmers, args.vertices, args.runs)
        if args.kml:
            from bench import plots_import_bench
            plots_import_bench.run(name, url, 10_000, 12, 1)


if __name__ == "__main__":
    main()
