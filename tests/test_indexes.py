"""The reference indexes: inclusive thresholds, incremental add and remove."""

from __future__ import annotations

import numpy as np

from safeeye.matching.indexes import FaceIndex, IndexEntry, PdqIndex


def _flip(bits: bytes, n: int) -> bytes:
    out = bytearray(bits)
    for i in range(n):
        out[i // 8] ^= 1 << (i % 8)
    return bytes(out)


def test_pdq_index_threshold_is_inclusive_and_rows_can_be_removed() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    other = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    index = PdqIndex()
    index.add([IndexEntry(10, 1, 100, "orig"), IndexEntry(11, 2, 200, "orig")], [base, other])
    hits = index.search([_flip(base, 31), _flip(base, 32)], 31)
    assert [(h.entry.row_id, h.distance, h.query) for h in hits] == [(10, 31.0, 0)]
    assert index.remove([10, 999]) == 1
    assert index.search([base], 31) == [] and len(index) == 1
    index.add([IndexEntry(11, 2, 200, "orig")], [other])  # adding twice is a no-op
    assert len(index) == 1


def test_face_index_finds_embeddings_within_the_distance() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 128)).astype(np.float32)
    index = FaceIndex()
    index.add([IndexEntry(1, 7, 70), IndexEntry(2, 8, 80)], np.stack([a, b]))
    near = a + 0.59 / np.sqrt(128)
    hits = index.search(near[None, :], 0.6)
    assert [h.entry.case_id for h in hits] == [7]
    assert abs(hits[0].distance - 0.59) < 1e-3
    index.remove([1])
    assert index.search(near[None, :], 0.6) == []
