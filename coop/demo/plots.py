"""The demo's plots for the EUDR (issue 13): geometry in Cauca (Colombia: around Piendamó and
El Tambo) and in Cusco (Pichari, in the VRAEM) and San Martín (Lamas) for Peru, recorded,
declared and consented through the plots domain's services, as a field technician would.

Each farmer's plots get a point (up to 4 ha) and every fifth farmer a larger plot above 4 ha
with its boundary (an irregular polygon; its declared area is the one measured, to the
hundredth of a hectare). One farmer per coop is left incomplete so that the pages show both
states: in Colombia member CO-0002 (no geometry, no declarations, no consent), in Peru
PE-0032 (geometry and declarations, but no consent)."""
from __future__ import annotations

import math
import random
from decimal import Decimal

from sqlalchemy import select

from ..cooperatives.models import Cooperative, FarmerProfile, Membership
from ..extensions import db
from ..plots import geometry as geo
from ..plots import services as plots

# (lon, lat) of each area's first cell; plots sit on a grid of cells about 1.1 km apart.
AREAS = {"CO": [(-76.620000, 2.520000)],
         "PE": [(-73.840000, -12.500000), (-76.520000, -6.420000)]}
CELL = 0.010
INCOMPLETE = {"CO-0002": "bare", "PE-0032": "no_consent"}
TENURES = [("title", "Matrícula inmobiliaria {n}"), ("certificate", "Certificado de posesión {n}"),
           ("possession", "Acta de colindantes {n}"), ("collective", "Resolución {n}")]


def _fmt(x: float) -> str:
    return f"{x:.6f}"


def _point(lon: float, lat: float) -> dict:
    return geo.loads('{"type":"Point","coordinates":[%s,%s]}' % (_fmt(lon), _fmt(lat)))


def _polygon(lon: float, lat: float, hectares: float, rng: random.Random) -> dict:
    """An irregular 9-sided boundary of about `hectares` around (lon, lat)."""
    sides = 9
    radius = math.sqrt(hectares * 10_000 / (sides / 2 * math.sin(2 * math.pi / sides)))
    ring = []
    for k in range(sides):
        angle = 2 * math.pi * k / sides
        r = radius * rng.uniform(0.9, 1.1)
        dx, dy = r * math.cos(angle), r * math.sin(angle)
        ring.append((lon + dx / (111_320 * math.cos(math.radians(lat))), lat + dy / 110_574))
    ring.append(ring[0])
    text = ",".join(f"[{_fmt(x)},{_fmt(y)}]" for x, y in ring)
    return geo.loads('{"type":"Polygon","coordinates":[[' + text + "]]}")


def seed_plots() -> None:
    rng = random.Random(2020)
    for coop in db.session.scalars(select(Cooperative).order_by(Cooperative.id)):
        areas = AREAS.get(coop.country)
        if not areas:
            continue
        manager = db.session.scalar(select(Membership).where(
            Membership.coop_id == coop.id, Membership.role == "manager")).user
        profiles = list(db.session.scalars(select(FarmerProfile).where(
            FarmerProfile.coop_id == coop.id).order_by(FarmerProfile.id)))
        for index, profile in enumerate(profiles):
            state = INCOMPLETE.get(profile.member_number)
            base_lon, base_lat = areas[index % len(areas)]
            cell = index // len(areas)
            lon = base_lon + (cell % 6) * CELL
            lat = base_lat + (cell // 6) * CELL
            if index % 5 == 0:
                shape = _polygon(lon + CELL / 2, lat + CELL / 2, rng.uniform(4.5, 7.5), rng)
                measured = geo.area_m2(geo.check(shape, declared_area_m2=1, country=None
                                                 ).shape)
                plots.add_plot(profile, name="Potrero alto",
                               hectares=Decimal(measured).scaleb(-4).quantize(Decimal("0.01")),
                               replaced_crop="coca", illicit_hectares="1",
                               licit_crop="coffee" if coop.country == "CO" else "cacao")
                db.session.refresh(profile)
            if state == "bare":
                continue
            for k, plot in enumerate(profile.plots):
                if plot.name == "Potrero alto":
                    geometry = shape
                else:
                    geometry = _point(lon + 0.002 + k * 0.0015, lat + 0.002 + k * 0.001)
                recorded = plots.record_geometry(plot, geometry, country=coop.country,
                                                 source="gps_point" if plot.name !=
                                                 "Potrero alto" else "gps_walk",
                                                 accuracy_m=rng.choice([4, 6, 8, 9, 12]),
                                                 by=manager)
                assert not [w for w in recorded.warnings if w.code == "overlap"]
                plots.declare_cutoff(plot, land_use="not_forest", evidence_kind="satellite",
                                     evidence_ref=f"JRC TMF 2020 / GFW {coop.country}-"
                                                  f"{plot.id:05d}",
                                     note="Cafetal y rastrojo desde antes de 2020.",
                                     by=manager)
                tenure, reference = TENURES[(index + k) % len(TENURES)]
                plots.declare_legality(plot, tenure_type=tenure,
                                       reference=reference.format(n=f"{index + 1:03d}-{k}"),
                                       by=manager)
            if state != "no_consent":
                plots.record_consent(profile, by=manager, locale="es")
