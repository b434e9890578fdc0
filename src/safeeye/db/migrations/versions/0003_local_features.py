"""local features of known images

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 07:33:46.685300
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "reference_features",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("mirrored", sa.Boolean(), nullable=False),
        sa.Column("features_sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_reference_features_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["case_references.id"],
            name=op.f("fk_reference_features_reference_id_case_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_features")),
    )
    with op.batch_alter_table("reference_features", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reference_features_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reference_features_reference_id"), ["reference_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("reference_features", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_features_reference_id"))
        batch_op.drop_index(batch_op.f("ix_reference_features_case_id"))

    op.drop_table("reference_features")
