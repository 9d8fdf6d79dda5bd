"""variation groups: the videos one request (`n`) or one "vary" made share a group id

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_videos_group_id"), ["group_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_group_id"))
        batch_op.drop_column("group_id")
