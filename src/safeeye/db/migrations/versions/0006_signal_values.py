"""signal values stored generically: one row per media (and frame), signal name and version

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signal_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=True),
        sa.Column("signal", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_signal_values_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_values")),
    )
    with op.batch_alter_table("signal_values", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signal_values_media_id"), ["media_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signal_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_values_media_id"))
    op.drop_table("signal_values")
