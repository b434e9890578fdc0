"""the category a reviewer gives a confirmed match (illegally filmed, synthetic, a minor)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("category", sa.String(length=24), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("category")
