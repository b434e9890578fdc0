"""a crawl's frontier in the database: crawls (their counters) and crawl pages (one task each)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import safeeye.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, safeeye.db.types.UTCDateTime(timezone=True), nullable=nullable)


def _reference(table: str, column: str, parent: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "crawls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        _time("started_at", nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("media", sa.Integer(), nullable=False),
        sa.Column("traps", safeeye.db.types.JSONType, nullable=False),
        sa.Column("stopped", sa.String(length=32), nullable=True),
        _reference("crawls", "source_id", "sources", "CASCADE"),
        _reference("crawls", "visit_id", "visits", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawls")),
    )
    with op.batch_alter_table("crawls") as batch:
        batch.create_index(batch.f("ix_crawls_source_id"), ["source_id"], unique=False)
        batch.create_index(batch.f("ix_crawls_visit_id"), ["visit_id"], unique=False)
    op.create_table(
        "crawl_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("crawl_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=64), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("found", sa.String(length=8), nullable=False),
        sa.Column("referrer", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("queued_at"),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        _time("lease_until"),
        _time("not_before"),
        _time("finished_at"),
        _reference("crawl_pages", "crawl_id", "crawls", "CASCADE"),
        _reference("crawl_pages", "source_id", "sources", "CASCADE"),
        _reference("crawl_pages", "visit_id", "visits", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_pages")),
        sa.UniqueConstraint("crawl_id", "url_key", name=op.f("uq_crawl_pages_crawl_id")),
    )
    with op.batch_alter_table("crawl_pages") as batch:
        batch.create_index(batch.f("ix_crawl_pages_source_id"), ["source_id"], unique=False)
        batch.create_index(batch.f("ix_crawl_pages_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    op.drop_table("crawl_pages")
    op.drop_table("crawls")
