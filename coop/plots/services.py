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
from ..extensions import db
from . import geometry as geo
from .models import (DOCUMENT_KINDS, EVIDENCE_KINDS, GEOMETRY_SOURCES, LAND_USES_2020,
                     TENURE_TYPES, Plot, PlotDocument, PlotSettings, PlotVersion, TraceConsent)

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
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
    return Recorded(version, checked.warnings)


def _coop_id(plot: Plot) -> int:
    from ..cooperatives.models import FarmerProfile
    return db.session.scalar(select(FarmerProfile.coop_id)
                             .where(FarmerProfile.id == plot.farmer_id))


# ---------------------------------------------------------------- documents

@dataclass
class Upload:
    """A file as a form or the API received it."""
    filename: str
    data: bytes


def add_document(plot: Plot, kind: str, upload: Upload | None, by) -> PlotDocument:
    """Keeps a document of a declaration: a PDF as sent, or a photo re-encoded without its
    metadata (the listing photos' rules). Refuses no file, a file above 10 MB, anything
    else."""
    if kind not in DOCUMENT_KINDS:
        raise ValueError(kind)

    def refuse(message):
        return ValidationFailed(message, code="invalid_document", fields={"document": [message]})

    if upload is None or not upload.data:
        raise refuse(_("Attach the document (PDF or photo)."))
    if len(upload.data) > MAX_DOCUMENT_BYTES:
        raise refuse(_("The document is larger than %(mb)d MB.",
                       mb=MAX_DOCUMENT_BYTES // (1024 * 1024)))
    name = re.sub(r"[^\w.\- ]+", "_", (upload.filename or "document").rsplit("/", 1)[-1])
    name = name.strip()[:120] or "document"
    if upload.data.startswith(b"%PDF-"):
        data, content_type = upload.data, "application/pdf"
    else:
        from ..listings.photos import process_photo
        try:
            photo = process_photo(upload.data)
        except ValidationFailed:
            raise refuse(_("Send the document as a PDF, or a JPEG, PNG or WebP photo of it."))
        data, content_type = photo.data, photo.content_type
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
