"""Face-distance calibration: genuine (same person) and impostor (different people) distances
between every pair of faces in the fixture photos, and the error rates at each threshold.

    python bench/face_calibration.py [--quick]

Prints the distance of every pair, the closest impostor pair, the farthest genuine pair, and a
table of false-match / false-non-match rates, ending with ``calibrated_face_distance: N`` (the
midpoint of the gap between genuine and impostor distances when they separate).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from safeeye.signals.faces import FaceAnalyzer  # noqa: E402

# Who is in each single-person fixture photo.
PEOPLE = {
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "obama3.jpg": "obama",
    "biden.jpg": "biden",
    "biden2.jpg": "biden",
    "rose_leslie1.jpg": "rose",
    "rose_leslie2.jpg": "rose",
    "johnsnow_test1.jpg": "kit",
    "lin-manuel-miranda.png": "lmm",
    "alex-lacamoire.png": "alex",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="accepted for CI symmetry")
    parser.parse_args()
    analyzer = FaceAnalyzer()
    embeddings: dict[str, np.ndarray] = {}
    for name in PEOPLE:
        image = ImageOps.exif_transpose(Image.open(ROOT / "tests" / "fixtures" / "faces" / name))
        faces = analyzer.predict(np.asarray(image.convert("RGB")))
        embeddings[name] = faces[0].embedding
    genuine, impostor = [], []
    for a, b in itertools.combinations(PEOPLE, 2):
        distance = float(np.linalg.norm(embeddings[a] - embeddings[b]))
        same = PEOPLE[a] == PEOPLE[b]
        (genuine if same else impostor).append((distance, a, b))
    genuine.sort()
    impostor.sort()
    print(f"genuine pairs: {len(genuine)}, impostor pairs: {len(impostor)}")
    for distance, a, b in genuine:
        print(f"  genuine  {distance:.3f}  {a} ~ {b}")
    for distance, a, b in impostor[:5]:
        print(f"  impostor {distance:.3f}  {a} ~ {b}  (closest)")
    print("threshold  false_match_rate  false_non_match_rate")
    for threshold in (0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        fmr = sum(d <= threshold for d, _, _ in impostor) / len(impostor)
        fnmr = sum(d > threshold for d, _, _ in genuine) / len(genuine)
        print(f"  {threshold:.2f}     {fmr:.3f}             {fnmr:.3f}")
    worst_genuine, best_impostor = genuine[-1][0], impostor[0][0]
    print(f"farthest_genuine: {worst_genuine:.3f}")
    print(f"closest_impostor: {best_impostor:.3f}")
    if worst_genuine < best_impostor:
        print(f"calibrated_face_distance: {(worst_genuine + best_impostor) / 2:.3f}")
    else:
        print("calibrated_face_distance: overlap (genuine and impostor distances overlap)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
