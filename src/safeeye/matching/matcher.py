"""The matcher: reference indexes loaded from the database, kept in step, queried per scan."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.crypto import unseal
from safeeye.db.models import Case, Reference, ReferenceFace, ReferenceFeatures, ReferenceHash
from safeeye.matching.indexes import FaceIndex, IndexEntry, PdqIndex
from safeeye.matching.rules import FrameHit, MatchCandidate, group_hits
from safeeye.media.images import decode_still
from safeeye.signals.local_features import (
    LocalFeatureIndex,
    LocalFeatures,
    Verification,
    aligned_pdq_distance,
    verify,
)
from safeeye.signals.pdq import PdqHash

#: Above this many indexed descriptors (about 150 known images) the local-feature index
#: becomes an inverted file: ~13 ms a query at 1 000 known images instead of ~300 ms.
LOCAL_EXACT_LIMIT = 150_000

if TYPE_CHECKING:
    from safeeye.app import SafeEye
    from safeeye.pipeline.analyze import FrameAnalysis, MediaAnalysis


class Matcher:
    """Finds the cases a piece of media belongs to, by exact hash, PDQ and face."""

    def __init__(self, app: SafeEye) -> None:
        # Searches here are small and run beside the scan workers, which keep the cores busy:
        # FAISS's OpenMP threads would only spin against them.
        faiss.omp_set_num_threads(1)
        self.app = app
        self.settings = app.settings
        self.pdq = PdqIndex()
        self.faces = FaceIndex()
        self.local = LocalFeatureIndex()
        self._local_inverted = False
        self._local_rows: dict[int, int] = {}  # reference_features row -> reference id
        self._local_known: dict[int, tuple[int, list[LocalFeatures]]] = {}  # ref -> case, sets
        self._exact: dict[str, set[tuple[int, int]]] = defaultdict(set)  # hash -> (case, ref)
        self._exact_refs: set[int] = set()
        self._lock = threading.Lock()

    def refresh(self, session: Session) -> None:
        """Bring the indexes in step with the references in the database (incremental)."""
        with self._lock:
            self._refresh_faces(session)
            self._refresh_hashes(session)
            self._refresh_features(session)
            self._refresh_exact(session)

    def _refresh_exact(self, session: Session) -> None:
        present = set(
            session.execute(select(Reference.id).where(Reference.kind == "known")).scalars()
        )
        gone = self._exact_refs - present
        if gone:
            for entries in self._exact.values():
                entries.difference_update({e for e in entries if e[1] in gone})
            self._exact_refs -= gone
        missing = present - self._exact_refs
        for ref, raw in self._unsealed(session, Reference, missing, "ref-hashes", "hashes_sealed"):
            self._exact[raw[:32].hex()].add((ref.case_id, ref.id))
            self._exact[raw[32:].hex()].add((ref.case_id, ref.id))
            self._exact_refs.add(ref.id)

    def _refresh_faces(self, session: Session) -> None:
        present = set(session.execute(select(ReferenceFace.id)).scalars())
        self.faces.remove(self.faces.row_ids - present)
        missing = present - self.faces.row_ids
        if not missing:
            return
        entries, vectors = [], []
        for face, raw in self._unsealed(
            session, ReferenceFace, missing, "face", "embedding_sealed"
        ):
            entries.append(
                IndexEntry(face.id, face.case_id, face.reference_id, frame_time=face.frame_time)
            )
            vectors.append(np.frombuffer(raw, dtype=np.float32))
        if entries:
            self.faces.add(entries, np.stack(vectors))

    def _refresh_hashes(self, session: Session) -> None:
        present = set(session.execute(select(ReferenceHash.id)).scalars())
        self.pdq.remove(self.pdq.row_ids - present)
        missing = present - self.pdq.row_ids
        if not missing:
            return
        entries, hashes = [], []
        for row, raw in self._unsealed(session, ReferenceHash, missing, "ref-hash", "hash_sealed"):
            entries.append(
                IndexEntry(row.id, row.case_id, row.reference_id, row.variant, row.frame_time)
            )
            hashes.append(PdqHash.from_hex(raw.hex(), row.quality).bits)
        if entries:
            self.pdq.add(entries, hashes)

    def _refresh_features(self, session: Session) -> None:
        present = set(session.execute(select(ReferenceFeatures.id)).scalars())
        gone = set(self._local_rows) - present
        for reference_id in {self._local_rows[row] for row in gone}:
            self.local.remove(reference_id)
            self._local_known.pop(reference_id, None)
        for row in gone:
            del self._local_rows[row]
        missing = present - set(self._local_rows)
        if not missing:
            return
        for row, raw in self._unsealed(
            session, ReferenceFeatures, missing, "features", "features_sealed"
        ):
            features = LocalFeatures.from_bytes(raw)
            self.local.add(row.reference_id, features)
            self._local_known.setdefault(row.reference_id, (row.case_id, []))[1].append(features)
            self._local_rows[row.id] = row.reference_id
        if self.local.descriptor_count > LOCAL_EXACT_LIMIT and not self._local_inverted:
            self._invert_local_index()

    def _unsealed(
        self,
        session: Session,
        model: type[Reference | ReferenceFace | ReferenceFeatures | ReferenceHash],
        ids: set[int],
        purpose: str,
        sealed_column: str,
    ) -> Iterator[tuple[Any, bytes]]:
        """The rows ``ids`` of a table of sealed case data, each with the plaintext of its
        ``sealed_column`` (sealed under the row's case key, bound to ``purpose:id``)."""
        if not ids:
            return
        rows = session.execute(
            select(model, Case).join(Case, Case.id == model.case_id).where(model.id.in_(ids))
        ).all()
        keys: dict[int, bytes] = {}
        for row, case in rows:
            if case.id not in keys:
                keys[case.id] = self.app.keys.case_key(case)
            sealed = getattr(row, sealed_column)
            yield row, unseal(keys[case.id], sealed, f"{purpose}:{row.id}".encode())

    def _invert_local_index(self) -> None:
        """Rebuild the local-feature index as an inverted file (exact search costs every
        descriptor of every known image per query: about 0.3 s at 1 000 known images)."""
        sets = [(ref, fs) for ref, (_case, sets) in self._local_known.items() for fs in sets]
        descriptors = np.concatenate([fs.descriptors for _ref, fs in sets])
        lists = max(16, min(4096, len(descriptors) // 400))
        sample = np.random.default_rng(0).permutation(len(descriptors))[: 256 * lists]
        index = LocalFeatureIndex(lists=lists, probes=16)
        index.train(descriptors[sample])
        for reference_id, features in sets:
            index.add(reference_id, features)
        self.local = index
        self._local_inverted = True

    def match(self, analysis: MediaAnalysis) -> list[MatchCandidate]:
        """Every case this media matches, one candidate per (case, kind), with evidence."""
        with self._lock:
            hash_candidates = self._match_hashes(analysis)
            face_candidates = self._match_faces(analysis)
        return [*hash_candidates.values(), *face_candidates.values()]

    def _match_hashes(self, analysis: MediaAnalysis) -> dict[int, MatchCandidate]:
        queries: list[bytes] = []
        origin: list[tuple[int, float, str]] = []
        for frame in analysis.frames:
            for variant in frame.variants:
                if variant.hash.quality < self.settings.pdq_min_quality:
                    continue
                queries.append(variant.hash.bits)
                origin.append((frame.index, frame.time, variant.variant))
        hits = []
        for hit in self.pdq.search(queries, self.settings.pdq_threshold):
            index, time, query_variant = origin[hit.query]
            detail = f"{query_variant}~{hit.entry.variant}"
            hits.append(
                (
                    hit.entry.case_id,
                    FrameHit(index, time, hit.distance, hit.entry.reference_id, detail),
                )
            )
        found = {case_id for case_id, _ in hits}
        hits.extend(self._match_local(analysis, found))
        candidates = group_hits(hits, "hash")
        for key, kind in ((analysis.hashes.sha256, "sha256"), (analysis.hashes.md5, "md5")):
            for case_id, ref_id in self._exact.get(key, ()):
                candidate = candidates.setdefault(case_id, MatchCandidate(case_id, "hash"))
                candidate.exact = candidate.exact or kind
                candidate.hits.append(FrameHit(0, 0.0, 0.0, ref_id, kind))
        return candidates

    def _match_local(self, analysis: MediaAnalysis, found: set[int]) -> list[tuple[int, FrameHit]]:
        """Known images a still shows only in part (a crop no PDQ variant covers): ORB
        candidates, geometric verification, then the PDQ distance of the aligned region."""
        hits: list[tuple[int, FrameHit]] = []
        for frame in analysis.frames:
            if frame.local is None or frame.preview is None:
                continue
            for reference_id, _votes in self.local.candidates(frame.local):
                case_id, feature_sets = self._local_known[reference_id]
                if case_id in found:
                    continue
                verified = [v for fs in feature_sets if (v := verify(frame.local, fs))]
                if not verified:
                    continue
                best = max(verified, key=lambda v: v.inliers)
                distance = self._aligned_distance(reference_id, frame, best)
                if distance is None or distance > self.settings.pdq_threshold:
                    continue
                detail = f"local~inliers:{best.inliers}"
                hits.append(
                    (case_id, FrameHit(frame.index, frame.time, distance, reference_id, detail))
                )
                found.add(case_id)
        return hits

    def _aligned_distance(
        self, reference_id: int, frame: FrameAnalysis, verification: Verification
    ) -> int | None:
        """PDQ distance of the query's preview and the known image aligned into it."""
        assert frame.preview is not None and frame.local is not None
        known = self._known_image(reference_id)
        if known is None:
            return None
        scale = frame.preview.shape[1] / frame.local.width
        scaled = replace(
            verification,
            transform=verification.transform * scale,
            scale=verification.scale * scale,
        )
        return aligned_pdq_distance(frame.preview, known, scaled)

    def _known_image(self, reference_id: int) -> np.ndarray | None:
        """The known image's pixels, decrypted in memory (never written out)."""
        # Read-only: this runs while the caller's unit of work holds the write lock.
        with self.app.db.session(read_only=True) as session:
            reference = session.get(Reference, reference_id)
            if reference is None:
                return None
            case = session.get(Case, reference.case_id)
            if case is None or case.wrapped_key is None:
                return None
            data = self.app.blobs.get_bytes(reference.blob_address, self.app.keys.case_key(case))
        return decode_still(data)

    def _match_faces(self, analysis: MediaAnalysis) -> dict[int, MatchCandidate]:
        embeddings, origin = [], []
        for frame in analysis.frames:
            for face in frame.faces:
                embeddings.append(face.embedding)
                origin.append((frame.index, frame.time, face.box))
        if not embeddings:
            return {}
        hits = []
        for hit in self.faces.search(np.stack(embeddings), self.settings.face_distance):
            index, time, box = origin[hit.query]
            detail = ",".join(str(v) for v in box)
            hits.append(
                (
                    hit.entry.case_id,
                    FrameHit(index, time, hit.distance, hit.entry.reference_id, detail),
                )
            )
        return group_hits(hits, "face")
