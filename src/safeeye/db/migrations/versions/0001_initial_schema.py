"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 06:59:23.169576
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import safeeye.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("consent_basis", sa.String(length=200), nullable=True),
        sa.Column("consent_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purged_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("code", name=op.f("uq_cases_code")),
    )
    op.create_table(
        "media",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=16), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("blob_address", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("face_count", sa.Integer(), nullable=True),
        sa.Column("sexual_score", sa.Float(), nullable=True),
        sa.Column(
            "sexual_scores",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("vpdq", sa.Text(), nullable=True),
        sa.Column("created_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scanned_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media")),
        sa.UniqueConstraint("sha256", name=op.f("uq_media_sha256")),
    )
    op.create_table(
        "case_references",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("media_type", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("blob_address", sa.String(length=64), nullable=False),
        sa.Column("label_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_references_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_references")),
        sa.UniqueConstraint("case_id", "kind", "sha256", name=op.f("uq_case_references_case_id")),
    )
    with op.batch_alter_table("case_references", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_references_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_references_sha256"), ["sha256"], unique=False)

    op.create_table(
        "matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_matches_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_matches_media_id_media"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matches")),
        sa.UniqueConstraint("media_id", "case_id", "kind", name=op.f("uq_matches_media_id")),
    )
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matches_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_matches_media_id"), ["media_id"], unique=False)

    op.create_table(
        "media_faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("frame_time", sa.Float(), nullable=False),
        sa.Column(
            "box",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("embedding_sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_media_faces_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_faces")),
    )
    with op.batch_alter_table("media_faces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_faces_media_id"), ["media_id"], unique=False)

    op.create_table(
        "media_frames",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("pdq_hex", sa.String(length=64), nullable=True),
        sa.Column("pdq_quality", sa.Integer(), nullable=True),
        sa.Column(
            "pdq_variants",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("sexual_score", sa.Float(), nullable=True),
        sa.Column(
            "sexual_scores",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("face_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["media_id"],
            ["media.id"],
            name=op.f("fk_media_frames_media_id_media"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_frames")),
    )
    with op.batch_alter_table("media_frames", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_media_frames_media_id"), ["media_id"], unique=False)

    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("location_key", sa.String(length=64), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("seen_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column(
            "http_headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("server_ip", sa.String(length=64), nullable=True),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["media_id"], ["media.id"], name=op.f("fk_sightings_media_id_media"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint("location_key", "sha256", name=op.f("uq_sightings_location_key")),
    )
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sightings_media_id"), ["media_id"], unique=False)

    op.create_table(
        "reference_faces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("frame_time", sa.Float(), nullable=False),
        sa.Column(
            "box",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("embedding_sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_reference_faces_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["case_references.id"],
            name=op.f("fk_reference_faces_reference_id_case_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_faces")),
    )
    with op.batch_alter_table("reference_faces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reference_faces_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reference_faces_reference_id"), ["reference_id"], unique=False
        )

    op.create_table(
        "reference_hashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("hash_hex", sa.String(length=64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("frame_time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_reference_hashes_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["case_references.id"],
            name=op.f("fk_reference_hashes_reference_id_case_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_hashes")),
    )
    with op.batch_alter_table("reference_hashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reference_hashes_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_reference_hashes_reference_id"), ["reference_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("reference_hashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_hashes_reference_id"))
        batch_op.drop_index(batch_op.f("ix_reference_hashes_case_id"))

    op.drop_table("reference_hashes")
    with op.batch_alter_table("reference_faces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reference_faces_reference_id"))
        batch_op.drop_index(batch_op.f("ix_reference_faces_case_id"))

    op.drop_table("reference_faces")
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sightings_media_id"))

    op.drop_table("sightings")
    with op.batch_alter_table("media_frames", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_frames_media_id"))

    op.drop_table("media_frames")
    with op.batch_alter_table("media_faces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_faces_media_id"))

    op.drop_table("media_faces")
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matches_media_id"))
        batch_op.drop_index(batch_op.f("ix_matches_case_id"))

    op.drop_table("matches")
    with op.batch_alter_table("case_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_references_sha256"))
        batch_op.drop_index(batch_op.f("ix_case_references_case_id"))

    op.drop_table("case_references")
    op.drop_table("media")
    op.drop_table("cases")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
