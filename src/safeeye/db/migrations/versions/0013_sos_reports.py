"""SOS reports: what a victim (or someone for her) reported on the public SOS page

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safeeye.db.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC = safeeye.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sos_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("tracking_digest", sa.String(length=64), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("reporter", sa.String(length=16), nullable=False),
        sa.Column("consent_face_matching", sa.Boolean(), nullable=False),
        sa.Column("consent_hash_sharing", sa.Boolean(), nullable=False),
        sa.Column("details_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("url_count", sa.Integer(), nullable=False),
        sa.Column("photo_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("accepted_at", UTC, nullable=True),
        sa.Column("consent_withdrawn_at", UTC, nullable=True),
        sa.Column("contact_requested_at", UTC, nullable=True),
        sa.Column("contact_message_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("last_status_view_at", UTC, nullable=True),
        sa.Column("last_event_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_sos_reports_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sos_reports")),
        sa.UniqueConstraint("tracking_digest", name=op.f("uq_sos_reports_tracking_digest")),
    )
    op.create_index(op.f("ix_sos_reports_case_id"), "sos_reports", ["case_id"], unique=True)
    op.create_index(
        op.f("ix_sos_reports_last_event_at"), "sos_reports", ["last_event_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sos_reports_last_event_at"), table_name="sos_reports")
    op.drop_index(op.f("ix_sos_reports_case_id"), table_name="sos_reports")
    op.drop_table("sos_reports")
