"""the trash (a deleted video is restorable until it is purged) and share links

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.Double(), nullable=True))
        batch_op.create_index(batch_op.f("ix_videos_deleted_at"), ["deleted_at"], unique=False)
    # Deleted before there was a trash: their files are already gone.
    op.execute("UPDATE videos SET purged_at = deleted_at WHERE deleted_at IS NOT NULL")

    op.create_table(
        "share_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_share_links_video_id"), ["video_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_share_links_owner"), ["owner"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_share_links_owner"))
        batch_op.drop_index(batch_op.f("ix_share_links_video_id"))
    op.drop_table("share_links")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_deleted_at"))
        batch_op.drop_column("purged_at")
