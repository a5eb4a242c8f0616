"""plots for the EUDR (issue 13): versions of a plot's geometry, cut-off declaration and
legality, their documents, the farmers' consent to share them, and each coop's tolerances

Revision ID: 0016_plots
Revises: 0015
Create Date: 2026-12-03

"""
import sqlalchemy as sa
from alembic import op

revision = "0016_plots"
down_revision = "0015"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _in(column, values):
    return f"{column} IS NULL OR {column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table(
        "plot_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plot_id", sa.Integer(), sa.ForeignKey("plots.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(120), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("kind IN ('cutoff_evidence', 'tenure')", name="kind"),
    )
    op.create_index("ix_plot_documents_plot_id", "plot_documents", ["plot_id"])
    op.create_table(
        "plot_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plot_id", sa.Integer(), sa.ForeignKey("plots.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("declared_area_m2", sa.BigInteger(), nullable=False),
        sa.Column("geometry_kind", sa.String(16)),
        sa.Column("geometry_json", sa.Text()),
        sa.Column("geometry_source", sa.String(16)),
        sa.Column("computed_area_m2", sa.BigInteger()),
        sa.Column("gps_accuracy_m", sa.Integer()),
        sa.Column("min_lon_e7", sa.BigInteger()),
        sa.Column("min_lat_e7", sa.BigInteger()),
        sa.Column("max_lon_e7", sa.BigInteger()),
        sa.Column("max_lat_e7", sa.BigInteger()),
        sa.Column("geometry_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("geometry_at", TS),
        sa.Column("land_use_2020", sa.String(16)),
        sa.Column("cutoff_evidence_kind", sa.String(16)),
        sa.Column("cutoff_evidence_ref", sa.String(200), nullable=False),
        sa.Column("cutoff_document_id", sa.Integer(), sa.ForeignKey("plot_documents.id")),
        sa.Column("cutoff_note", sa.String(500), nullable=False),
        sa.Column("cutoff_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("cutoff_at", TS),
        sa.Column("tenure_type", sa.String(16)),
        sa.Column("tenure_reference", sa.String(200), nullable=False),
        sa.Column("tenure_document_id", sa.Integer(), sa.ForeignKey("plot_documents.id")),
        sa.Column("tenure_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("tenure_at", TS),
        sa.Column("client_key", sa.String(64)),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("plot_id", "version"),
        sa.UniqueConstraint("plot_id", "client_key"),
        sa.CheckConstraint(_in("geometry_kind", ("point", "polygon", "multipolygon")),
                           name="geometry_kind"),
        sa.CheckConstraint(_in("geometry_source",
                               ("typed", "geojson", "kml", "gps_point", "gps_walk")),
                           name="geometry_source"),
        sa.CheckConstraint(_in("land_use_2020", ("not_forest", "forest")), name="land_use_2020"),
        sa.CheckConstraint(_in("cutoff_evidence_kind",
                               ("satellite", "certifier", "photo", "document", "other")),
                           name="evidence_kind"),
        sa.CheckConstraint(_in("tenure_type", ("title", "certificate", "possession", "lease",
                                               "collective", "other")), name="tenure_type"),
        sa.CheckConstraint("change IN ('geometry', 'cutoff', 'legality')", name="change"),
        sa.CheckConstraint("(geometry_kind IS NULL) = (geometry_json IS NULL)", name="geometry"),
        sa.CheckConstraint("computed_area_m2 IS NULL OR computed_area_m2 >= 0",
                           name="computed_area_nonneg"),
    )
    op.create_index("ix_plot_versions_plot_id", "plot_versions", ["plot_id"])
    op.create_index("ix_plot_versions_bbox", "plot_versions", ["min_lon_e7", "max_lon_e7"])
    with op.batch_alter_table("plots") as batch:
        batch.add_column(sa.Column("current_version_id", sa.Integer()))
        batch.create_foreign_key("fk_plots_current_version_id", "plot_versions",
                                 ["current_version_id"], ["id"])
    op.create_table(
        "trace_consents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False),
        sa.Column("farmer_id", sa.Integer(), sa.ForeignKey("farmer_profiles.id"),
                  nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("given_at", TS, nullable=False),
        sa.Column("withdrawn_at", TS),
        sa.Column("withdrawn_by_id", sa.Integer(), sa.ForeignKey("users.id")),
    )
    op.create_index("ix_trace_consents_coop_id", "trace_consents", ["coop_id"])
    op.create_index("ix_trace_consents_farmer", "trace_consents", ["farmer_id", "id"])
    op.create_table(
        "plot_settings",
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), primary_key=True),
        sa.Column("area_tolerance_bps", sa.Integer(), nullable=False),
        sa.Column("gps_accuracy_max_m", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.CheckConstraint("area_tolerance_bps BETWEEN 0 AND 10000", name="tolerance_range"),
        sa.CheckConstraint("gps_accuracy_max_m > 0", name="accuracy_positive"),
    )


def downgrade():
    op.drop_table("plot_settings")
    op.drop_table("trace_consents")
    with op.batch_alter_table("plots") as batch:
        batch.drop_constraint("fk_plots_current_version_id", type_="foreignkey")
        batch.drop_column("current_version_id")
    op.drop_table("plot_versions")
    op.drop_table("plot_documents")
