"""Scan speed: images per second (1-megapixel photos) and video speed as a multiple of real time
(a 720p video made by looping the fixture clip), end to end and per stage.

    python bench/scan.py            # 60 photos, 60-second 720p video
    python bench/scan.py --quick    # 16 photos, 20-second video (CI)

The headline figures are printed on lines of their own: ``images_per_second: N`` and
``video_x_realtime: N``. The baseline in the same run is the reference vPDQ implementation
(the ``vpdq`` package) hashing the same video, a lower bound for any full decode of it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "src"))

from safeeye.app import SafeEye  # noqa: E402
from safeeye.cases.service import add_faces, add_known, create_case  # noqa: E402
from safeeye.config import Settings  # noqa: E402
from safeeye.pipeline.analyze import STAGES  # noqa: E402
from safeeye.pipeline.scan import Scanner, ScanResult  # noqa: E402
from safeeye.work import Actor  # noqa: E402

BENCH = Actor.operator("bench")


def make_photos(folder: Path, count: int) -> list[Path]:
    """``count`` distinct ~1-megapixel JPEGs cut from the fixture photos."""
    sources = sorted((FIXTURES / "faces").glob("*.jpg"))
    photos = []
    for i in range(count):
        im = ImageOps.exif_transpose(Image.open(sources[i % len(sources)])).convert("RGB")
        shift = (i // len(sources)) * 7
        im = im.crop((shift, shift, im.width - shift, im.height - shift))
        scale = (1_000_000 / (im.width * im.height)) ** 0.5
        im = im.resize(
            (round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS
        )
        path = folder / f"photo-{i:03d}.jpg"
        im.save(path, quality=88)
        photos.append(path)
    return photos


def make_video(path: Path, seconds: float) -> Path:
    """An H.264 1280x720 video of ``seconds`` made by looping and scaling the fixture clip."""
    with av.open(str(FIXTURES / "video" / "short_hamilton_clip.mp4")) as source:
        stream = source.streams.video[0]
        rate = stream.average_rate or Fraction(30)
        frames = [f.to_ndarray(format="rgb24") for f in source.decode(stream)]
    total = round(seconds * rate)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        for i in range(total):
            frame = av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")
            frame = frame.reformat(width=1280, height=720, format="yuv420p")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def stage_line(results: list[ScanResult], wall: float) -> str:
    totals = {stage: sum(r.timings.get(stage, 0.0) for r in results) for stage in STAGES}
    busy = sum(totals.values()) or 1.0
    parts = [
        f"{stage} {totals[stage]:.2f}s ({100 * totals[stage] / busy:.0f}%)" for stage in STAGES
    ]
    return f"  stages (CPU-seconds over all workers, wall {wall:.2f}s): " + ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small inputs, for CI")
    parser.add_argument("--photos", type=int, default=None)
    parser.add_argument("--video-seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument(
        "--no-known", action="store_true", help="register no known image (no ORB on stills)"
    )
    args = parser.parse_args()
    n_photos = args.photos or (16 if args.quick else 60)
    seconds = args.video_seconds or (20.0 if args.quick else 60.0)

    work = Path(tempfile.mkdtemp(prefix="safeeye-bench-"))
    try:
        t0 = time.perf_counter()
        photos = make_photos(work, n_photos)
        video = make_video(work / "video-720p.mp4", seconds)
        print(
            f"inputs: {n_photos} photos (~1 MP), {seconds:.0f}-s 1280x720 H.264 video "
            f"(made in {time.perf_counter() - t0:.1f}s)"
        )

        settings = Settings(data_dir=work / "data", scan_workers=args.workers, actor="bench")
        app = SafeEye(settings)
        app.init()
        app.call(BENCH, create_case, "BENCH-LMM")
        app.call(BENCH, add_faces, "BENCH-LMM", [FIXTURES / "faces" / "lin-manuel-miranda.png"])
        # A known image too, so scans also pay for what finds known images (PDQ variants and
        # local features); some bench photos are crops of it and are matched.
        app.call(BENCH, create_case, "BENCH-KNOWN")
        if not args.no_known:
            app.call(BENCH, add_known, "BENCH-KNOWN", [FIXTURES / "faces" / "rose_leslie2.jpg"])
        scanner = Scanner(app)
        scanner.warm_up()  # workers start and load their models before the clock starts

        start = time.perf_counter()
        results = scanner.scan_paths(photos)
        wall = time.perf_counter() - start
        errors = [r for r in results if r.error]
        known = sum(any(m.case == "BENCH-KNOWN" for m in r.matches) for r in results)
        print(
            f"photos: {len(results)} in {wall:.2f}s, {len(errors)} errors, "
            f"{sum(r.faces for r in results)} faces, {known} matches of the known image"
        )
        print(stage_line(results, wall))
        print(f"images_per_second: {len(results) / wall:.2f}")

        start = time.perf_counter()
        (result,) = scanner.scan_paths([video])
        wall = time.perf_counter() - start
        faces = [m for m in result.matches if m.kind == "face" and m.case == "BENCH-LMM"]
        print(
            f"video: {seconds:.0f}s in {wall:.2f}s, {result.frames_analyzed} frames analysed, "
            f"face match frames: {faces[0].frame_count if faces else 0}, error: {result.error}"
        )
        print(stage_line([result], wall))
        print(f"video_x_realtime: {seconds / wall:.2f}")

        import vpdq

        start = time.perf_counter()
        features = vpdq.computeHash(str(video), seconds_per_hash=1.0)
        base = time.perf_counter() - start
        print(
            f"baseline: reference vpdq package hashing the same video: {base:.2f}s "
            f"({len(features)} features, {seconds / base:.1f}x real time)"
        )
        scanner.close()
        app.close()
        if not faces:
            print("ERROR: the reference face was not found in the benchmark video", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
