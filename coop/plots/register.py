"""A coop's whole plot register at once: a GeoJSON FeatureCollection or a KML file of many
plots, each matched to a member and to one of their plots, checked like every other way in
(coop.plots.geometry.check), stored as new versions, and reported row by row.

Matching (the choices where the issue is silent):
- the member by **member number**: GeoJSON property `member_number` (also `MemberNumber`,
  `member`); KML `<ExtendedData>` Data/SimpleData `member_number` (same variants);
- the plot by **name** among that member's plots: property `plot_name` (also `plot`,
  `ProductionPlace`), else GeoJSON `name`, else the KML Placemark's `<name>`; compared
  without case or surrounding spaces;
- a member with **no plot of that name** gets one, its declared area from the file's `Area`
  (hectares, the TRACES property; also `area_ha`, `hectares`), else the polygon's computed
  area (said in the row's warnings); a point without `Area` is refused (a point says
  nothing of its size);
- an existing plot keeps its declared area (the farmer's); the file's `Area` is not
  applied to it, the computed area is compared with the declared one as always.
Rows refused do not stop the others: what can be stored is, in the request's one
transaction. Two rows for the same member's plot: the second is refused.

Set-based: a fixed number of queries whatever the file's size (members, plots, versions,
the coop's current geometries: one query each, in chunks), new plots and versions inserted
in bulk, and the overlap check through shapely's STRtree over the coop's current geometries
and the file's."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from sqlalchemy import func, insert, select, update

from ..common.models import utcnow
from ..extensions import db
from . import files
from . import geometry as geo
from . import services
from .models import Plot, PlotVersion

CHUNK = 500
MEMBER_KEYS = ("member_number", "member", "membernumber")
PLOT_KEYS = ("plot_name", "plot", "ProductionPlace", "name")
AREA_KEYS = ("Area", "area_ha", "hectares")
STORED, WARNED, REFUSED = "stored", "warned", "refused"


@dataclass
class Row:
    """What became of one feature of the file."""
    number: int
    member_number: str | None = None
    plot_name: str | None = None
    status: str = REFUSED
    messages: list = field(default_factory=list)
    plot_id: int | None = None
    created: bool = False


@dataclass
class Report:
    rows: list
    source: str

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def stored(self) -> int:
        return self.count(STORED) + self.count(WARNED)


def _chunks(values: list):
    for i in range(0, len(values), CHUNK):
        yield values[i:i + CHUNK]


def _area_m2(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        ha = Decimal(str(text).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(_("Area must be hectares as a number, like 2.5 (it is %(v)s).",
                           v=str(text)[:20]))
    if not ha.is_finite() or ha <= 0 or ha > 100_000:
        raise ValueError(_("Area must be more than zero hectares and realistic."))
    return int((ha * 10_000).to_integral_value())


def import_register(coop, filename: str, data: bytes, *, by) -> Report:
    """Reads the file (FileRefused when it cannot be read at all), then stores each row it
    can, returning the report of every row."""
    from shapely import STRtree
    from shapely.geometry import shape as to_shape
    from ..auth.models import User
    from ..cooperatives.models import FarmerProfile
    features = files.read(filename, data)
    source = files.kind_of(filename, data)
    rows = [Row(f.number) for f in features]
    wanted = {}
    for feature, row in zip(features, rows):
        row.member_number = feature.prop(*MEMBER_KEYS)
        row.plot_name = feature.prop(*PLOT_KEYS)
        if feature.error is not None:
            row.messages.append(str(feature.error))
        elif not row.member_number:
            row.messages.append(_("No member number (the property member_number)."))
        elif not row.plot_name:
            row.messages.append(_("No plot name (the property plot_name, or the "
                                  "placemark's name)."))
        else:
            wanted.setdefault(row.member_number, None)
    # The members, by member number: one query per chunk.
    members = {}
    for chunk in _chunks(list(wanted)):
        for pid, number, name in db.session.execute(
                select(FarmerProfile.id, FarmerProfile.member_number, User.name)
                .join(User, User.id == FarmerProfile.user_id)
                .where(FarmerProfile.coop_id == coop.id,
                       FarmerProfile.member_number.in_(chunk))):
            members[number] = (pid, name)
    # Their plots, by (member, name).
    plots = {}
    for chunk in _chunks([pid for pid, _n in members.values()]):
        for plot in db.session.scalars(select(Plot).where(Plot.farmer_id.in_(chunk))):
            plots.setdefault((plot.farmer_id, plot.name.strip().lower()), plot)
    settings = services.settings_for(coop.id)
    seen, accepted = set(), []
    for feature, row in zip(features, rows):
        if row.messages:
            continue
        member = members.get(row.member_number)
        if member is None:
            row.messages.append(_("No member of the coop has the number %(n)s.",
                                  n=row.member_number[:32]))
            continue
        pid, farmer_name = member
        key = (pid, row.plot_name.strip().lower())
        if key in seen:
            row.messages.append(_("This member's plot \"%(plot)s\" is already in the file "
                                  "above: one row per plot.", plot=row.plot_name[:120]))
            continue
        seen.add(key)
        if len(row.plot_name.strip()) > 120:
            row.messages.append(_("The plot name is longer than 120 characters."))
            continue
        plot = plots.get(key)
        notes = []
        try:
            declared = plot.area_m2 if plot is not None else _area_m2(feature.prop(*AREA_KEYS))
        except ValueError as exc:
            row.messages.append(str(exc.args[0]))
            continue
        checked = geo.check(feature.geometry,
                            declared_area_m2=declared or 0, country=coop.country,
                            tolerance_bps=settings.area_tolerance_bps,
                            max_accuracy_m=settings.gps_accuracy_max_m)
        if checked.errors:
            row.messages.extend(str(p.message) for p in checked.errors)
            continue
        if declared is None:
            if checked.computed_area_m2 is None:
                row.messages.append(_("A new plot given as a point needs its Area in "
                                      "hectares."))
                continue
            declared = max(1, checked.computed_area_m2)
            notes.append(_("Declared area taken from the boundary: %(ha)s ha.",
                           ha=geo._hectares(declared)))
            checked.warnings = [w for w in checked.warnings if w.code != "area_differs"]
        row.messages.extend(notes + [str(w.message) for w in checked.warnings])
        accepted.append((row, pid, farmer_name, plot, declared, checked))
    now = utcnow()
    by_id = getattr(by, "id", None)
    # New plots, in bulk.
    new = [(row, pid, declared) for row, pid, _n, plot, declared, _c in accepted
           if plot is None]
    if new:
        # Inserted in bulk, then their ids read back by (member, name), which no plot of
        # theirs had (RETURNING in parameter order is row by row on SQLite).
        db.session.execute(insert(Plot), [
            {"farmer_id": pid, "name": row.plot_name.strip(), "area_m2": declared,
             "replaced_crop": None, "illicit_area_m2": 0, "licit_crop": None}
            for row, pid, declared in new])
        made = {}
        for chunk in _chunks(sorted({pid for _r, pid, _d in new})):
            for plot_id, farmer_id, name in db.session.execute(
                    select(Plot.id, Plot.farmer_id, Plot.name)
                    .where(Plot.farmer_id.in_(chunk), Plot.current_version_id.is_(None))):
                made.setdefault((farmer_id, name), plot_id)
        for row, pid, _d in new:
            row.plot_id, row.created = made[(pid, row.plot_name.strip())], True
    for row, _pid, _n, plot, _d, _c in accepted:
        if plot is not None:
            row.plot_id = plot.id
    plot_ids = [row.plot_id for row, *_rest in accepted]
    # Lock the plots (as _new_version does, all at once), then what versions exist.
    numbers, current = {}, {}
    existing = [pid for pid in plot_ids if pid is not None]
    for chunk in _chunks(existing):
        db.session.execute(select(Plot.id).where(Plot.id.in_(chunk)).with_for_update())
        for plot_id, number in db.session.execute(
                select(PlotVersion.plot_id, func.max(PlotVersion.version))
                .where(PlotVersion.plot_id.in_(chunk)).group_by(PlotVersion.plot_id)):
            numbers[plot_id] = number
        for plot_id, version in db.session.execute(
                select(Plot.id, PlotVersion).join(PlotVersion,
                                                  PlotVersion.id == Plot.current_version_id)
                .where(Plot.id.in_(chunk))):
            current[plot_id] = version
    # Overlaps: the coop's current geometries (other than the plots replaced here) and the
    # file's, in one STRtree.
    _overlaps(coop, accepted, set(existing), to_shape, STRtree)
    values = []
    for row, pid, _n, _plot, declared, checked in accepted:
        before = current.get(row.plot_id)
        copied = {name: getattr(before, name) for name in services._COPIED} if before else {}
        min_lon, min_lat, max_lon, max_lat = checked.bbox_e7
        copied.update(geometry_kind=checked.kind, geometry_json=checked.geometry_json,
                      geometry_source=source, computed_area_m2=checked.computed_area_m2,
                      gps_accuracy_m=None, min_lon_e7=min_lon, min_lat_e7=min_lat,
                      max_lon_e7=max_lon, max_lat_e7=max_lat, geometry_by_id=by_id,
                      geometry_at=now)
        values.append({"plot_id": row.plot_id, "version": numbers.get(row.plot_id, 0) + 1,
                       "change": "geometry", "declared_area_m2": declared,
                       "created_by_id": by_id, "created_at": now, "client_key": None,
                       **{k: copied.get(k) for k in services._COPIED},
                       "cutoff_evidence_ref": copied.get("cutoff_evidence_ref") or "",
                       "cutoff_note": copied.get("cutoff_note") or "",
                       "tenure_reference": copied.get("tenure_reference") or ""})
    if values:
        db.session.execute(insert(PlotVersion), values)
        # Each plot points at its newest version: the highest id of its versions.
        newest = (select(func.max(PlotVersion.id)).where(PlotVersion.plot_id == Plot.id)
                  .scalar_subquery())
        for chunk in _chunks(plot_ids):
            db.session.execute(update(Plot).where(Plot.id.in_(chunk))
                               .values(current_version_id=newest)
                               .execution_options(synchronize_session=False))
    for row, *_rest in accepted:
        row.status = WARNED if row.messages else STORED
    db.session.expire_all()
    return Report(rows, source)


def _overlaps(coop, accepted, replaced: set, to_shape, STRtree) -> None:
    """Adds an overlap warning to each accepted row whose geometry overlaps another
    farmer's: a current plot of the coop (not one this file replaces) or another row."""
    from ..auth.models import User
    from ..cooperatives.models import FarmerProfile
    if not accepted:
        return
    shapes, owners = [], []
    for index, (row, pid, name, _plot, _d, checked) in enumerate(accepted):
        shapes.append(checked.shape)
        owners.append(("row", index, pid, name, row.plot_name, checked.computed_area_m2))
    stmt = (select(Plot.id, Plot.name, Plot.farmer_id, User.name, PlotVersion.geometry_json,
                   PlotVersion.computed_area_m2)
            .join(PlotVersion, PlotVersion.id == Plot.current_version_id)
            .join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
            .join(User, User.id == FarmerProfile.user_id)
            .where(FarmerProfile.coop_id == coop.id, PlotVersion.geometry_json.is_not(None)))
    for plot_id, plot_name, farmer_id, name, text, area in db.session.execute(stmt):
        if plot_id in replaced:
            continue
        shapes.append(to_shape(geo.loads(text)))
        owners.append(("plot", plot_id, farmer_id, name, plot_name, area))
    tree = STRtree(shapes)
    left, right = tree.query(shapes[:len(accepted)], predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist()):
        if i == j or owners[i][2] == owners[j][2]:
            continue
        if owners[j][0] == "row" and j < i:
            continue  # two rows of the file: (j, i) was seen as (i, j), both were told
        common = services.overlapping(shapes[i], shapes[j], owners[i][5], owners[j][5])
        if not common:
            continue
        _k, _x, _pid, name, plot_name, _a = owners[i]
        _k2, _y, _pid2, other, other_plot, _b = owners[j]
        message = services.overlap_message(name, plot_name, other, other_plot, common)
        accepted[i][0].messages.append(message)
        if owners[j][0] == "row":
            accepted[j][0].messages.append(services.overlap_message(
                other, other_plot, name, plot_name, common))
