"""a counselor marks an SOS report's request for contact as handled

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 07:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safeeye.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sos_reports") as batch:
        batch.add_column(
            sa.Column(
                "contact_handled_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("sos_reports") as batch:
        batch.drop_column("contact_handled_at")
