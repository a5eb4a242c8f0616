"""cooperatives verified by the platform's staff (legal name, tax id, document), invitations
to join one, the platform's staff; audit events without a coop (the platform's own)

Existing cooperatives were made before the rule: they are marked verified. Their names get
their comparison key (case and accents aside); of two with one key in one country the older
keeps it and the other none (it stays as it is, but no new one may copy either).

Revision ID: 0010_verify
Revises: 0009
Create Date: 2026-12-02

"""
import re
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010_verify"
down_revision = "0009"
branch_labels = None
depends_on = None


def _name_key(name: str) -> str:
    # The same rule as coop.cooperatives.services.name_key, written out (migrations run no
    # live code).
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()[:160]


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite rebuilds the cooperatives table (batch mode): the rows that point at it must
        # not be checked while it is dropped and copied back (every id comes back).
        op.execute("PRAGMA foreign_keys = OFF")
    with op.batch_alter_table("cooperatives", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False,
                                      server_default="verified"))
        batch_op.add_column(sa.Column("name_key", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("legal_name", sa.String(length=200), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("tax_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("founded_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("refusal_reason", sa.String(length=500), nullable=False,
                                      server_default=""))
    conn = op.get_bind()
    coops = conn.execute(sa.text("SELECT id, country, name FROM cooperatives ORDER BY id")).all()
    seen = set()
    for coop_id, country, name in coops:
        key = _name_key(name)
        founder = conn.execute(sa.text(
            "SELECT user_id FROM memberships WHERE coop_id = :c AND role = 'manager'"
            " ORDER BY id LIMIT 1"), {"c": coop_id}).scalar()
        conn.execute(sa.text("UPDATE cooperatives SET name_key = :k, founded_by_id = :f"
                             " WHERE id = :c"),
                     {"k": None if (country, key) in seen else key, "f": founder, "c": coop_id})
        seen.add((country, key))
    with op.batch_alter_table("cooperatives", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=16),
                              server_default="pending", existing_nullable=False)
        batch_op.create_check_constraint(
            "status", "status IN ('pending', 'verified', 'refused')")
        batch_op.create_unique_constraint(
            batch_op.f("uq_cooperatives_country_name_key"), ["country", "name_key"])
        batch_op.create_unique_constraint(
            batch_op.f("uq_cooperatives_country_tax_id"), ["country", "tax_id"])
        batch_op.create_foreign_key(batch_op.f("fk_cooperatives_founded_by_id_users"),
                                    "users", ["founded_by_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_cooperatives_reviewed_by_id_users"),
                                    "users", ["reviewed_by_id"], ["id"])

    op.create_table(
        "coop_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coop_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=120), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["coop_id"], ["cooperatives.id"],
                                name=op.f("fk_coop_documents_coop_id_cooperatives")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"],
                                name=op.f("fk_coop_documents_uploaded_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coop_documents")),
    )
    op.create_index(op.f("ix_coop_documents_coop_id"), "coop_documents", ["coop_id"])

    op.create_table(
        "coop_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coop_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("details_json", sa.String(length=2000), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('farmer', 'manager', 'treasurer')",
                           name=op.f("ck_coop_invitations_role")),
        sa.CheckConstraint("email IS NOT NULL OR phone IS NOT NULL",
                           name=op.f("ck_coop_invitations_address")),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'declined', 'withdrawn')",
                           name=op.f("ck_coop_invitations_status")),
        sa.ForeignKeyConstraint(["coop_id"], ["cooperatives.id"],
                                name=op.f("fk_coop_invitations_coop_id_cooperatives")),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"],
                                name=op.f("fk_coop_invitations_invited_by_id_users")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_coop_invitations_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coop_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_coop_invitations_token_hash")),
    )
    op.create_index(op.f("ix_coop_invitations_coop_id"), "coop_invitations", ["coop_id"])
    op.create_index(op.f("ix_coop_invitations_email"), "coop_invitations", ["email"])
    op.create_index(op.f("ix_coop_invitations_phone"), "coop_invitations", ["phone"])

    op.create_table(
        "platform_staff",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_platform_staff_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_platform_staff")),
    )

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("coop_id", existing_type=sa.Integer(), nullable=True)
    if sqlite:
        op.execute("PRAGMA foreign_keys = ON")


def downgrade():
    op.execute("DELETE FROM audit_events WHERE coop_id IS NULL")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("coop_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("platform_staff")
    op.drop_index(op.f("ix_coop_invitations_phone"), table_name="coop_invitations")
    op.drop_index(op.f("ix_coop_invitations_email"), table_name="coop_invitations")
    op.drop_index(op.f("ix_coop_invitations_coop_id"), table_name="coop_invitations")
    op.drop_table("coop_invitations")
    op.drop_index(op.f("ix_coop_documents_coop_id"), table_name="coop_documents")
    op.drop_table("coop_documents")
    with op.batch_alter_table("cooperatives", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cooperatives_reviewed_by_id_users"),
                                 type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_cooperatives_founded_by_id_users"),
                                 type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_cooperatives_country_tax_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_cooperatives_country_name_key"),
                                 type_="unique")
        batch_op.drop_constraint(batch_op.f("ck_cooperatives_status"), type_="check")
        for column in ("refusal_reason", "reviewed_by_id", "reviewed_at", "submitted_at",
                       "founded_by_id", "tax_id", "legal_name", "name_key", "status"):
            batch_op.drop_column(column)
