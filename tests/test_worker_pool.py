"""Analysis in supervised worker processes: results in input order, long videos split, and a
worker killed mid-analysis costs only the file (or the video segment) it was analysing."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import synthetic_media
from conftest import FACES, make_settings
from safeeye.pipeline.pool import ProcessAnalyzer, split_video


def test_long_videos_are_split_between_workers_and_short_ones_are_not() -> None:
    assert split_video(10.0, workers=2) is None  # not worth splitting
    assert split_video(None, workers=2) is None  # a still, or no declared duration
    assert split_video(60.0, workers=1) is None
    assert split_video(20.0, workers=2) == [(0.0, 10.0), (10.0, None)]
    assert split_video(100.0, workers=4) == [(0.0, 25.0), (25.0, 50.0), (50.0, 75.0), (75.0, None)]


def _kill_when_busy(
    analyzer: ProcessAnalyzer, path: Path, segment: int, killed: list[int]
) -> threading.Thread:
    """SIGKILL the worker that analyses ``segment`` of ``path`` as soon as one does."""

    def kill() -> None:
        give_up = time.monotonic() + 120
        while time.monotonic() < give_up:
            for pid, (file, index) in analyzer._supervisor.busy_pids().items():
                if file.path == path and index == segment:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.005)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_mid_analysis_costs_only_its_file_and_keeps_the_other_segments(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data", analysis_isolation="process")
    video = synthetic_media.video(tmp_path / "long.mp4", seconds=20)  # two 10-s segments
    analyzer = ProcessAnalyzer(settings, workers=2)
    try:
        inputs = [FACES / "obama.jpg", video, FACES / "biden.jpg"]
        killed: list[int] = []
        killer = _kill_when_busy(analyzer, video, 1, killed)
        results = list(analyzer.analyze_all(inputs))
        killer.join()
        assert len(killed) == 1

        photo, broken, photo2 = results
        assert photo.error is None and photo.face_count == 1
        assert photo2.error is None and photo2.face_count == 1
        assert broken.error is not None and broken.error.code == "crashed"
        assert "signal 9" in str(broken.error)
        # The first segment's frames are kept; the killed second segment's are missing.
        assert broken.info is not None and broken.info.media_type == "video"
        times = [frame.time for frame in broken.frames]
        assert times and max(times) < 10.0, times
        assert broken.hashes.sha256 and broken.vpdq

        # The killed worker was replaced; the next call runs on the live ones.
        (again,) = analyzer.analyze_all([FACES / "two_people.jpg"])
        assert again.error is None and again.face_count == 2
        assert analyzer.worker_pids and killed[0] not in analyzer.worker_pids
    finally:
        analyzer.close()
    assert analyzer.worker_pids == []
