"""live progress: what a running job is doing now (stage, step, timings, preview), and an
index on each model's completed runs for the time estimates

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("live", sa.JSON(), nullable=True))
        batch_op.create_index(
            "ix_videos_engine_model_status_seq", ["engine_model", "status", "seq"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index("ix_videos_engine_model_status_seq")
        batch_op.drop_column("live")
