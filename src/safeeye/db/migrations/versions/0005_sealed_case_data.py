"""sealed case data: consent, known media's hashes, match evidence; service keys

Everything that identifies or links a case is sealed under the case key, so purging the case
(destroying its key) leaves nothing readable. Existing rows are sealed here, which needs the
master key: safeeye passes it in ``config.attributes["master_key"]``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 15:00:00.000000
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import context, op

import safeeye.db.types
from safeeye.crypto import derive_key, keyed_digest, seal, unseal, unwrap_key

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", safeeye.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_keys")),
    )
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("consent_sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("case_references") as batch:
        batch.add_column(sa.Column("content_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hashes_sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("reference_hashes") as batch:
        batch.add_column(sa.Column("hash_sealed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("evidence_sealed", sa.LargeBinary(), nullable=True))

    _seal_existing_rows(op.get_bind())

    with op.batch_alter_table("cases") as batch:
        batch.drop_column("consent_basis")
    with op.batch_alter_table("case_references") as batch:
        batch.drop_index("ix_case_references_sha256")
        batch.drop_constraint("uq_case_references_case_id", type_="unique")
        batch.alter_column("content_digest", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hashes_sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch.create_unique_constraint(
            "uq_case_references_case_id", ["case_id", "kind", "content_digest"]
        )
        batch.drop_column("sha256")
        batch.drop_column("md5")
    with op.batch_alter_table("reference_hashes") as batch:
        batch.alter_column("hash_sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("hash_hex")
    with op.batch_alter_table("matches") as batch:
        batch.alter_column("evidence_sealed", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("evidence")


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("consent_basis", sa.String(length=200), nullable=True))
    with op.batch_alter_table("case_references") as batch:
        batch.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("md5", sa.String(length=32), nullable=True))
    with op.batch_alter_table("reference_hashes") as batch:
        batch.add_column(sa.Column("hash_hex", sa.String(length=64), nullable=True))
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("evidence", safeeye.db.types.JSONType, nullable=True))

    _unseal_existing_rows(op.get_bind())

    with op.batch_alter_table("matches") as batch:
        batch.alter_column("evidence", existing_type=safeeye.db.types.JSONType, nullable=False)
        batch.drop_column("evidence_sealed")
    with op.batch_alter_table("reference_hashes") as batch:
        batch.alter_column("hash_hex", existing_type=sa.String(length=64), nullable=False)
        batch.drop_column("hash_sealed")
    with op.batch_alter_table("case_references") as batch:
        batch.drop_constraint("uq_case_references_case_id", type_="unique")
        batch.alter_column("sha256", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("md5", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint("uq_case_references_case_id", ["case_id", "kind", "sha256"])
        batch.create_index("ix_case_references_sha256", ["sha256"], unique=False)
        batch.drop_column("hashes_sealed")
        batch.drop_column("content_digest")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("consent_sealed")
    op.drop_table("service_keys")


# -- data: the same sealing the application does (cases/sealing.py), frozen here -------------


def _case_keys(bind: sa.Connection) -> dict[int, bytes]:
    rows = bind.execute(sa.text("SELECT id, wrapped_key FROM cases WHERE wrapped_key IS NOT NULL"))
    rows = rows.fetchall()
    if not rows:
        return {}
    master = context.config.attributes.get("master_key")
    if master is None:
        raise RuntimeError(
            "this migration seals existing case data and needs the master key: run it through "
            "safeeye (any safeeye command migrates), not the bare alembic command"
        )
    return {cid: unwrap_key(master, bytes(wrapped), f"case:{cid}") for cid, wrapped in rows}


def _seal_existing_rows(bind: sa.Connection) -> None:
    keys = _case_keys(bind)
    for cid, consent in bind.execute(
        sa.text("SELECT id, consent_basis FROM cases WHERE consent_basis IS NOT NULL")
    ).fetchall():
        if cid in keys:
            bind.execute(
                sa.text("UPDATE cases SET consent_sealed = :s WHERE id = :id"),
                {"s": seal(keys[cid], consent.encode(), f"consent:{cid}".encode()), "id": cid},
            )
    refs = bind.execute(sa.text("SELECT id, case_id, kind, sha256, md5 FROM case_references"))
    for rid, cid, kind, sha256, md5 in refs.fetchall():
        key = keys[cid]
        digest = keyed_digest(derive_key(key, "lookup"), kind, sha256)
        sealed = seal(key, bytes.fromhex(sha256) + bytes.fromhex(md5), f"ref-hashes:{rid}".encode())
        bind.execute(
            sa.text(
                "UPDATE case_references SET content_digest = :d, hashes_sealed = :s WHERE id = :id"
            ),
            {"d": digest, "s": sealed, "id": rid},
        )
    for hid, cid, hex_ in bind.execute(
        sa.text("SELECT id, case_id, hash_hex FROM reference_hashes")
    ).fetchall():
        bind.execute(
            sa.text("UPDATE reference_hashes SET hash_sealed = :s WHERE id = :id"),
            {"s": seal(keys[cid], bytes.fromhex(hex_), f"ref-hash:{hid}".encode()), "id": hid},
        )
    for mid, cid, evidence in bind.execute(
        sa.text("SELECT id, case_id, evidence FROM matches")
    ).fetchall():
        data = evidence if isinstance(evidence, dict) else json.loads(evidence or "{}")
        bind.execute(
            sa.text("UPDATE matches SET evidence_sealed = :s WHERE id = :id"),
            {"s": seal(keys[cid], _json(data), f"match:{mid}".encode()), "id": mid},
        )


def _unseal_existing_rows(bind: sa.Connection) -> None:
    keys = _case_keys(bind)
    for cid, sealed in bind.execute(
        sa.text("SELECT id, consent_sealed FROM cases WHERE consent_sealed IS NOT NULL")
    ).fetchall():
        if cid in keys:
            text = unseal(keys[cid], bytes(sealed), f"consent:{cid}".encode()).decode()
            bind.execute(
                sa.text("UPDATE cases SET consent_basis = :c WHERE id = :id"),
                {"c": text, "id": cid},
            )
    for rid, cid, sealed in bind.execute(
        sa.text("SELECT id, case_id, hashes_sealed FROM case_references")
    ).fetchall():
        raw = unseal(keys[cid], bytes(sealed), f"ref-hashes:{rid}".encode())
        bind.execute(
            sa.text("UPDATE case_references SET sha256 = :s, md5 = :m WHERE id = :id"),
            {"s": raw[:32].hex(), "m": raw[32:].hex(), "id": rid},
        )
    for hid, cid, sealed in bind.execute(
        sa.text("SELECT id, case_id, hash_sealed FROM reference_hashes")
    ).fetchall():
        raw = unseal(keys[cid], bytes(sealed), f"ref-hash:{hid}".encode())
        bind.execute(
            sa.text("UPDATE reference_hashes SET hash_hex = :h WHERE id = :id"),
            {"h": raw.hex(), "id": hid},
        )
    evidence_table = sa.table("matches", sa.column("id"), sa.column("evidence", sa.JSON))
    for mid, cid, sealed in bind.execute(
        sa.text("SELECT id, case_id, evidence_sealed FROM matches")
    ).fetchall():
        data = json.loads(unseal(keys[cid], bytes(sealed), f"match:{mid}".encode()))
        bind.execute(
            evidence_table.update().where(evidence_table.c.id == mid).values(evidence=data)
        )


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
