"""FAISS indexes over reference signals: PDQ hashes (binary, Hamming) and face embeddings (L2).

Each index maps FAISS ids to the reference row they came from, so a hit names its case. Rows
can be added and removed one by one, so the indexes follow the database without a rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import faiss
import numpy as np

PDQ_BITS = 256
PDQ_BYTES = PDQ_BITS // 8


@dataclass(frozen=True)
class IndexEntry:
    """What an index id stands for: one row of reference_hashes or reference_faces."""

    row_id: int
    case_id: int
    reference_id: int
    variant: str = ""
    frame_time: float = 0.0


@dataclass(frozen=True)
class Hit:
    entry: IndexEntry
    distance: float
    query: int


class _IdMappedIndex:
    def __init__(self, index: faiss.Index | faiss.IndexBinary) -> None:
        self._index = index
        self._entries: dict[int, IndexEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, row_id: int) -> bool:
        return row_id in self._entries

    @property
    def row_ids(self) -> set[int]:
        return set(self._entries)

    def _add(self, entries: list[IndexEntry], vectors: np.ndarray) -> None:
        fresh = [i for i, e in enumerate(entries) if e.row_id not in self._entries]
        if not fresh:
            return
        ids = np.array([entries[i].row_id for i in fresh], dtype=np.int64)
        self._index.add_with_ids(np.ascontiguousarray(vectors[fresh]), ids)
        for i in fresh:
            self._entries[entries[i].row_id] = entries[i]

    def remove(self, row_ids: Iterable[int]) -> int:
        """Drop these rows; returns how many were present."""
        present = [r for r in row_ids if r in self._entries]
        if present:
            self._index.remove_ids(np.array(present, dtype=np.int64))
            for r in present:
                del self._entries[r]
        return len(present)

    def _range(self, queries: np.ndarray, radius: float, scale: float) -> list[Hit]:
        if not self._entries or len(queries) == 0:
            return []
        lims, distances, labels = self._index.range_search(np.ascontiguousarray(queries), radius)
        hits = []
        for q in range(len(queries)):
            for k in range(lims[q], lims[q + 1]):
                entry = self._entries.get(int(labels[k]))
                if entry is not None:
                    hits.append(Hit(entry, float(distances[k]) ** scale, q))
        return hits


class PdqIndex(_IdMappedIndex):
    """Hamming-distance search over 256-bit PDQ hashes."""

    def __init__(self) -> None:
        super().__init__(faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(PDQ_BITS)))

    def add(self, entries: list[IndexEntry], hashes: list[bytes]) -> None:
        vectors = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, PDQ_BYTES)
        self._add(entries, vectors)

    def search(self, hashes: list[bytes], threshold: int) -> list[Hit]:
        """Every entry within ``threshold`` bits (inclusive) of each query hash."""
        if not hashes:
            return []
        queries = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, PDQ_BYTES)
        # FAISS returns distances strictly below the radius.
        return self._range(queries, threshold + 1, 1.0)


class FaceIndex(_IdMappedIndex):
    """Euclidean search over 128-d face embeddings."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__(faiss.IndexIDMap2(faiss.IndexFlatL2(dim)))
        self.dim = dim

    def add(self, entries: list[IndexEntry], embeddings: np.ndarray) -> None:
        self._add(entries, np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim))

    def search(self, embeddings: np.ndarray, threshold: float) -> list[Hit]:
        """Every entry within Euclidean ``threshold`` (inclusive) of each query embedding."""
        queries = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim)
        # FAISS works in squared L2 and returns distances strictly below the radius.
        return self._range(queries, threshold * threshold * (1 + 1e-6), 0.5)
