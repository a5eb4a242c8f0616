"""Plot register import benchmark (issue 13): a coop of 10,000 members imports a KML register
of 10,000 plots (polygons of about 1 to 3 ha with VERTICES positions each, in Cauca, every
member's plot new, so each is created), then the same file again (every plot exists: a new
version each). Timed: the whole import (parsing, checking every geometry with shapely and
pyproj, overlaps through the STRtree, the bulk inserts) and its commit.

    .venv/bin/python -m bench.plots_import_bench [--db sqlite|postgresql|both] [--plots 10000]
        [--vertices 12] [--runs 3]
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

from bench.common import databases, fresh_app, load, seed_market, sqlite_run_url


def kml(members: int, vertices: int) -> bytes:
    """One Placemark per member: a polygon (a circle's `vertices` corners) on a grid of
    cells 300 m apart, so that no two overlap."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/'
             '2.2"><Document>']
    side = math.ceil(math.sqrt(members))
    for n in range(members):
        cx = -76.90 + (n % side) * 0.0027
        cy = 2.20 + (n // side) * 0.0027
        r = 0.0005 + (n % 5) * 0.0001
        ring = [(cx + r * math.cos(2 * math.pi * k / vertices),
                 cy + r * math.sin(2 * math.pi * k / vertices)) for k in range(vertices)]
        ring.append(ring[0])
        coords = " ".join(f"{x:.7f},{y:.7f},1650" for x, y in ring)
        parts.append(f"<Placemark><name>Finca {n}</name><ExtendedData>"
                     f'<Data name="member_number"><value>B{n}</value></Data>'
                     f'<Data name="Area"><value>{math.pi * (r * 111_000) ** 2 / 10_000:.2f}'
                     f"</value></Data></ExtendedData><Polygon><outerBoundaryIs><LinearRing>"
                     f"<coordinates>{coords}</coordinates></LinearRing></outerBoundaryIs>"
                     f"</Polygon></Placemark>")
    parts.append("</Document></kml>")
    return "\n".join(parts).encode()


def run(name: str, url: str, plots: int, vertices: int, runs: int) -> None:
    from sqlalchemy import func, select

    from coop.auth.models import User
    from coop.cooperatives.models import Cooperative
    from coop.extensions import db
    from coop.plots import register
    from coop.plots.models import PlotVersion

    data = kml(plots, vertices)
    times = {"create": [], "again": []}
    for _run in range(runs):
        # SQLite: a new file each run (fresh_app empties only a PostgreSQL database).
        app = fresh_app(sqlite_run_url() if url.startswith("sqlite") else url)
        coop_id, manager_id, _buyers = seed_market(app, farmers=plots)
        with app.app_context():
            coop = db.session.get(Cooperative, coop_id)
            manager = db.session.get(User, manager_id)
            for label in ("create", "again"):
                start = time.perf_counter()
                report = register.import_register(coop, "register.kml", data, by=manager)
                db.session.commit()
                times[label].append(time.perf_counter() - start)
                refused = [r for r in report.rows if r.status == "refused"]
                assert not refused, refused[:3]
                assert report.stored == plots
                coop = db.session.get(Cooperative, coop_id)
                manager = db.session.get(User, manager_id)
            versions = db.session.scalar(select(func.count(PlotVersion.id)))
            assert versions == 2 * plots
            db.session.remove()
    for label, what in (("create", "new plots"), ("again", "a new version of each")):
        print(f"{name}: import of a KML register of {plots:,} plots ({vertices} vertices, "
              f"{len(data) / 1e6:.1f} MB), {what}: median {statistics.median(times[label]):.1f} s "
              f"(runs {', '.join(f'{t:.1f}' for t in times[label])}; {load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="both", choices=["sqlite", "postgresql", "both"])
    parser.add_argument("--plots", type=int, default=10_000)
    parser.add_argument("--vertices", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name, url in databases(args.db):
        run(name, url, args.plots, args.vertices, args.runs)


if __name__ == "__main__":
    main()
