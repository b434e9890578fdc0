"""Scanning in worker processes: results in input order, long videos split, crashes contained."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from conftest import FACES, VIDEO, make_settings
from safeeye.pipeline.pool import PoolAnalyzer, video_segments


def test_long_videos_are_split_between_workers_and_short_ones_are_not(tmp_path: Path) -> None:
    assert video_segments(VIDEO, workers=2) is None  # 10 s: not worth splitting
    assert video_segments(FACES / "obama.jpg", workers=2) is None


def test_pool_results_match_inputs_and_a_killed_worker_costs_only_its_inputs(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "data", scan_workers=2)
    pool = PoolAnalyzer(settings, workers=2)
    try:
        pool.warm_up()
        inputs = [VIDEO, FACES / "obama.jpg", FACES / "biden.jpg"]
        first = list(pool.analyze_all(inputs))
        assert [a.error for a in first] == [None, None, None]
        assert [a.info.media_type for a in first if a.info] == ["video", "image", "image"]

        # Kill every worker while the video is being analysed.
        pids = pool.worker_pids
        killer = threading.Timer(0.3, lambda: [os.kill(pid, signal.SIGKILL) for pid in pids])
        killer.start()
        started = time.monotonic()
        second = list(pool.analyze_all([VIDEO, FACES / "biden2.jpg"]))
        killer.join()
        assert time.monotonic() - started < 120
        assert second[0].error is not None and second[0].error.code == "crashed"
        assert second[0].hashes.sha256 == first[0].hashes.sha256

        # The pool recovers: the next scan runs on fresh workers.
        third = list(pool.analyze_all([FACES / "two_people.jpg"]))
        assert third[0].error is None and third[0].face_count == 2
        assert set(pool.worker_pids).isdisjoint(pids)
    finally:
        pool.close()
