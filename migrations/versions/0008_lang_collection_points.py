"""collection points: a cooperative's own list; the listings' typed points move into it

Revision ID: 0008_lang_points
Revises: 0008_lang
Create Date: 2026-12-01

Every distinct collection point typed on a listing (trimmed, per cooperative) becomes a
point of that cooperative, and the listing keeps its name (trimmed): nothing is lost, and the
manager can then rename or merge spellings on the collection points page.
"""
import sqlalchemy as sa
from alembic import op

from coop.common.models import UTCDateTime

revision = '0008_lang_points'
down_revision = '0008_lang'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'collection_points',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('coop_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=160), nullable=False),
        sa.Column('place', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['coop_id'], ['cooperatives.id'],
                                name=op.f('fk_collection_points_coop_id_cooperatives')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_points')),
        sa.UniqueConstraint('coop_id', 'name', name=op.f('uq_collection_points_coop_id_name')),
    )
    with op.batch_alter_table('collection_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_points_coop_id'), ['coop_id'],
                              unique=False)
    bind = op.get_bind()
    listings = sa.table("listings", sa.column("id", sa.Integer),
                        sa.column("coop_id", sa.Integer),
                        sa.column("collection_point", sa.String))
    points = sa.table("collection_points", sa.column("coop_id", sa.Integer),
                      sa.column("name", sa.String), sa.column("place", sa.String),
                      sa.column("created_at", UTCDateTime()))
    trimmed = sa.func.trim(listings.c.collection_point)
    bind.execute(listings.update().where(listings.c.collection_point != trimmed)
                 .values(collection_point=trimmed))
    rows = bind.execute(sa.select(listings.c.coop_id, listings.c.collection_point).distinct()
                        .where(listings.c.collection_point != "")
                        .order_by(listings.c.coop_id, listings.c.collection_point)).all()
    if rows:
        from datetime import datetime, timezone
        now = datetime.now(timezone.utc)
        bind.execute(points.insert(), [{"coop_id": coop_id, "name": name[:160], "place": "",
                                        "created_at": now} for coop_id, name in rows])


def downgrade():
    with op.batch_alter_table('collection_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_points_coop_id'))
    op.drop_table('collection_points')
