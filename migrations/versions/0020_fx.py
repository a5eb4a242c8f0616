"""the buyer's currency and buyers as organisations (issue 14, parts 3 and 4): exchange
rates per day, a buyer's display currency, a role per user of a buyer organisation (every
existing buyer user becomes its admin) and the invitations to join one

Revision ID: 0020_fx
Revises: 0019_merge
Create Date: 2026-12-07

"""
import sqlalchemy as sa
from alembic import op

revision = "0020_fx"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("base", sa.String(3), nullable=False),
        sa.Column("quote", sa.String(3), nullable=False),
        sa.Column("rate", sa.String(40), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("fetched_at", TS, nullable=False),
        sa.UniqueConstraint("day", "base", "quote"),
        sa.CheckConstraint("base <> quote", name="pair"),
    )
    op.create_index("ix_fx_rates_day", "fx_rates", ["day"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("buyer_role", sa.String(16)))
        batch.add_column(sa.Column("display_currency", sa.String(3)))
    op.execute("UPDATE users SET buyer_role = 'admin' WHERE buyer_id IS NOT NULL")
    op.create_table(
        "buyer_invitations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id"), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("answered_at", TS),
        sa.UniqueConstraint("token_hash"),
        sa.CheckConstraint("role IN ('admin', 'purchaser', 'accounts')", name="role"),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'withdrawn')", name="status"),
    )
    op.create_index("ix_buyer_invitations_buyer_id", "buyer_invitations", ["buyer_id"])
    op.create_index("ix_buyer_invitations_email", "buyer_invitations", ["email"])


def downgrade():
    op.drop_table("buyer_invitations")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("display_currency")
        batch.drop_column("buyer_role")
    op.drop_table("fx_rates")
