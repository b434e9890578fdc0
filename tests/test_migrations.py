"""The migrations: the models and the migrated schema agree; every step can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from safeeye.app import SafeEye
from safeeye.cases.sealing import (
    open_consent,
    open_match_evidence,
    open_reference_hash,
    open_reference_hashes,
    reference_digest,
)
from safeeye.crypto import new_data_key, wrap_key
from safeeye.db.models import Base, Case, Match, Reference, ReferenceHash
from safeeye.db.session import alembic_config, downgrade, make_engine, migrate


def test_migrated_schema_matches_the_models_and_downgrades_cleanly(any_db_app: SafeEye) -> None:
    engine = any_db_app.db.engine
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
    downgrade(engine, "base")
    migrate(engine)


def test_existing_case_data_is_sealed_by_the_upgrade_and_unsealed_by_the_downgrade(
    tmp_path: Path,
) -> None:
    master = new_data_key()
    case_key = new_data_key()
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")  # the schema before sealing, with plaintext rows
        conn.execute(
            text(
                "INSERT INTO cases (id, code, status, consent_basis, wrapped_key, created_at) "
                "VALUES (1, 'OLD-1', 'open', 'signed form', :w, CURRENT_TIMESTAMP)"
            ),
            {"w": wrap_key(master, case_key, "case:1")},
        )
        conn.execute(
            text(
                "INSERT INTO case_references (id, case_id, kind, sha256, md5, media_type, "
                "blob_address, created_at) VALUES (1, 1, 'known', :s, :m, 'image', 'x', "
                "CURRENT_TIMESTAMP)"
            ),
            {"s": "ab" * 32, "m": "cd" * 16},
        )
        conn.execute(
            text(
                "INSERT INTO reference_hashes (id, reference_id, case_id, algorithm, variant, "
                "hash_hex, quality, frame_time) VALUES (1, 1, 1, 'pdq', 'original', :h, 90, 0)"
            ),
            {"h": "ef" * 32},
        )
        conn.execute(
            text(
                "INSERT INTO media (id, sha256, md5, size_bytes, status, created_at) "
                "VALUES (1, :s, :m, 10, 'scanned', CURRENT_TIMESTAMP)"
            ),
            {"s": "12" * 32, "m": "34" * 16},
        )
        conn.execute(
            text(
                "INSERT INTO matches (id, media_id, case_id, kind, distance, frame_count, "
                "evidence, status, created_at, updated_at) VALUES (1, 1, 1, 'hash', 3, 1, "
                "'{\"frames\": [1]}', 'pending', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    with pytest.raises(RuntimeError, match="needs the master key"):
        migrate(engine)
    migrate(engine, master)
    with Session(engine) as session:
        case = session.get(Case, 1)
        assert case is not None and case.consent_sealed
        assert open_consent(case_key, 1, case.consent_sealed) == "signed form"
        ref = session.get(Reference, 1)
        assert ref is not None
        assert open_reference_hashes(case_key, 1, ref.hashes_sealed) == ("ab" * 32, "cd" * 16)
        assert ref.content_digest == reference_digest(case_key, "known", "ab" * 32)
        row = session.get(ReferenceHash, 1)
        assert row is not None and open_reference_hash(case_key, 1, row.hash_sealed) == "ef" * 32
        match = session.get(Match, 1)
        assert match is not None
        assert open_match_evidence(case_key, 1, match.evidence_sealed) == {"frames": [1]}
        columns = {c["name"] for c in inspect(session.connection()).get_columns("cases")}
        assert "consent_basis" not in columns
    downgrade(engine, "0004", master)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT consent_basis FROM cases")).scalar_one() == "signed form"
        assert conn.execute(text("SELECT hash_hex FROM reference_hashes")).scalar_one() == "ef" * 32
        assert conn.execute(text("SELECT count(*) FROM matches")).scalar_one() == 1
    engine.dispose()
