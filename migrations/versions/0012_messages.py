"""the job outbox, messages and their opt-outs (issue 11)

Revision ID: 0012_messages
Revises: 0011
Create Date: 2026-12-02

"""
import sqlalchemy as sa
from alembic import op

revision = "0012_messages"
down_revision = "0011"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("task", sa.String(80), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("key", sa.String(200)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("run_at", TS, nullable=False),
        sa.Column("lease_until", TS),
        sa.Column("dispatched_at", TS),
        sa.Column("deferred", sa.Boolean(), nullable=False),
        sa.Column("coop_id", sa.Integer()),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.UniqueConstraint("key", name="uq_jobs_key"),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'parked')",
                           name="status"),
    )
    op.create_index("ix_jobs_status_run_at", "jobs", ["status", "run_at"])
    op.create_index("ix_jobs_coop_id", "jobs", ["coop_id"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("coop_id", sa.Integer()),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("template", sa.String(60), nullable=False),
        sa.Column("event", sa.String(120), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("to_address", sa.String(254), nullable=False),
        sa.Column("subject", sa.String(200)),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(500)),
        sa.Column("unsubscribe", sa.Boolean(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("provider", sa.String(20)),
        sa.Column("provider_id", sa.String(120)),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("segments", sa.Integer()),
        sa.Column("encoding", sa.String(6)),
        sa.Column("send_after", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
        sa.Column("delivered_at", TS),
        sa.UniqueConstraint("event", "user_id", "channel", name="uq_messages_event"),
        sa.CheckConstraint("status IN ('queued', 'sent', 'delivered', 'failed')",
                           name="status"),
    )
    op.create_index("ix_messages_provider_id", "messages", ["provider", "provider_id"])
    op.create_index("ix_messages_coop_created", "messages", ["coop_id", "created_at"])
    op.create_index("ix_messages_user_created", "messages", ["user_id", "created_at"])
    op.create_table(
        "message_optouts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("topic", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("user_id", "topic", name="uq_optouts_user_topic"),
    )


def downgrade():
    op.drop_table("message_optouts")
    op.drop_table("messages")
    op.drop_table("jobs")
