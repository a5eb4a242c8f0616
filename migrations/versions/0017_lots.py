"""lots (issue 13): the plots a listing came from, and the lots a pool's intake forms, with
their deliveries and the plot versions they were built from

Revision ID: 0017_lots
Revises: 0016_plots
Create Date: 2026-12-06

"""
import sqlalchemy as sa
from alembic import op

revision = "0017_lots"
down_revision = "0016_plots"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "listing_plots",
        sa.Column("listing_id", sa.Integer(), sa.ForeignKey("listings.id"), primary_key=True),
        sa.Column("plot_id", sa.Integer(), sa.ForeignKey("plots.id"), primary_key=True),
    )
    op.create_index("ix_listing_plots_plot_id", "listing_plots", ["plot_id"])
    op.create_table(
        "lot_sequences",
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), primary_key=True),
        sa.Column("last_number", sa.Integer(), nullable=False),
    )
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("pools.id"), nullable=False,
                  unique=True),
        sa.Column("crop_id", sa.Integer(), sa.ForeignKey("crops.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("eudr", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("coop_id", "number"),
        sa.UniqueConstraint("code"),
        sa.CheckConstraint("number > 0", name="number_positive"),
    )
    op.create_index("ix_lots_coop_keyset", "lots", ["coop_id", "id"])
    op.create_table(
        "lot_sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("intake_id", sa.Integer(), sa.ForeignKey("intakes.id"), nullable=False,
                  unique=True),
        sa.Column("listing_id", sa.Integer(), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("farmer_id", sa.Integer(), sa.ForeignKey("farmer_profiles.id"),
                  nullable=False),
        sa.Column("farmer_user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("grade_id", sa.Integer(), sa.ForeignKey("grades.id"), nullable=False),
        sa.Column("accepted_g", sa.BigInteger(), nullable=False),
        sa.Column("harvested_on", sa.Date(), nullable=False),
        sa.Column("consent_id", sa.Integer(), sa.ForeignKey("trace_consents.id")),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint("accepted_g > 0", name="accepted_positive"),
    )
    op.create_index("ix_lot_sources_lot", "lot_sources", ["lot_id", "id"])
    op.create_index("ix_lot_sources_farmer_id", "lot_sources", ["farmer_id"])
    op.create_table(
        "lot_source_plots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("lot_sources.id"), nullable=False),
        sa.Column("plot_id", sa.Integer(), sa.ForeignKey("plots.id"), nullable=False),
        sa.Column("plot_version_id", sa.Integer(), sa.ForeignKey("plot_versions.id")),
        sa.UniqueConstraint("source_id", "plot_id"),
    )
    op.create_index("ix_lot_source_plots_plot_id", "lot_source_plots", ["plot_id"])


def downgrade():
    op.drop_table("lot_source_plots")
    op.drop_table("lot_sources")
    op.drop_table("lots")
    op.drop_table("lot_sequences")
    op.drop_table("listing_plots")
