"""tasks over rows: media and URL fetches carry a lease; shared host slots; named leases

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safeeye.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_LEASE = ("attempts", "queued_at", "lease_owner", "lease_until", "not_before")


def _lease_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("queued_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("not_before", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("media") as batch:
        for column in _lease_columns():
            batch.add_column(column)
    op.execute("UPDATE media SET status = 'pending' WHERE status = 'new'")
    with op.batch_alter_table("url_states") as batch:
        batch.add_column(sa.Column("candidate", safeeye.db.types.JSONType, nullable=True))
        batch.add_column(sa.Column("visit_id", sa.Integer(), nullable=True))
        for column in _lease_columns():
            batch.add_column(column)
        batch.create_foreign_key(
            "fk_url_states_visit_id_visits", "visits", ["visit_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_url_states_visit_id", ["visit_id"], unique=False)
    op.create_table(
        "host_slots",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("next_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_slots")),
    )
    op.create_table(
        "named_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("until", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_named_leases")),
    )


def downgrade() -> None:
    op.drop_table("named_leases")
    op.drop_table("host_slots")
    with op.batch_alter_table("url_states") as batch:
        batch.drop_index("ix_url_states_visit_id")
        batch.drop_constraint("fk_url_states_visit_id_visits", type_="foreignkey")
        for name in (*_LEASE, "visit_id", "candidate"):
            batch.drop_column(name)
    op.execute("UPDATE media SET status = 'new' WHERE status = 'pending'")
    with op.batch_alter_table("media") as batch:
        for name in _LEASE:
            batch.drop_column(name)
