"""vPDQ, Meta's video hash: the PDQ hashes of frames sampled about once a second.

Built from frames safeeye already decoded and hashed, so a video is decoded once. The text
forms and the matching rule are those of the ``vpdq`` package (its hash files) and of
ThreatExchange's ``VPDQSignal`` (its signal strings), so hashes travel both ways.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from safeeye.signals.base import AnalysedMedia, MediaSignal, SignalContext
from safeeye.signals.pdq import PdqHash, distance_matrix
from safeeye.signals.registry import register
from safeeye.signals.variants import PdqSignal

#: The reference's thresholds: frame Hamming distance, minimum frame quality, and the share of
#: query frames that must match for ThreatExchange to call two videos a match.
VPDQ_DISTANCE_THRESHOLD = 31
VPDQ_QUALITY_THRESHOLD = 50
VPDQ_QUERY_MATCH_PERCENT = 80.0


@dataclass(frozen=True)
class VpdqFeature:
    """One hashed frame of a video: its number, time in seconds, PDQ quality and hash."""

    frame_number: int
    timestamp: float
    quality: int
    hash: PdqHash


@dataclass(frozen=True)
class VpdqMatch:
    """How much of each video matches the other, in percent of their distinct good frames."""

    query_match_percent: float
    target_match_percent: float

    def is_match(
        self, query_percent: float = VPDQ_QUERY_MATCH_PERCENT, target_percent: float = 0.0
    ) -> bool:
        """ThreatExchange's verdict: enough of the query found in the target (and vice versa)."""
        return (
            self.query_match_percent >= query_percent
            and self.target_match_percent >= target_percent
        )


def vpdq_from_frames(frames: Iterable[tuple[int, float, PdqHash]]) -> list[VpdqFeature]:
    """The vPDQ hash of a video from its sampled frames (frame number, seconds, PDQ hash)."""
    return [VpdqFeature(int(number), float(time), h.quality, h) for number, time, h in frames]


@register
class VpdqSignal(MediaSignal[list[VpdqFeature]]):
    """The vPDQ hash of a video, from the PDQ hashes of its one-per-second samples."""

    name: ClassVar[str] = "vpdq"
    after: ClassVar[tuple[str, ...]] = (PdqSignal.name,)
    stage: ClassVar[str] = "hashes"

    def compute(self, media: AnalysedMedia, context: SignalContext) -> list[VpdqFeature] | None:
        if media.info is None or media.info.media_type != "video":
            return None
        samples = [f for f in media.frames if f.reason == "sample" and PdqSignal.name in f.values]
        # vPDQ counts seconds from the first frame, as the reference implementation does.
        origin = samples[0].time if samples else 0.0
        return vpdq_from_frames(
            (f.index, f.time - origin, f.values[PdqSignal.name][0].hash) for f in samples
        )

    def encode(self, value: list[VpdqFeature]) -> Any:
        """The ``vpdq`` hash-file text."""
        return vpdq_to_text(value)

    def decode(self, data: Any) -> list[VpdqFeature]:
        return vpdq_from_text(data)

    def summary(self, values: Sequence[list[VpdqFeature]]) -> Any:
        return {"features": len(values[0])}


def vpdq_to_text(features: Sequence[VpdqFeature]) -> str:
    """The ``vpdq`` hash-file form: ``frame_number,quality,hash_hex,timestamp`` per line,
    the timestamp with 3 decimals, exactly as the reference's ``vpdq-hash-video`` writes it."""
    return "".join(
        f"{f.frame_number},{f.quality},{f.hash.hex},{f.timestamp:.3f}\n" for f in features
    )


def vpdq_from_text(text: str) -> list[VpdqFeature]:
    """Parse the hash-file form; raises ``ValueError`` on a malformed line."""
    features = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.strip().split(",")
        if len(parts) != 4:
            raise ValueError(f"a vPDQ line has 4 fields, got {len(parts)}")
        number, quality, hex_, time = parts
        features.append(
            VpdqFeature(
                int(number), float(time), int(quality), PdqHash.from_hex(hex_, int(quality))
            )
        )
    return features


def vpdq_to_signal(features: Sequence[VpdqFeature]) -> str:
    """ThreatExchange's ``VPDQSignal`` string: a JSON list of ``"hash_hex,quality,timestamp"``.

    Byte-identical to ``threatexchange.extensions.vpdq.vpdq_util.vpdq_to_json``, including its
    3-significant-digit timestamps (``{:.3}``); frame numbers are not part of this form.
    """
    return json.dumps([f"{f.hash.hex},{f.quality},{f.timestamp:.3}" for f in features])


def vpdq_from_signal(text: str) -> list[VpdqFeature]:
    """Parse a ``VPDQSignal`` string; frame numbers, absent from it, are the list positions."""
    features = []
    for number, item in enumerate(json.loads(text or "[]")):
        hex_, quality, time = item.split(",")
        features.append(
            VpdqFeature(number, float(time), int(quality), PdqHash.from_hex(hex_, int(quality)))
        )
    return features


def match_vpdq(
    query: Sequence[VpdqFeature],
    target: Sequence[VpdqFeature],
    distance_threshold: int = VPDQ_DISTANCE_THRESHOLD,
    quality_threshold: int = VPDQ_QUALITY_THRESHOLD,
) -> VpdqMatch:
    """The reference vPDQ comparison (ThreatExchange's ``match_VPDQ_hash_brute``).

    Each side keeps its first feature per distinct hash, then drops those below
    ``quality_threshold``; a feature matches when any feature of the other side is within
    ``distance_threshold``. An empty side gives 0 % (where the reference divides by zero).
    """
    q = _usable(query, quality_threshold)
    t = _usable(target, quality_threshold)
    if not q or not t:
        return VpdqMatch(0.0, 0.0)
    close = distance_matrix(q, t) <= distance_threshold
    return VpdqMatch(
        float(np.count_nonzero(close.any(axis=1)) * 100 / len(q)),
        float(np.count_nonzero(close.any(axis=0)) * 100 / len(t)),
    )


def _usable(features: Sequence[VpdqFeature], quality_threshold: int) -> list[PdqHash]:
    seen: set[bytes] = set()
    unique = []
    for f in features:  # dedupe first, then filter by quality: the reference's order
        if f.hash.bits not in seen:
            seen.add(f.hash.bits)
            unique.append(f)
    return [f.hash for f in unique if f.quality >= quality_threshold]
