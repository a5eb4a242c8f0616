"""A farmer's plots and what the EU Deforestation Regulation asks of them: the geometry
(WGS 84, [longitude, latitude]), the declaration of land use on the cut-off date (31 Dec
2020) with its evidence, the legality of the tenure, and the farmer's consent to share name
and location with the buyers of their lots.

Every change to a plot's EUDR data appends an immutable `PlotVersion` (a snapshot of all of
it); the plot points at its current one. A lot keeps the versions it was built from, so its
data pack is the same byte for byte five years later, after the plot was redrawn."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from ..common.models import UTCDateTime, utcnow
from ..extensions import db

GEOMETRY_KINDS = ("point", "polygon", "multipolygon")
GEOMETRY_SOURCES = ("typed", "geojson", "kml", "gps_point", "gps_walk")
LAND_USES_2020 = ("not_forest", "forest")
EVIDENCE_KINDS = ("satellite", "certifier", "photo", "document", "other")
TENURE_TYPES = ("title", "certificate", "possession", "lease", "collective", "other")
DOCUMENT_KINDS = ("cutoff_evidence", "tenure")
VERSION_CHANGES = ("geometry", "cutoff", "legality")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IS NULL OR {column} IN ({', '.join(repr(v) for v in values)})"


class Plot(db.Model):
    """A plot; areas in square metres (1 ha = 10,000 m2) so they are exact integers. The
    declared area is the farmer's; the computed one (geodesic, of the polygon) is on the
    current version."""

    __tablename__ = "plots"
    __table_args__ = (
        CheckConstraint("area_m2 > 0", name="area_positive"),
        CheckConstraint("illicit_area_m2 >= 0", name="illicit_area_nonneg"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    farmer_id: Mapped[int] = mapped_column(ForeignKey("farmer_profiles.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    area_m2: Mapped[int] = mapped_column(BigInteger)
    replaced_crop: Mapped[str | None] = mapped_column(String(16))
    illicit_area_m2: Mapped[int] = mapped_column(BigInteger, default=0)
    licit_crop: Mapped[str | None] = mapped_column(String(40))
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("plot_versions.id", use_alter=True, name="fk_plots_current_version_id"))
    farmer: Mapped["FarmerProfile"] = relationship(back_populates="plots")  # noqa: F821
    current: Mapped["PlotVersion | None"] = relationship(
        foreign_keys=[current_version_id], lazy="select", post_update=True)


class PlotDocument(db.Model):
    """A document behind a declaration (the cut-off evidence: a certifier's report, a photo;
    the tenure: a land title, a certificate, a lease), kept in the database as uploaded (an
    image re-encoded without its metadata). Never replaced: a new upload is a new row."""

    __tablename__ = "plot_documents"
    __table_args__ = (
        CheckConstraint("kind IN ('cutoff_evidence', 'tenure')", name="kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_id: Mapped[int] = mapped_column(ForeignKey("plots.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(120))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PlotVersion(db.Model):
    """One immutable snapshot of a plot's EUDR data; `version` counts from 1 per plot.

    `geometry_json` is the RFC 7946 geometry exactly as validated and stored (positions
    [longitude, latitude] with the decimals they were given, at least 6), so what a lot
    exports from it never changes. The bounding box is kept in 1e-7 degrees (integers) for
    the overlap check and the map. `client_key` makes a position sent twice from the phone's
    outbox one version."""

    __tablename__ = "plot_versions"
    __table_args__ = (
        UniqueConstraint("plot_id", "version"),
        UniqueConstraint("plot_id", "client_key"),
        CheckConstraint(_in("geometry_kind", GEOMETRY_KINDS), name="geometry_kind"),
        CheckConstraint(_in("geometry_source", GEOMETRY_SOURCES), name="geometry_source"),
        CheckConstraint(_in("land_use_2020", LAND_USES_2020), name="land_use_2020"),
        CheckConstraint(_in("cutoff_evidence_kind", EVIDENCE_KINDS), name="evidence_kind"),
        CheckConstraint(_in("tenure_type", TENURE_TYPES), name="tenure_type"),
        CheckConstraint("change IN ('geometry', 'cutoff', 'legality')", name="change"),
        CheckConstraint("(geometry_kind IS NULL) = (geometry_json IS NULL)", name="geometry"),
        CheckConstraint("computed_area_m2 IS NULL OR computed_area_m2 >= 0",
                        name="computed_area_nonneg"),
        Index("ix_plot_versions_bbox", "min_lon_e7", "max_lon_e7"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plot_id: Mapped[int] = mapped_column(ForeignKey("plots.id"), index=True)
    version: Mapped[int] = mapped_column()
    change: Mapped[str] = mapped_column(String(16))
    declared_area_m2: Mapped[int] = mapped_column(BigInteger)
    # The geometry
    geometry_kind: Mapped[str | None] = mapped_column(String(16))
    geometry_json: Mapped[str | None] = mapped_column(Text)
    geometry_source: Mapped[str | None] = mapped_column(String(16))
    computed_area_m2: Mapped[int | None] = mapped_column(BigInteger)
    gps_accuracy_m: Mapped[int | None] = mapped_column()
    min_lon_e7: Mapped[int | None] = mapped_column(BigInteger)
    min_lat_e7: Mapped[int | None] = mapped_column(BigInteger)
    max_lon_e7: Mapped[int | None] = mapped_column(BigInteger)
    max_lat_e7: Mapped[int | None] = mapped_column(BigInteger)
    geometry_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    geometry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The cut-off declaration: land use on 31 December 2020, with its evidence
    land_use_2020: Mapped[str | None] = mapped_column(String(16))
    cutoff_evidence_kind: Mapped[str | None] = mapped_column(String(16))
    cutoff_evidence_ref: Mapped[str] = mapped_column(String(200), default="")
    cutoff_document_id: Mapped[int | None] = mapped_column(ForeignKey("plot_documents.id"))
    cutoff_note: Mapped[str] = mapped_column(String(500), default="")
    cutoff_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cutoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Legality: the tenure and its document
    tenure_type: Mapped[str | None] = mapped_column(String(16))
    tenure_reference: Mapped[str] = mapped_column(String(200), default="")
    tenure_document_id: Mapped[int | None] = mapped_column(ForeignKey("plot_documents.id"))
    tenure_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    tenure_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    client_key: Mapped[str | None] = mapped_column(String(64))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TraceConsent(db.Model):
    """A farmer's consent to share their name and plot locations with the buyers of the lots
    their kilograms go into: who gave it, who recorded it (the farmer, or a manager for a
    consent signed on paper), when, and the text shown, in the language shown. Withdrawn by
    setting `withdrawn_at`; lots already built keep the consent they were built with."""

    __tablename__ = "trace_consents"
    __table_args__ = (
        Index("ix_trace_consents_farmer", "farmer_id", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), index=True)
    farmer_id: Mapped[int] = mapped_column(ForeignKey("farmer_profiles.id"))
    text: Mapped[str] = mapped_column(String(2000))
    locale: Mapped[str] = mapped_column(String(8))
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class PlotSettings(db.Model):
    """A coop's tolerances for plot data: how far the computed area may differ from the
    declared one (basis points) and the worst GPS accuracy accepted without a warning."""

    __tablename__ = "plot_settings"
    __table_args__ = (
        CheckConstraint("area_tolerance_bps BETWEEN 0 AND 10000", name="tolerance_range"),
        CheckConstraint("gps_accuracy_max_m > 0", name="accuracy_positive"),
    )
    coop_id: Mapped[int] = mapped_column(ForeignKey("cooperatives.id"), primary_key=True)
    area_tolerance_bps: Mapped[int] = mapped_column(default=2000)
    gps_accuracy_max_m: Mapped[int] = mapped_column(default=15)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
