"""The plots domain's services: the only writers of plots, their versions, documents, the
farmers' trace consents and the coops' plot settings.

Every change of a plot's EUDR data (geometry, cut-off declaration, legality) appends a
`PlotVersion` that copies the rest of the current one, and points the plot at it; versions
are never updated. What a lot needs of a plot for the EUDR is `gaps(version, ...)`: empty
when complete."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from ..common.errors import NotFound, ValidationFailed
from ..common.models import utcnow
from ..cooperatives.verification import Upload, clean_document  # noqa: F401  (Upload: for callers)
from ..extensions import db
from . import geometry as geo
from .models import (DOCUMENT_KINDS, EVIDENCE_KINDS, GEOMETRY_SOURCES, LAND_USES_2020,
                     TENURE_TYPES, Plot, PlotDocument, PlotSettings, PlotVersion, TraceConsent)

# The fields a new version copies from the one before it.
_COPIED = ("geometry_kind", "geometry_json", "geometry_source", "computed_area_m2",
           "gps_accuracy_m", "min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7",
           "geometry_by_id", "geometry_at", "land_use_2020", "cutoff_evidence_kind",
           "cutoff_evidence_ref", "cutoff_document_id", "cutoff_note", "cutoff_by_id",
           "cutoff_at", "tenure_type", "tenure_reference", "tenure_document_id",
           "tenure_by_id", "tenure_at")


def add_plot(profile, *, name: str, hectares, replaced_crop: str | None,
             illicit_hectares, licit_crop: str | None = None) -> Plot:
    """A plot with its area and the illicit crop (and hectares of it) that it replaced."""
    from ..cooperatives.models import ILLICIT_CROPS
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed(_("Give the plot a name (at most 120 characters)."),
                               fields={"name": [_("Required.")]})
    area = parse_hectares(hectares, "hectares")
    replaced = (replaced_crop or "").strip() or None
    if replaced and replaced not in ILLICIT_CROPS:
        raise ValidationFailed(_("Choose coca, opium poppy or cannabis, or none."),
                               fields={"replaced_crop": [_("Unknown crop.")]})
    if not isinstance(illicit_hectares, Decimal):
        illicit_hectares = str(illicit_hectares or "").strip() or "0"
    illicit = parse_hectares(illicit_hectares, "illicit_hectares", allow_zero=True)
    if illicit and not replaced:
        raise ValidationFailed(_("Say which illicit crop those hectares grew."),
                               fields={"replaced_crop": [_("Required with illicit hectares.")]})
    if illicit > area:
        raise ValidationFailed(_("Replaced hectares cannot exceed the plot's hectares."),
                               fields={"illicit_hectares": [_("More than the plot.")]})
    licit = (licit_crop or "").strip() or None
    if licit is not None:
        from ..catalog.labels import CROPS
        if licit not in CROPS:
            raise ValidationFailed(_("Choose the legal crop from the list."),
                                   fields={"licit_crop": [_("Unknown crop.")]})
    plot = Plot(farmer_id=profile.id, name=name, area_m2=area, replaced_crop=replaced,
                illicit_area_m2=illicit, licit_crop=licit)
    db.session.add(plot)
    db.session.flush()
    return plot


def parse_hectares(value, field: str, *, allow_zero: bool = False) -> int:
    """Hectares ("1.5", or the Decimal a form's HectaresField read in the page's locale) to
    square metres (15000); refuses negatives, junk, more than 100,000 ha."""
    from ..common.quantities import MACHINE_NUMBER
    if isinstance(value, Decimal):
        ha = value
    elif value in (None, "") or not MACHINE_NUMBER.fullmatch(str(value).strip()):
        ha = None
    else:
        try:
            ha = Decimal(str(value).strip())
        except InvalidOperation:
            ha = None
    if ha is None or not ha.is_finite():
        raise ValidationFailed(_("Give hectares as a number, like 1.5."),
                               fields={field: [_("A number of hectares.")]})
    m2 = int((ha * 10000).to_integral_value())
    if m2 < 0 or (m2 == 0 and not allow_zero) or m2 > 100_000 * 10_000:
        raise ValidationFailed(_("Hectares must be more than zero and realistic."),
                               fields={field: [_("Out of range.")]})
    return m2


# ---------------------------------------------------------------- settings

def settings_for(coop_id: int) -> PlotSettings:
    """The coop's plot tolerances (defaults when it never set them; not stored until set)."""
    row = db.session.get(PlotSettings, coop_id)
    return row if row is not None else PlotSettings(coop_id=coop_id, area_tolerance_bps=2000,
                                                    gps_accuracy_max_m=15)


def update_settings(coop_id: int, *, area_tolerance_bps: int, gps_accuracy_max_m: int
                    ) -> PlotSettings:
    """Sets the coop's tolerances; refuses a tolerance outside 0-100 % or an accuracy ≤ 0."""
    if not 0 <= area_tolerance_bps <= 10_000:
        raise ValidationFailed(_("The area tolerance goes from 0 to 100 %."),
                               fields={"area_tolerance": [_("Out of range.")]})
    if not 0 < gps_accuracy_max_m <= 1000:
        raise ValidationFailed(_("The GPS accuracy goes from 1 to 1,000 m."),
                               fields={"gps_accuracy_max_m": [_("Out of range.")]})
    row = db.session.get(PlotSettings, coop_id)
    if row is None:
        row = PlotSettings(coop_id=coop_id)
        db.session.add(row)
    row.area_tolerance_bps, row.gps_accuracy_max_m = area_tolerance_bps, gps_accuracy_max_m
    db.session.flush()
    return row


# ---------------------------------------------------------------- versions

def _lock(plot: Plot) -> None:
    """Serialises versions of one plot (two phones sending at once): the plot's row."""
    db.session.execute(select(Plot.id).where(Plot.id == plot.id).with_for_update())


def _new_version(plot: Plot, change: str, by, **values) -> PlotVersion:
    _lock(plot)
    current = db.session.get(PlotVersion, plot.current_version_id) \
        if plot.current_version_id else None
    number = (db.session.scalar(select(func.max(PlotVersion.version))
                                .where(PlotVersion.plot_id == plot.id)) or 0) + 1
    copied = {name: getattr(current, name) for name in _COPIED} if current else {}
    copied.update(values)
    version = PlotVersion(plot_id=plot.id, version=number, change=change,
                          declared_area_m2=plot.area_m2, created_by_id=getattr(by, "id", None),
                          created_at=utcnow(), **copied)
    db.session.add(version)
    db.session.flush()
    plot.current_version_id = version.id
    db.session.flush()
    return version


def versions(plot: Plot) -> list[PlotVersion]:
    return list(db.session.scalars(select(PlotVersion).where(PlotVersion.plot_id == plot.id)
                                   .order_by(PlotVersion.version)))


@dataclass
class Recorded:
    version: PlotVersion
    warnings: list
    repeated: bool = False  # the same client_key was sent before: nothing new stored


def record_geometry(plot: Plot, geometry, *, country: str | None, source: str, by,
                    accuracy_m: int | None = None, client_key: str | None = None
                    ) -> Recorded:
    """Stores a new geometry for the plot after `geometry.check`: refuses (ValidationFailed,
    every reason under `geometry`) what the EUDR or RFC 7946 refuse; returns the warnings
    (area off the declared one, poor GPS accuracy) with the new version. The same
    `client_key` sent again (the phone's outbox retrying) returns the version it made."""
    if source not in GEOMETRY_SOURCES:
        raise ValueError(source)
    if client_key:
        client_key = client_key[:64]
        done = db.session.scalar(select(PlotVersion).where(
            PlotVersion.plot_id == plot.id, PlotVersion.client_key == client_key))
        if done is not None:
            return Recorded(done, [], repeated=True)
    settings = settings_for(_coop_id(plot))
    checked = geo.check(geometry, declared_area_m2=plot.area_m2, country=country,
                        accuracy_m=accuracy_m, tolerance_bps=settings.area_tolerance_bps,
                        max_accuracy_m=settings.gps_accuracy_max_m)
    if checked.errors:
        messages = [str(p.message) for p in checked.errors]
        raise ValidationFailed(messages[0], code="invalid_geometry",
                               fields={"geometry": messages})
    min_lon, min_lat, max_lon, max_lat = checked.bbox_e7
    version = _new_version(
        plot, "geometry", by, geometry_kind=checked.kind, geometry_json=checked.geometry_json,
        geometry_source=source, computed_area_m2=checked.computed_area_m2,
        gps_accuracy_m=accuracy_m, min_lon_e7=min_lon, min_lat_e7=min_lat,
        max_lon_e7=max_lon, max_lat_e7=max_lat, geometry_by_id=getattr(by, "id", None),
        geometry_at=utcnow(), client_key=client_key)
    warnings = list(checked.warnings) + overlaps_for(plot, checked.shape, checked.bbox_e7,
                                                     checked.computed_area_m2)
    return Recorded(version, warnings)


def _coop_id(plot: Plot) -> int:
    from ..cooperatives.models import FarmerProfile
    return db.session.scalar(select(FarmerProfile.coop_id)
                             .where(FarmerProfile.id == plot.farmer_id))


# ---------------------------------------------------------------- documents

def add_document(plot: Plot, kind: str, upload: Upload | None, by) -> PlotDocument:
    """Keeps a document of a declaration: a PDF as sent, or a photo re-encoded without its
    metadata (cooperatives.verification.clean_document: the registration document's rules).
    Refuses no file, a file above 10 MB, anything else."""
    if kind not in DOCUMENT_KINDS:
        raise ValueError(kind)
    name, data, content_type = clean_document(upload, _("Attach the document (PDF or photo)."))
    row = PlotDocument(plot_id=plot.id, kind=kind, filename=name, content_type=content_type,
                       size=len(data), digest=hashlib.sha256(data).hexdigest(), data=data,
                       uploaded_by_id=getattr(by, "id", None))
    db.session.add(row)
    db.session.flush()
    return row


def get_document(plot: Plot, document_id: int) -> PlotDocument:
    row = db.session.get(PlotDocument, document_id)
    if row is None or row.plot_id != plot.id:
        raise NotFound(_("No such document."))
    return row


# ---------------------------------------------------------------- declarations

def declare_cutoff(plot: Plot, *, land_use: str, evidence_kind: str | None,
                   evidence_ref: str = "", document: PlotDocument | None = None,
                   note: str = "", by) -> PlotVersion:
    """Records what the land was on 31 December 2020 (forest or not) and the evidence
    behind it (a satellite check's reference, a certifier's report, a photo...). Refuses an
    unknown land use or evidence kind, and a declaration with neither a reference nor a
    document."""
    if land_use not in LAND_USES_2020:
        raise ValidationFailed(_("Say whether the plot was forest on 31 December 2020."),
                               fields={"land_use_2020": [_("Required.")]})
    if evidence_kind not in EVIDENCE_KINDS:
        raise ValidationFailed(_("Choose the kind of evidence."),
                               fields={"evidence_kind": [_("Required.")]})
    evidence_ref = " ".join((evidence_ref or "").split())
    note = (note or "").strip()
    if len(evidence_ref) > 200:
        raise ValidationFailed(_("The reference is longer than 200 characters."),
                               fields={"evidence_ref": [_("Too long.")]})
    if len(note) > 500:
        raise ValidationFailed(_("The note is longer than 500 characters."),
                               fields={"note": [_("Too long.")]})
    if not evidence_ref and document is None:
        raise ValidationFailed(_("Give the evidence: its reference, or upload the document "
                                 "or photo."), fields={"evidence_ref": [_("Required.")]})
    return _new_version(plot, "cutoff", by, land_use_2020=land_use,
                        cutoff_evidence_kind=evidence_kind, cutoff_evidence_ref=evidence_ref,
                        cutoff_document_id=document.id if document else None,
                        cutoff_note=note, cutoff_by_id=getattr(by, "id", None),
                        cutoff_at=utcnow())


def declare_legality(plot: Plot, *, tenure_type: str, reference: str = "",
                     document: PlotDocument | None = None, by) -> PlotVersion:
    """Records how the farmer holds the land (title, certificate, possession, lease...) and
    its document. Refuses an unknown tenure, and a declaration with neither the document nor
    its reference (e.g. the title's registration number)."""
    if tenure_type not in TENURE_TYPES:
        raise ValidationFailed(_("Choose how the farmer holds the land."),
                               fields={"tenure_type": [_("Required.")]})
    reference = " ".join((reference or "").split())
    if len(reference) > 200:
        raise ValidationFailed(_("The reference is longer than 200 characters."),
                               fields={"tenure_reference": [_("Too long.")]})
    if not reference and document is None:
        raise ValidationFailed(_("Give the document's reference, or upload it."),
                               fields={"tenure_reference": [_("Required.")]})
    return _new_version(plot, "legality", by, tenure_type=tenure_type,
                        tenure_reference=reference,
                        tenure_document_id=document.id if document else None,
                        tenure_by_id=getattr(by, "id", None), tenure_at=utcnow())


# ---------------------------------------------------------------- consent

CONSENT_TEXT = _l(
    "I agree that my name and the location of my plots are given to the buyers of the lots "
    "my harvest goes into, and to no one else, so that they can show the European Union "
    "where it grew (Regulation (EU) 2023/1115). I can withdraw this consent; lots already "
    "sold keep it.")


# Called with each new consent, in its transaction: the lots domain gives it to the farmer's
# deliveries that lots took without one (coop/lots/services.py), so asking a farmer makes
# their lots EUDR-ready. A list, so that plots never imports lots.
consent_listeners: list = []


def record_consent(profile, *, by, locale: str, text: str | None = None) -> TraceConsent:
    """Records the farmer's consent as shown to them (`text`, in `locale`), by the farmer or
    by a manager for a consent given on paper. A farmer who already consents keeps the
    consent they gave (nothing new is written)."""
    current = current_consent(profile.id)
    if current is not None:
        return current
    row = TraceConsent(coop_id=profile.coop_id, farmer_id=profile.id,
                       text=str(text or CONSENT_TEXT)[:2000], locale=(locale or "es")[:8],
                       recorded_by_id=by.id, given_at=utcnow())
    db.session.add(row)
    db.session.flush()
    for listener in consent_listeners:
        listener(row)
    return row


def withdraw_consent(profile, *, by) -> TraceConsent | None:
    """Ends the farmer's consent from now on; the lots already built keep theirs."""
    current = current_consent(profile.id)
    if current is not None:
        current.withdrawn_at, current.withdrawn_by_id = utcnow(), by.id
        db.session.flush()
    return current


def current_consent(farmer_id: int) -> TraceConsent | None:
    return db.session.scalar(select(TraceConsent).where(
        TraceConsent.farmer_id == farmer_id, TraceConsent.withdrawn_at.is_(None))
        .order_by(TraceConsent.id.desc()).limit(1))


def consents_of(farmer_ids) -> dict[int, TraceConsent]:
    """The current consent of each of these farmers (profile ids), in one query."""
    ids = list(set(farmer_ids))
    if not ids:
        return {}
    rows = db.session.scalars(select(TraceConsent).where(
        TraceConsent.farmer_id.in_(ids), TraceConsent.withdrawn_at.is_(None))
        .order_by(TraceConsent.id))
    return {row.farmer_id: row for row in rows}


# ---------------------------------------------------------------- completeness

GAP_TEXT = {
    "no_geometry": _l("no geometry (a point, or the boundary above 4 ha)"),
    "point_too_large": _l("a point for a plot above 4 ha: it needs its boundary"),
    "no_cutoff": _l("no declaration of land use on 31 December 2020"),
    "was_forest": _l("declared forest on 31 December 2020: not eligible for the EU"),
    "no_cutoff_evidence": _l("no evidence behind the cut-off declaration"),
    "no_tenure": _l("no land tenure declared"),
    "no_tenure_document": _l("no land tenure document"),
}


def gaps(version: PlotVersion | None) -> list[str]:
    """What this version of a plot lacks for the EUDR, as codes of GAP_TEXT (empty: the plot
    is complete). None (a plot never recorded) lacks everything."""
    if version is None:
        return ["no_geometry", "no_cutoff", "no_tenure"]
    found = []
    if version.geometry_kind is None:
        found.append("no_geometry")
    elif version.geometry_kind == "point" and version.declared_area_m2 > geo.POINT_MAX_M2:
        found.append("point_too_large")
    if version.land_use_2020 is None:
        found.append("no_cutoff")
    else:
        if version.land_use_2020 == "forest":
            found.append("was_forest")
        if not version.cutoff_evidence_ref and version.cutoff_document_id is None:
            found.append("no_cutoff_evidence")
    if version.tenure_type is None:
        found.append("no_tenure")
    elif not version.tenure_reference and version.tenure_document_id is None:
        found.append("no_tenure_document")
    return found


def current_versions(plot_ids) -> dict[int, PlotVersion]:
    """Each plot's current version, in one query (plots never recorded are absent)."""
    ids = list(set(plot_ids))
    if not ids:
        return {}
    rows = db.session.execute(select(Plot.id, PlotVersion).join(
        PlotVersion, PlotVersion.id == Plot.current_version_id).where(Plot.id.in_(ids)))
    return {plot_id: version for plot_id, version in rows}


# ---------------------------------------------------------------- overlaps

# Two plots overlap when they share at least this (m2) and at least this share (basis
# points) of the smaller one: borders that touch, or a boundary walked a metre off the
# neighbour's, share a sliver that is no overlap.
OVERLAP_MIN_M2 = 50
OVERLAP_MIN_BPS = 100


@dataclass(frozen=True)
class Overlap(geo.Problem):
    """A warning naming both plots: this one and the other farmer's it overlaps."""
    plot_id: int = 0
    farmer_id: int = 0
    other_plot_id: int = 0
    other_farmer_id: int = 0
    common_m2: int = 0


def _shared_m2(a, b) -> int:
    """The geodesic area two geometries share (a point inside a polygon shares 1 m2: it
    counts, on a boundary it does not)."""
    if a.geom_type == "Point" or b.geom_type == "Point":
        point, other = (a, b) if a.geom_type == "Point" else (b, a)
        if other.geom_type == "Point":
            return 0
        return 1 if other.contains(point) and not other.boundary.intersects(point) else 0
    if not a.intersects(b):
        return 0
    common = a.intersection(b)
    if common.is_empty or common.geom_type not in ("Polygon", "MultiPolygon",
                                                   "GeometryCollection"):
        return 0
    polygons = [g for g in getattr(common, "geoms", [common])
                if g.geom_type in ("Polygon", "MultiPolygon")]
    return sum(geo.area_m2(g) for g in polygons)


def overlapping(a, b, area_a: int | None, area_b: int | None) -> int:
    """The m2 two plots' geometries share when that counts as an overlap, else 0."""
    shared = _shared_m2(a, b)
    if shared <= 0:
        return 0
    if a.geom_type == "Point" or b.geom_type == "Point":
        return shared
    smaller = min(area_a or geo.area_m2(a), area_b or geo.area_m2(b))
    if shared < OVERLAP_MIN_M2 or shared * 10_000 < OVERLAP_MIN_BPS * smaller:
        return 0
    return shared


def overlap_message(name, plot_name, other_name, other_plot_name, common_m2):
    if common_m2 <= 1:
        return _("%(name)s's plot \"%(plot)s\" and %(other)s's plot \"%(other_plot)s\" "
                 "overlap: one's point is inside the other's boundary. Check both.",
                 name=name, plot=plot_name, other=other_name, other_plot=other_plot_name)
    return _("%(name)s's plot \"%(plot)s\" overlaps %(other)s's plot \"%(other_plot)s\" "
             "by %(ha)s ha: check both boundaries.", name=name, plot=plot_name,
             other=other_name, other_plot=other_plot_name, ha=geo._hectares(common_m2))


def _neighbours(coop_id: int, farmer_id: int, bbox_e7, exclude_plot_id: int | None):
    """The current geometries of the coop's other farmers' plots whose bounding box meets
    `bbox_e7` (one query on the bounding-box index)."""
    from ..auth.models import User
    from ..cooperatives.models import FarmerProfile
    min_lon, min_lat, max_lon, max_lat = bbox_e7
    stmt = (select(Plot.id, Plot.name, Plot.farmer_id, User.name, PlotVersion.geometry_json,
                   PlotVersion.computed_area_m2)
            .join(PlotVersion, PlotVersion.id == Plot.current_version_id)
            .join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
            .join(User, User.id == FarmerProfile.user_id)
            .where(FarmerProfile.coop_id == coop_id, Plot.farmer_id != farmer_id,
                   PlotVersion.geometry_json.is_not(None),
                   PlotVersion.min_lon_e7 <= max_lon, PlotVersion.max_lon_e7 >= min_lon,
                   PlotVersion.min_lat_e7 <= max_lat, PlotVersion.max_lat_e7 >= min_lat))
    if exclude_plot_id:
        stmt = stmt.where(Plot.id != exclude_plot_id)
    return db.session.execute(stmt.order_by(Plot.id).limit(200)).all()


def overlaps_for(plot: Plot, shape, bbox_e7, computed_area_m2) -> list[Overlap]:
    """Warnings for each other farmer's current plot in the coop that this geometry
    overlaps, naming both."""
    from shapely.geometry import shape as to_shape
    from ..auth.models import User
    from ..cooperatives.models import FarmerProfile
    coop_id = _coop_id(plot)
    found = []
    rows = _neighbours(coop_id, plot.farmer_id, bbox_e7, plot.id)
    if not rows:
        return found
    name = db.session.scalar(select(User.name).join(
        FarmerProfile, FarmerProfile.user_id == User.id).where(
        FarmerProfile.id == plot.farmer_id))
    for other_id, other_plot, other_farmer, other_name, text, other_area in rows:
        common = overlapping(shape, to_shape(geo.loads(text)), computed_area_m2, other_area)
        if common:
            found.append(Overlap("overlap", overlap_message(name, plot.name, other_name,
                                                            other_plot, common),
                                 plot.id, plot.farmer_id, other_id, other_farmer, common))
    return found


def plot_warnings(plot: Plot, version: PlotVersion | None) -> list[geo.Problem]:
    """What a manager should look at again on the plot's current geometry: its area off the
    declared one, a poor GPS accuracy (the coop's tolerances now), overlaps with other
    farmers' plots."""
    if version is None or version.geometry_json is None:
        return []
    from shapely.geometry import shape as to_shape
    settings = settings_for(_coop_id(plot))
    checked = geo.check(geo.loads(version.geometry_json), declared_area_m2=plot.area_m2,
                        country=None, accuracy_m=version.gps_accuracy_m,
                        tolerance_bps=settings.area_tolerance_bps,
                        max_accuracy_m=settings.gps_accuracy_max_m)
    bbox = (version.min_lon_e7, version.min_lat_e7, version.max_lon_e7, version.max_lat_e7)
    shape = checked.shape if checked.shape is not None else to_shape(
        geo.loads(version.geometry_json))
    return list(checked.warnings) + overlaps_for(plot, shape, bbox, version.computed_area_m2)


# ---------------------------------------------------------------- the manager's lists

def eudr_gaps(version: PlotVersion | None, consented: bool) -> list[str]:
    """`gaps(version)` and the farmer's consent: all a plot needs to go into a lot marked
    EUDR-ready."""
    found = gaps(version)
    if not consented:
        found.append("no_consent")
    return found


GAP_TEXT["no_consent"] = _l("the farmer has not consented to share name and plot location "
                            "with the buyers")


def get_plot(profile, plot_id: int) -> Plot:
    """The farmer's plot; NotFound for anyone else's."""
    plot = db.session.get(Plot, plot_id)
    if plot is None or plot.farmer_id != profile.id:
        raise NotFound(_("No such plot."))
    return plot


def _complete_clause():
    """SQL: the current version has everything `gaps` asks (the list's filter and counts)."""
    from sqlalchemy import and_, or_
    return and_(
        PlotVersion.id.is_not(None), PlotVersion.geometry_kind.is_not(None),
        or_(PlotVersion.geometry_kind != "point",
            PlotVersion.declared_area_m2 <= geo.POINT_MAX_M2),
        PlotVersion.land_use_2020 == "not_forest",
        or_(PlotVersion.cutoff_evidence_ref != "", PlotVersion.cutoff_document_id.is_not(None)),
        PlotVersion.tenure_type.is_not(None),
        or_(PlotVersion.tenure_reference != "", PlotVersion.tenure_document_id.is_not(None)))


def _consented_clause():
    from sqlalchemy import exists
    return exists().where(TraceConsent.farmer_id == Plot.farmer_id,
                          TraceConsent.withdrawn_at.is_(None))


def _coop_plots(coop_id: int, q: str = ""):
    from ..auth.models import User
    from ..cooperatives.models import FarmerProfile
    stmt = (select(Plot, FarmerProfile.member_number, User.name.label("farmer_name"),
                   PlotVersion)
            .join(FarmerProfile, FarmerProfile.id == Plot.farmer_id)
            .join(User, User.id == FarmerProfile.user_id)
            .outerjoin(PlotVersion, PlotVersion.id == Plot.current_version_id)
            .where(FarmerProfile.coop_id == coop_id))
    q = (q or "").strip()[:80]
    if q:
        from sqlalchemy import or_
        like = "%" + re.sub(r"([\\%_])", r"\\\1", q) + "%"
        stmt = stmt.where(or_(FarmerProfile.member_number.ilike(like, escape="\\"),
                              User.name.ilike(like, escape="\\")))
    return stmt


@dataclass
class PlotRow:
    plot: Plot
    member_number: str
    farmer_name: str
    version: PlotVersion | None
    missing: list

    @property
    def complete(self) -> bool:
        return not self.missing


def coop_plots_page(coop_id: int, cursor: str | None, *, q: str = "",
                    incomplete: bool = False, limit: int = 50):
    """A page of the coop's plots by member number (keyset), found by the farmer's name or
    member number, only the incomplete ones for the EUDR if asked, each with what it lacks
    (its consent included): three queries at most, whatever the page."""
    from sqlalchemy import not_
    from ..common.paging import keyset
    from ..cooperatives.models import FarmerProfile
    stmt = _coop_plots(coop_id, q)
    if incomplete:
        stmt = stmt.where(not_(and_complete()))
    found = keyset(stmt, [FarmerProfile.member_number, Plot.id], cursor, limit,
                   scalars=False, key=lambda row: (row.member_number, row.Plot.id))
    consents = consents_of(row.Plot.farmer_id for row in found.items)
    found.items = [PlotRow(row.Plot, row.member_number, row.farmer_name, row.PlotVersion,
                           eudr_gaps(row.PlotVersion, row.Plot.farmer_id in consents))
                   for row in found.items]
    return found


def and_complete():
    from sqlalchemy import and_
    return and_(_complete_clause(), _consented_clause())


def coop_plot_counts(coop_id: int, q: str = "") -> dict:
    """{"total", "complete", "incomplete"} of the coop's plots (matching `q`), one query."""
    from sqlalchemy import case
    stmt = _coop_plots(coop_id, q).with_only_columns(
        func.count(Plot.id), func.coalesce(func.sum(case((and_complete(), 1), else_=0)), 0),
        maintain_column_froms=True)
    total, complete = db.session.execute(stmt).one()
    return {"total": total or 0, "complete": int(complete or 0),
            "incomplete": (total or 0) - int(complete or 0)}


# ---------------------------------------------------------------- the farmer's own plots

@dataclass
class OwnPlot:
    profile: object
    plot: Plot
    version: PlotVersion | None
    consent: TraceConsent | None
    missing: list

    @property
    def complete(self) -> bool:
        return not self.missing


def farmer_plots(user) -> list[OwnPlot]:
    """The user's plots in every coop they farm in (by coop, then name), each with its current
    version, the farmer's consent in that coop and what the EUDR still needs: three queries."""
    from ..cooperatives.models import FarmerProfile
    rows = db.session.execute(
        select(FarmerProfile, Plot, PlotVersion)
        .join(Plot, Plot.farmer_id == FarmerProfile.id)
        .outerjoin(PlotVersion, PlotVersion.id == Plot.current_version_id)
        .where(FarmerProfile.user_id == user.id)
        .order_by(FarmerProfile.coop_id, Plot.name, Plot.id)).all()
    consents = consents_of(profile.id for profile, _plot, _version in rows)
    return [OwnPlot(profile, plot, version, consents.get(profile.id),
                    eudr_gaps(version, profile.id in consents))
            for profile, plot, version in rows]


def farmer_profiles_of(user) -> list:
    """The user's farmer profiles (one per coop they farm in), by coop."""
    from ..cooperatives.models import FarmerProfile
    return list(db.session.scalars(select(FarmerProfile).where(
        FarmerProfile.user_id == user.id).order_by(FarmerProfile.coop_id)))


def get_own_plot(user, plot_id: int):
    """(profile, plot) of one of the user's own plots; NotFound for anyone else's."""
    from ..cooperatives.models import FarmerProfile
    row = db.session.execute(select(FarmerProfile, Plot).join(
        Plot, Plot.farmer_id == FarmerProfile.id).where(
        Plot.id == plot_id, FarmerProfile.user_id == user.id)).first()
    if row is None:
        raise NotFound(_("No such plot."))
    return row[0], row[1]
