"""Local-feature (ORB) matching: the crop-tolerant second line behind PDQ variants.

PDQ moves about 15 bits per 1 % cut off one side, so a known image is found by PDQ only when
a crop hits a stored crop variant. ORB keypoints survive any crop that leaves enough of the
picture, different amounts per side, caption bars, resizing, JPEG and small rotations:

1. ``extract_features`` turns an image into up to 500 ORB keypoints (coordinates in the
   original image's pixels) and 256-bit descriptors, spread over a grid so that caption text
   or a busy border cannot take them all. ORB is not mirror-invariant: a known image is
   registered twice, as ``extract_features(image)`` and ``extract_features(image,
   mirrored=True)``, both under the same entry id.
2. ``LocalFeatureIndex.candidates`` votes: every query descriptor's nearest known descriptor
   gives one vote to its entry when it is close and clearly closer than the nearest
   descriptor of any *other* entry (Lowe's ratio test across entries, so an entry's own
   mirror or repeated texture does not cancel its votes). The entries with most votes are
   the candidates.
3. ``verify`` matches the query against one candidate's features and fits a similarity
   (scale, rotation, translation) from the known image to the query with RANSAC; crops,
   resizes, bars and small rotations are all similarities, and a 4-parameter model needs
   fewer inliers to be trusted than an 8-parameter homography, which also fits many more
   false configurations. It is accepted only with enough inliers spread over the picture and
   a sane transform.
4. ``aligned_pdq_distance`` warps the known image into the query's frame, crops both to the
   part they share and reports the PDQ distance of the two crops: the number a PDQ match
   would report had its crop variant existed.

The ``local_features`` signal of a scanned still is step 1's features and a small copy of the
still for step 4.
"""

from __future__ import annotations

import math
import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import faiss
import numpy as np

from safeeye.media.frames import Frame
from safeeye.signals.base import FrameSignal, SignalContext, Target
from safeeye.signals.pdq import hamming, pdq_hash
from safeeye.signals.registry import register

DESCRIPTOR_BYTES = 32
DESCRIPTOR_BITS = 8 * DESCRIPTOR_BYTES
#: Images are resized so their longest side is this (smaller ones are enlarged to it too, so
#: ORB's 31-pixel patches see the same amount of picture whatever the upload's size).
WORK_SIDE = 640
#: The keypoint grid (cells across the longest side); each cell keeps an equal share.
GRID_CELLS = 6
#: ORB settings: candidate keypoints detected per kept one, pyramid and FAST threshold.
_OVERDETECT = 4
_SCALE_FACTOR = 1.2
_LEVELS = 8
_EDGE = 19
_PATCH = 31
_FAST_THRESHOLD = 10

#: Descriptor pairs further apart than this (of 256 bits) never count as matches.
MAX_DISTANCE = 64
#: Lowe's ratio: the best match must be this much closer than the next alternative.
RATIO = 0.8
#: Neighbours fetched per query descriptor when looking for the nearest other entry.
_NEIGHBOURS = 4
#: Entry ids share FAISS ids with a per-entry descriptor counter in the low bits.
_SERIAL_BITS = 16

#: Transform sanity limits for ``verify``.
MIN_SCALE = 0.2
MAX_SCALE = 5.0
MAX_ROTATION_DEGREES = 30.0
MIN_OVERLAP = 0.3
#: Inliers must span at least this share of the part the two images share (not one logo).
MIN_SPREAD = 0.08

_MAGIC = b"SLF"
_VERSION = 1
_HEADER = struct.Struct("<3sBBIII")  # magic, version, flags, width, height, count
_FLAG_MIRRORED = 1


@dataclass(frozen=True, eq=False)
class LocalFeatures:
    """ORB keypoints and descriptors of one image.

    ``keypoints`` are (x, y) in pixels of the image the descriptors describe, at its original
    size: the mirror image ``image[:, ::-1]`` when ``mirrored``.
    """

    keypoints: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 32) uint8
    width: int
    height: int
    mirrored: bool = False

    def __len__(self) -> int:
        return len(self.descriptors)

    def to_bytes(self) -> bytes:
        """A compact, versioned encoding (about 40 bytes per keypoint)."""
        header = _HEADER.pack(
            _MAGIC, _VERSION, _FLAG_MIRRORED if self.mirrored else 0,
            self.width, self.height, len(self),
        )  # fmt: skip
        points = np.ascontiguousarray(self.keypoints, dtype="<f4").tobytes()
        return header + points + np.ascontiguousarray(self.descriptors, np.uint8).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Decode ``to_bytes``; raises ``ValueError`` on anything else."""
        if len(data) < _HEADER.size:
            raise ValueError("not local features: too short")
        magic, version, flags, width, height, count = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise ValueError(f"not local features version {_VERSION}")
        points_end = _HEADER.size + 8 * count
        if len(data) != points_end + DESCRIPTOR_BYTES * count:
            raise ValueError("local features: wrong length")
        points = np.frombuffer(data, "<f4", 2 * count, _HEADER.size).reshape(count, 2)
        descriptors = np.frombuffer(data, np.uint8, DESCRIPTOR_BYTES * count, points_end)
        return cls(
            points.astype(np.float32),
            descriptors.reshape(count, DESCRIPTOR_BYTES).copy(),
            width,
            height,
            bool(flags & _FLAG_MIRRORED),
        )


@dataclass(frozen=True, eq=False)
class Verification:
    """A geometrically verified match of a known image in a query image.

    ``transform`` (2x3) maps pixel coordinates of the original (unmirrored) known image to the
    query; its determinant is negative when the query is mirrored. ``overlap`` is the share of
    the smaller of the two pictures (the query frame, the known image mapped into it) that
    the other covers; ``spread`` the share of that common area the inliers span.
    """

    inliers: int
    inlier_ratio: float
    transform: np.ndarray
    overlap: float
    spread: float = 0.0
    scale: float = 1.0
    rotation: float = 0.0
    mirrored: bool = False


def extract_known(image: np.ndarray, max_features: int = 500) -> tuple[LocalFeatures, ...]:
    """What to store and index for a known image: its features and its mirror's."""
    return (
        extract_features(image, max_features),
        extract_features(image, max_features, mirrored=True),
    )


def extract_features(
    image: np.ndarray, max_features: int = 500, *, mirrored: bool = False
) -> LocalFeatures:
    """ORB features of an RGB (or grey, or RGBA) ``uint8`` image, spread over a grid.

    With ``mirrored`` the features describe ``image[:, ::-1]``: register both for a known
    image so that mirrored copies match too.
    """
    grey = _grey(image)
    if mirrored:
        grey = grey[:, ::-1]
    height, width = grey.shape
    scale = WORK_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(np.ascontiguousarray(grey), size, interpolation=interpolation)
    orb = cv2.ORB_create(
        nfeatures=max_features * _OVERDETECT,
        scaleFactor=_SCALE_FACTOR,
        nlevels=_LEVELS,
        edgeThreshold=_EDGE,
        patchSize=_PATCH,
        fastThreshold=_FAST_THRESHOLD,
    )
    keypoints = _spread(orb.detect(small, None), size, max_features)
    keypoints, descriptors = orb.compute(small, keypoints)
    if descriptors is None or not keypoints:
        return LocalFeatures(
            np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8),
            width, height, mirrored,
        )  # fmt: skip
    points = np.array([k.pt for k in keypoints], np.float32)
    points[:, 0] = (points[:, 0] + 0.5) * (width / size[0]) - 0.5
    points[:, 1] = (points[:, 1] + 0.5) * (height / size[1]) - 0.5
    return LocalFeatures(points, np.ascontiguousarray(descriptors, np.uint8), width, height,
                         mirrored)  # fmt: skip


#: The longest side of the copy of a still kept for verifying local-feature matches.
PREVIEW_SIDE = 640


@dataclass(frozen=True, eq=False)
class StillFeatures:
    """A scanned still's features, and a small copy of it to measure a verified match's
    aligned PDQ distance on. Kept in memory while the still is matched, never stored."""

    features: LocalFeatures
    preview: np.ndarray


@register
class LocalFeaturesSignal(FrameSignal[StillFeatures]):
    """ORB features of a still image, for crop-tolerant matching of known images (computed
    only when known images are registered; see ``pipeline.analyze``)."""

    name: ClassVar[str] = "local_features"
    applies_to: ClassVar[frozenset[Target]] = frozenset({Target.STILL})
    stage: ClassVar[str] = "hashes"
    stored: ClassVar[bool] = False

    def compute(self, frame: Frame, context: SignalContext) -> StillFeatures:
        return StillFeatures(extract_features(frame.image), fit_within(frame.image, PREVIEW_SIDE))

    def summary(self, values: Sequence[StillFeatures]) -> Any:
        return {"keypoints": max(len(v.features) for v in values)}


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` scaled down (area averaging) so its longest side is at most ``side``."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)


def _spread(keypoints: tuple, size: tuple[int, int], limit: int) -> list:
    """At most ``limit`` keypoints: the strongest of each grid cell in turn, so that every
    part of the picture keeps its share and dense text or texture cannot crowd it out."""
    if len(keypoints) <= limit:
        return list(keypoints)
    width, height = size
    cell = max(width, height) / GRID_CELLS
    cells: dict[tuple[int, int], list] = defaultdict(list)
    for k in sorted(keypoints, key=lambda k: -k.response):
        cells[int(k.pt[0] // cell), int(k.pt[1] // cell)].append(k)
    chosen: list = []
    queues = list(cells.values())
    depth = 0
    while len(chosen) < limit:  # round-robin over cells, strongest first
        row = [q[depth] for q in queues if depth < len(q)]
        if not row:
            break
        chosen.extend(sorted(row, key=lambda k: -k.response)[: limit - len(chosen)])
        depth += 1
    return chosen


class LocalFeatureIndex:
    """Descriptor search over the features of many known images, each under an entry id.

    An entry may be added more than once (its mirrored features, say): votes are per entry.
    With ``lists`` 0 the search is exact (a flat binary index); otherwise it is an inverted
    file of that many lists, of which ``probes`` are searched per descriptor, and it must be
    ``train``-ed on a sample of real descriptors (the known images' own will do) before
    ``add``. See ``candidates`` for the costs.
    """

    def __init__(self, lists: int = 0, probes: int = 16) -> None:
        if lists:
            quantizer = faiss.IndexBinaryFlat(DESCRIPTOR_BITS)
            ivf = faiss.IndexBinaryIVF(quantizer, DESCRIPTOR_BITS, lists)
            ivf.nprobe = probes
            self._quantizer = quantizer  # FAISS does not own it: keep it alive
            self._index: faiss.IndexBinary = ivf
        else:
            self._index = faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(DESCRIPTOR_BITS))
        self._ids: dict[int, list[np.ndarray]] = {}

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    def train(self, descriptors: np.ndarray) -> None:
        """Cluster an inverted-file index's lists on real descriptors (at least 40 per list)."""
        self._index.train(np.ascontiguousarray(descriptors, np.uint8))

    def __len__(self) -> int:
        """The number of entries."""
        return len(self._ids)

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self._ids

    @property
    def descriptor_count(self) -> int:
        return int(self._index.ntotal)

    def add(self, entry_id: int, features: LocalFeatures) -> None:
        """Index ``features`` under ``entry_id`` (0 <= id < 2**47), beside any already there."""
        if not 0 <= entry_id < 1 << (63 - _SERIAL_BITS):
            raise ValueError(f"entry id out of range: {entry_id}")
        held = self._ids.setdefault(entry_id, [])
        start = sum(len(ids) for ids in held)
        if start + len(features) > 1 << _SERIAL_BITS:
            raise ValueError(f"too many descriptors for entry {entry_id}")
        if not len(features):
            return
        ids = (np.int64(entry_id) << _SERIAL_BITS) + np.arange(start, start + len(features))
        self._index.add_with_ids(np.ascontiguousarray(features.descriptors, np.uint8), ids)
        held.append(ids)

    def remove(self, entry_id: int) -> bool:
        """Drop every descriptor of ``entry_id``; returns whether it was present."""
        held = self._ids.pop(entry_id, None)
        if held is None:
            return False
        if held:
            self._index.remove_ids(np.concatenate(held))
        return True

    def votes(self, query: LocalFeatures) -> dict[int, int]:
        """For every entry, how many query descriptors pass the ratio test to it."""
        if not len(query) or not self._index.ntotal:
            return {}
        k = min(_NEIGHBOURS, int(self._index.ntotal))
        distances, labels = self._index.search(np.ascontiguousarray(query.descriptors, np.uint8), k)
        entries = np.where(labels >= 0, labels >> _SERIAL_BITS, -1)
        best = entries[:, 0]
        # The nearest descriptor of another entry; none among the k: the k-th distance.
        other = (entries != best[:, None]) & (entries >= 0)
        first_other = np.where(other.any(axis=1), other.argmax(axis=1), k - 1)
        second = distances[np.arange(len(best)), first_other].astype(np.float64)
        second = np.where(other.any(axis=1), second, np.maximum(second, MAX_DISTANCE / RATIO))
        good = (best >= 0) & (distances[:, 0] <= MAX_DISTANCE) & (distances[:, 0] < RATIO * second)
        ids, counts = np.unique(best[good], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}

    def candidates(
        self, query: LocalFeatures, *, min_votes: int = 8, max_candidates: int = 5
    ) -> list[tuple[int, int]]:
        """The entries with at least ``min_votes`` votes, most first: (entry id, votes).

        Exact search costs (query descriptors) x (indexed descriptors) Hamming distances:
        about 0.25-0.5 s for 1 000 known images (2 cores), linear in their number; an inverted
        file (1 024 lists, 16 probes) took 13 ms there, and 4 096 lists with 8 probes 40 ms for
        10 000, with no candidate lost on the test transformations.
        """
        ranked = sorted(self.votes(query).items(), key=lambda item: (-item[1], item[0]))
        return [(e, v) for e, v in ranked if v >= min_votes][:max_candidates]


def verify(
    query: LocalFeatures, known: LocalFeatures, *, min_inliers: int = 15
) -> Verification | None:
    """Whether ``query`` shows (part of) ``known``: a RANSAC similarity fit from the known
    keypoints to the query's with at least ``min_inliers`` inliers, a scale within
    ``MIN_SCALE``-``MAX_SCALE``, a rotation within ``MAX_ROTATION_DEGREES``, an ``overlap`` of
    at least ``MIN_OVERLAP`` and inliers spread over ``MIN_SPREAD`` of the common area."""
    fit = fit_similarity(query, known)
    if fit is None or fit[1] < max(min_inliers, 2):
        return None
    matrix, inliers, matched, dst = fit
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    rotation = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    if not MIN_SCALE <= scale <= MAX_SCALE or abs(rotation) > MAX_ROTATION_DEGREES:
        return None
    corners = _corners(known.width, known.height) @ matrix[:, :2].T + matrix[:, 2]
    frame = _corners(query.width, query.height)
    common, _ = cv2.intersectConvexConvex(corners.astype(np.float32), frame.astype(np.float32))
    smaller = min(query.width * query.height, known.width * known.height * scale * scale)
    overlap = float(common) / smaller if smaller > 0 else 0.0
    hull = cv2.contourArea(cv2.convexHull(dst))
    spread = float(hull) / common if common > 0 else 0.0
    if overlap < MIN_OVERLAP or spread < MIN_SPREAD:
        return None
    transform = matrix.astype(np.float64)
    if known.mirrored:  # the fit used mirror coordinates: x_mirror = width - 1 - x
        flip = np.array([[-1.0, 0.0, known.width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        transform = transform @ flip
    return Verification(
        inliers, inliers / matched, transform, overlap, spread, scale, rotation, known.mirrored
    )


def verify_known(
    query: LocalFeatures, known: Sequence[LocalFeatures], *, min_inliers: int = 15
) -> Verification | None:
    """``verify`` against each feature set of one known image (as indexed: the image and its
    mirror); the verification with most inliers, or None."""
    results = [v for f in known if (v := verify(query, f, min_inliers=min_inliers))]
    return max(results, key=lambda v: v.inliers, default=None)


def fit_similarity(
    query: LocalFeatures, known: LocalFeatures
) -> tuple[np.ndarray, int, int, np.ndarray] | None:
    """The RANSAC similarity from ``known`` to ``query`` keypoints, without acceptance rules:
    (2x3 matrix, inliers, ratio-test matches, the inliers' query points); None below 3 matches.
    """
    if len(query) < 2 or len(known) < 2:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(query.descriptors, known.descriptors, k=2)
    good = [
        p[0]
        for p in pairs
        if len(p) == 2 and p[0].distance <= MAX_DISTANCE and p[0].distance < RATIO * p[1].distance
    ]
    if len(good) < 3:
        return None
    dst = query.keypoints[[m.queryIdx for m in good]]
    src = known.keypoints[[m.trainIdx for m in good]]
    threshold = max(2.0, 0.006 * max(query.width, query.height))
    matrix, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold,
        maxIters=4000, confidence=0.995, refineIters=10,
    )  # fmt: skip
    if matrix is None:
        return None
    inlier = mask.ravel().astype(bool)
    return matrix, int(inlier.sum()), len(good), dst[inlier].astype(np.float32)


def _corners(width: int, height: int) -> np.ndarray:
    """The picture's outline as pixel-edge coordinates (pixel centres are integers)."""
    return np.array(
        [[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]]
    )


def aligned_box(
    verification: Verification, known_shape: tuple[int, ...], query_shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the largest query-frame box, found cheaply, inside both the query and
    the known image mapped into it (for rotations under 45 degrees)."""
    height, width = known_shape[:2]
    corners = _corners(width, height) @ verification.transform[:, :2].T
    corners += verification.transform[:, 2]
    xs, ys = np.sort(corners[:, 0]), np.sort(corners[:, 1])
    x0 = max(0, math.ceil(xs[1] + 0.5))
    y0 = max(0, math.ceil(ys[1] + 0.5))
    x1 = min(query_shape[1], math.floor(xs[2] + 0.5))
    y1 = min(query_shape[0], math.floor(ys[2] + 0.5))
    return x0, y0, max(x0, x1), max(y0, y1)


def aligned_region(
    known_image: np.ndarray, verification: Verification, query_shape: tuple[int, ...]
) -> np.ndarray:
    """The part of ``known_image`` the query shows, in the query's frame, cropped to
    ``aligned_box`` (crop the query to the same box to compare them)."""
    x0, y0, x1, y1 = aligned_box(verification, known_image.shape, query_shape)
    matrix = verification.transform.copy()
    source = known_image
    if verification.scale < 1:  # shrink with area averaging first: warpAffine would alias
        source = cv2.resize(
            known_image,
            (max(1, round(known_image.shape[1] * verification.scale)),
             max(1, round(known_image.shape[0] * verification.scale))),
            interpolation=cv2.INTER_AREA,
        )  # fmt: skip
        sx = known_image.shape[1] / source.shape[1]
        sy = known_image.shape[0] / source.shape[0]
        # Pixel centres: x_known = (x_small + 0.5) * sx - 0.5.
        pre = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        matrix = matrix @ pre
    matrix[:, 2] -= (x0, y0)
    return cv2.warpAffine(
        np.ascontiguousarray(source), matrix, (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def aligned_pdq_distance(
    query_image: np.ndarray, known_image: np.ndarray, verification: Verification
) -> int:
    """The PDQ distance between the query and the known image, both cropped to the part they
    share, aligned by the verified transform and trimmed of edge rows and columns where they
    disagree (a caption bar over a part the known image has); 256 when nothing is left."""
    x0, y0, x1, y1 = aligned_box(verification, known_image.shape, query_image.shape)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 256
    region = aligned_region(known_image, verification, query_image.shape)
    crop = query_image[y0:y1, x0:x1]
    top, bottom, left, right = _agreeing(crop, region)
    if bottom - top < 8 or right - left < 8:
        return 256
    return hamming(
        pdq_hash(np.ascontiguousarray(crop[top:bottom, left:right])),
        pdq_hash(np.ascontiguousarray(region[top:bottom, left:right])),
    )


#: Edge lines whose median grey difference exceeds this are trimmed by ``_agreeing``.
_DISAGREE = 40
_MAX_TRIM = 0.4


def _agreeing(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): ``a`` and ``b`` (same size) without the edge rows and
    columns where they differ (median absolute grey difference over ``_DISAGREE``)."""
    diff = cv2.absdiff(cv2.blur(_grey(a), (5, 5)), cv2.blur(_grey(b), (5, 5)))
    height, width = diff.shape
    step = max(1, max(height, width) // 256)  # a sample of each line is enough
    bad_rows = np.median(diff[:, ::step], axis=1) > _DISAGREE
    bad_cols = np.median(diff[::step], axis=0) > _DISAGREE
    top = _run(bad_rows, _MAX_TRIM)
    bottom = height - _run(bad_rows[::-1], _MAX_TRIM)
    left = _run(bad_cols, _MAX_TRIM)
    right = width - _run(bad_cols[::-1], _MAX_TRIM)
    return top, bottom, left, right


def _run(flags: np.ndarray, limit: float) -> int:
    """How many leading ``flags`` are set, at most ``limit`` of them all."""
    clear = np.flatnonzero(~flags)
    run = int(clear[0]) if len(clear) else len(flags)
    return min(run, int(len(flags) * limit))
