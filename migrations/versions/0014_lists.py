"""lists (issue 12): the composite indexes the keyset pages walk — a buyer's orders, a
farmer's listings, a coop's pools, the pools of a status, a coop's ledger entries, a coop's
paused tasks, each newest first by id; a payout batch's lines by id; a coop's audit events

Revision ID: 0014_lists
Revises: 0013
Create Date: 2026-12-03

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014_lists"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_orders_buyer_id_keyset", "orders", ["buyer_id", "id"]),
    ("ix_listings_farmer_id_keyset", "listings", ["farmer_user_id", "id"]),
    ("ix_pools_coop_id_keyset", "pools", ["coop_id", "id"]),
    ("ix_pools_status_id_keyset", "pools", ["status", "id"]),
    ("ix_ledger_entries_coop_id_keyset", "ledger_entries", ["coop_id", "id"]),
    ("ix_jobs_coop_status_id_keyset", "jobs", ["coop_id", "status", "id"]),
    ("ix_payout_lines_batch_id_keyset", "payout_lines", ["batch_id", "id"]),
    ("ix_audit_events_coop_id_keyset", "audit_events", ["coop_id", "id"]),
]


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
