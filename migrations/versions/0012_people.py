"""people (issue 11): phones in E.164, each person's channel, time zone and consent to
announcements, and the one-time codes of password reset, phone login and confirmed changes

Existing phones (digits only, "573001234567" or "3001234567") become E.164: read as "+" and
the digits first, else as a national number of the country of the person's coop (their first
membership; Colombia without one). A number that still does not parse is kept as it was and
a warning printed: nobody loses their login. Invitations to a phone are converted the same way
(their coop's country), so that they still meet the account they were sent to.

Revision ID: 0012_people
Revises: 0011
Create Date: 2026-12-02

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012_people"
down_revision = "0011"
branch_labels = None
depends_on = None

DEFAULT_REGION = "CO"


def e164(raw, region=None):
    """E.164 for a stored phone, or None when it cannot be read: "+"+digits first, then the
    digits as a national number of `region` (Colombia by default). Frozen here, not imported
    from the app, so the migration reads the same in a year."""
    import phonenumbers
    if raw is None:
        return None
    text = str(raw).strip()
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if not digits:
        return None
    for candidate, hint in (("+" + digits, None), (digits, region or DEFAULT_REGION)):
        try:
            number = phonenumbers.parse(candidate, hint)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def convert_phones(conn, warn=print) -> dict:
    """Rewrites every users.phone and invitations.phone not yet in E.164; returns counts
    {"converted", "kept"}. A number taken already in its E.164 form (the same person typed
    twice) is kept as it was, with a warning."""
    counts = {"converted": 0, "kept": 0}
    rows = conn.execute(sa.text(
        "SELECT u.id, u.phone, (SELECT c.country FROM memberships m JOIN cooperatives c "
        "ON c.id = m.coop_id WHERE m.user_id = u.id ORDER BY m.id LIMIT 1) "
        "FROM users u WHERE u.phone IS NOT NULL")).all()
    taken = {phone for _id, phone, _c in rows}
    for user_id, phone, country in rows:
        if phone.startswith("+"):
            continue
        new = e164(phone, country)
        if new is None or new in taken:
            counts["kept"] += 1
            warn(f"0012_people: user {user_id}: phone {phone!r} kept as it was "
                 f"({'not a valid number' if new is None else 'its E.164 form is taken'}); "
                 "correct it on the account page")
            continue
        conn.execute(sa.text("UPDATE users SET phone = :p WHERE id = :id"),
                     {"p": new, "id": user_id})
        taken.add(new)
        counts["converted"] += 1
    invited = conn.execute(sa.text(
        "SELECT i.id, i.phone, c.country FROM coop_invitations i JOIN cooperatives c "
        "ON c.id = i.coop_id WHERE i.phone IS NOT NULL")).all()
    for invitation_id, phone, country in invited:
        if phone.startswith("+"):
            continue
        new = e164(phone, country)
        if new is None:
            warn(f"0012_people: invitation {invitation_id}: phone {phone!r} kept as it was")
            continue
        conn.execute(sa.text("UPDATE coop_invitations SET phone = :p WHERE id = :id"),
                     {"p": new, "id": invitation_id})
    return counts


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("announcements", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        "one_time_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.String(length=1000), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_one_time_codes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_time_codes")),
    )
    with op.batch_alter_table("one_time_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_one_time_codes_user_id"), ["user_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_one_time_codes_secret_hash"), ["secret_hash"],
                              unique=False)
    convert_phones(op.get_bind())


def downgrade():
    # Back to digits only, as the earlier code stored them.
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE users SET phone = substr(phone, 2) WHERE phone LIKE '+%'"))
    conn.execute(sa.text(
        "UPDATE coop_invitations SET phone = substr(phone, 2) WHERE phone LIKE '+%'"))
    with op.batch_alter_table("one_time_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_one_time_codes_secret_hash"))
        batch_op.drop_index(batch_op.f("ix_one_time_codes_user_id"))
    op.drop_table("one_time_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("announcements")
        batch_op.drop_column("timezone")
        batch_op.drop_column("channel")
