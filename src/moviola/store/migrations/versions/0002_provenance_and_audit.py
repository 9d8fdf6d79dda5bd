"""provenance and audit: import origin, content hash, credentials, audit events

The audit log is append-only in the database itself, not only through the ORM: triggers refuse
every UPDATE of an entry, and every DELETE except of entries older than the cutoff that the
retention prune records in `audit_retention` first (a cutoff that may never lie in the future).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("origin", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("credentials", sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_videos_content_sha256"), ["content_sha256"], unique=False
        )
        # A library page is one owner's newest rows; a lineage tree follows both links down.
        batch_op.create_index("ix_videos_owner_seq", ["owner", "seq"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_videos_remixed_from_video_id"), ["remixed_from_video_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_videos_source_video_id"), ["source_video_id"], unique=False
        )
    op.create_table(
        "audit_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_video_id"), ["video_id"], unique=False)
    retention = op.create_table(
        "audit_retention",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("cutoff", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(retention, [{"id": 1, "cutoff": 0.0}])
    for statement in _TRIGGERS.get(op.get_bind().dialect.name, ()):
        op.execute(statement)


_REFUSED = "audit entries are append-only: only the retention prune removes old ones"
_FUTURE = "the audit retention cutoff cannot lie in the future"

_TRIGGERS = {
    "sqlite": (
        f"""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
        BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
        # No row (or a NULL cutoff) compares as "not older": refused.
        f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
        WHEN OLD.at >= COALESCE((SELECT cutoff FROM audit_retention WHERE id = 1), OLD.at)
        BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
        f"""CREATE TRIGGER audit_retention_not_ahead BEFORE UPDATE ON audit_retention
        WHEN NEW.cutoff > CAST(strftime('%s', 'now') AS REAL)
        BEGIN SELECT RAISE(ABORT, '{_FUTURE}'); END""",
    ),
    "postgresql": (
        f"""CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
               AND OLD.at < (SELECT cutoff FROM audit_retention WHERE id = 1) THEN
                RETURN OLD;
            END IF;
            RAISE EXCEPTION '{_REFUSED}' USING ERRCODE = 'restrict_violation';
        END $$""",
        """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
        """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
        FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
        f"""CREATE FUNCTION audit_retention_not_ahead() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.cutoff > extract(epoch FROM now()) THEN
                RAISE EXCEPTION '{_FUTURE}' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$""",
        """CREATE TRIGGER audit_retention_not_ahead BEFORE UPDATE ON audit_retention
        FOR EACH ROW EXECUTE FUNCTION audit_retention_not_ahead()""",
    ),
}

_DROP = {
    "sqlite": (
        "DROP TRIGGER IF EXISTS audit_retention_not_ahead",
        "DROP TRIGGER IF EXISTS audit_events_no_delete",
        "DROP TRIGGER IF EXISTS audit_events_no_update",
    ),
    "postgresql": (
        "DROP TRIGGER IF EXISTS audit_retention_not_ahead ON audit_retention",
        "DROP FUNCTION IF EXISTS audit_retention_not_ahead()",
        "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
        "DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events",
        "DROP FUNCTION IF EXISTS audit_events_append_only()",
    ),
}


def downgrade() -> None:
    for statement in _DROP.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    op.drop_table("audit_retention")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_video_id"))
        batch_op.drop_index(batch_op.f("ix_audit_events_actor"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
    op.drop_table("audit_events")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_source_video_id"))
        batch_op.drop_index(batch_op.f("ix_videos_remixed_from_video_id"))
        batch_op.drop_index("ix_videos_owner_seq")
        batch_op.drop_index(batch_op.f("ix_videos_content_sha256"))
        batch_op.drop_column("credentials")
        batch_op.drop_column("origin")
        batch_op.drop_column("content_sha256")
