"""invoices (issue 14, part 2): the coop's invoice settings, the buyers' billing details, the
document counters, the invoices, credit notes and farmers' purchase documents (never edited
or deleted: triggers), their acceptance codes, and the ledger entries' document reference

Revision ID: 0020_invoices
Revises: 0019_merge
Create Date: 2026-12-07

"""
import sqlalchemy as sa
from alembic import op

revision = "0020_invoices"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

# coop/invoices/ddl.py as it was when this migration was written (frozen copy).
SQLITE = [
    """CREATE TRIGGER invoices_no_update BEFORE UPDATE ON invoices
    BEGIN SELECT RAISE(ABORT, 'issued documents are immutable'); END""",
    """CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
    BEGIN SELECT RAISE(ABORT, 'issued documents are immutable'); END""",
]
POSTGRES = [
    """CREATE OR REPLACE FUNCTION invoices_refuse_change() RETURNS trigger AS $$
    BEGIN
      RAISE EXCEPTION 'issued documents are immutable (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_refuse_change()""",
]


def upgrade():
    op.create_table(
        "invoice_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False,
                  unique=True),
        sa.Column("legal_name", sa.String(200), nullable=False),
        sa.Column("tax_id", sa.String(20), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("numbering_json", sa.Text(), nullable=False),
        sa.Column("tax_rates_json", sa.Text(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "buyer_billing",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id"), nullable=False,
                  unique=True),
        sa.Column("legal_name", sa.String(200), nullable=False),
        sa.Column("tax_id", sa.String(40), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "document_counters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(10), nullable=False),
        sa.Column("next_number", sa.BigInteger(), nullable=False),
        sa.Column("range_from", sa.BigInteger(), nullable=False),
        sa.Column("range_to", sa.BigInteger()),
        sa.Column("resolution", sa.String(200), nullable=False),
        sa.Column("resolution_on", sa.Date()),
        sa.UniqueConstraint("coop_id", "kind"),
        sa.CheckConstraint("next_number >= 1", name="next_positive"),
        sa.CheckConstraint("range_to IS NULL OR next_number <= range_to + 1", name="in_range"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("coop_id", sa.Integer(), sa.ForeignKey("cooperatives.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(10), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("source_key", sa.String(64), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("subtotal_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("buyer_id", sa.Integer(), sa.ForeignKey("buyers.id")),
        sa.Column("farmer_user_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("order_id", sa.Integer(), sa.ForeignKey("orders.id")),
        sa.Column("pool_id", sa.Integer(), sa.ForeignKey("pools.id")),
        sa.Column("refund_id", sa.BigInteger()),
        sa.Column("credits_invoice_id", sa.Integer(), sa.ForeignKey("invoices.id")),
        sa.Column("week_start", sa.Date()),
        sa.Column("payment", sa.String(200), nullable=False),
        sa.Column("paid_at", TS),
        sa.Column("range_from", sa.BigInteger(), nullable=False),
        sa.Column("range_to", sa.BigInteger()),
        sa.Column("resolution", sa.String(200), nullable=False),
        sa.Column("resolution_on", sa.Date()),
        sa.Column("seller_json", sa.Text(), nullable=False),
        sa.Column("customer_json", sa.Text(), nullable=False),
        sa.Column("lines_json", sa.Text(), nullable=False),
        sa.UniqueConstraint("coop_id", "kind", "number"),
        sa.UniqueConstraint("coop_id", "source_key"),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note', 'support_doc')", name="kind"),
        sa.CheckConstraint("total_minor >= 0 AND tax_minor >= 0", name="amounts"),
    )
    op.create_index("ix_invoices_coop_keyset", "invoices", ["coop_id", "id"])
    op.create_index("ix_invoices_buyer_keyset", "invoices", ["buyer_id", "id"])
    op.create_index("ix_invoices_farmer", "invoices", ["farmer_user_id", "id"])
    op.create_index("ix_invoices_order", "invoices", ["order_id"])
    op.create_table(
        "invoice_acceptances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False,
                  unique=True),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("recorded_at", TS, nullable=False),
    )
    # A plain ADD COLUMN (no batch copy on SQLite: the ledger's triggers stay as they are).
    op.add_column("ledger_entries", sa.Column("document_id", sa.BigInteger()))
    for statement in (POSTGRES if op.get_bind().dialect.name == "postgresql" else SQLITE):
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS invoices_immutable ON invoices")
        op.execute("DROP FUNCTION IF EXISTS invoices_refuse_change()")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_column("document_id")
    op.drop_table("invoice_acceptances")
    op.drop_table("invoices")
    op.drop_table("document_counters")
    op.drop_table("buyer_billing")
    op.drop_table("invoice_settings")
