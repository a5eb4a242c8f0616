"""dispatch (issue 13 part 4): a pool's delivery terms (EXW / FCA, place, expected date) and
the steps of a lot's journey after intake (ready, dispatched, delivered, received, problem)

Revision ID: 0018_dispatch
Revises: 0017_lots
Create Date: 2026-12-06

"""
import sqlalchemy as sa
from alembic import op

revision = "0018_dispatch"
down_revision = "0017_lots"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("pools") as batch:
        batch.add_column(sa.Column("delivery_terms", sa.String(3), nullable=False,
                                   server_default="EXW"))
        batch.add_column(sa.Column("delivery_place", sa.String(200), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("delivery_expected_on", sa.Date()))
    op.create_table(
        "lot_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("lots.id"), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id")),
        sa.Column("carrier", sa.String(120), nullable=False),
        sa.Column("document_number", sa.String(80), nullable=False),
        sa.Column("on_date", sa.Date()),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.Column("by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.UniqueConstraint("lot_id", "step"),
        sa.CheckConstraint("kind IN ('ready', 'dispatched', 'delivered', 'received', "
                           "'problem')", name="kind"),
    )
    op.create_index("ix_lot_events_lot", "lot_events", ["lot_id", "id"])


def downgrade():
    op.drop_table("lot_events")
    with op.batch_alter_table("pools") as batch:
        batch.drop_column("delivery_expected_on")
        batch.drop_column("delivery_place")
        batch.drop_column("delivery_terms")
