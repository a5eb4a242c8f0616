"""eudr (issue 13, part 3): the EUDR data packs issued per lot, audience and format (kept
five years, byte for byte), and the DDS reference numbers the buyers record

Revision ID: 0018_eudr
Revises: 0017_lots
Create Date: 2026-12-06

"""
import sqlalchemy as sa
from alembic import op

revision = "0018_eudr"
down_revision = "0017_lots"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "eudr_packs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("audience", sa.String(24), nullable=False),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id")),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("dds_reference", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("issued_at", TS, nullable=False),
        sa.UniqueConstraint("lot_id", "audience", "format", "dds_reference"),
        sa.CheckConstraint("format IN ('geojson', 'geojson_b64', 'json', 'csv')",
                           name="format"),
        sa.CheckConstraint("size >= 0", name="size_nonneg"),
    )
    op.create_index("ix_eudr_packs_lot_id", "eudr_packs", ["lot_id"])
    op.create_table(
        "eudr_dds_references",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id"), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.UniqueConstraint("lot_id", "buyer_id"),
    )
    op.create_index("ix_eudr_dds_references_lot", "eudr_dds_references", ["lot_id", "id"])


def downgrade():
    op.drop_table("eudr_dds_references")
    op.drop_table("eudr_packs")
