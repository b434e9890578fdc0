"""The decision rules: which index hits become a match, and the evidence a match records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

MatchKind = Literal["face", "hash"]


@dataclass(frozen=True)
class FrameHit:
    """One frame of the scanned media that matched a reference."""

    frame_index: int
    time: float
    distance: float
    reference_id: int
    detail: str = ""  # the hash variant, or the face's box


@dataclass
class MatchCandidate:
    """A proposed link from media to a case, before it is stored."""

    case_id: int
    kind: MatchKind
    hits: list[FrameHit] = field(default_factory=list)
    exact: str | None = None  # "sha256" / "md5" when the bytes are identical to a known item

    @property
    def distance(self) -> float:
        return 0.0 if self.exact else min(h.distance for h in self.hits)

    @property
    def frame_times(self) -> list[float]:
        return sorted({round(h.time, 3) for h in self.hits})

    @property
    def frame_count(self) -> int:
        return max(1, len({h.frame_index for h in self.hits}))

    def evidence(self) -> dict[str, Any]:
        """What a reviewer and an auditor need to see why this matched (no sensitive data)."""
        best: dict[int, FrameHit] = {}
        for hit in self.hits:
            if hit.frame_index not in best or hit.distance < best[hit.frame_index].distance:
                best[hit.frame_index] = hit
        frames = [
            {
                "frame": h.frame_index,
                "time": round(h.time, 3),
                "distance": round(h.distance, 4),
                "reference_id": h.reference_id,
                "detail": h.detail,
            }
            for h in sorted(best.values(), key=lambda h: h.time)
        ]
        return {
            "kind": self.kind,
            "exact": self.exact,
            "best_distance": round(self.distance, 4),
            "frame_count": self.frame_count,
            "frames": frames,
            "references": sorted({h.reference_id for h in self.hits}),
        }


def group_hits(hits: Iterable[tuple[int, FrameHit]], kind: MatchKind) -> dict[int, MatchCandidate]:
    """Hits (case id, frame hit) grouped into one candidate per case."""
    candidates: dict[int, MatchCandidate] = {}
    by_case: dict[int, list[FrameHit]] = defaultdict(list)
    for case_id, hit in hits:
        by_case[case_id].append(hit)
    for case_id, case_hits in by_case.items():
        candidates[case_id] = MatchCandidate(case_id=case_id, kind=kind, hits=case_hits)
    return candidates
